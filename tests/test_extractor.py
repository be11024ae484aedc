"""The fingerprint extractor: input spectra, network, training (resumable), sliding windows, files."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelfp import denoise, extractor as ex
from modelfp.archspace import parse
from modelfp.feed import SyntheticZoo
from modelfp.synthetic import init_model

ARCHS = ["K1-L1-Spost-Unearest-Arelu-Nbn", "K1-L1-Spost-Utransposed-Atanh-Nin"]
SIZE = 16


@pytest.fixture(scope="module")
def zoo():
    models = [init_model(parse(a), seed) for a in ARCHS for seed in (0, 1)]
    return SyntheticZoo(models, path="loop")


@pytest.fixture(scope="module")
def pool():
    return torch.randint(0, 256, (24, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.fixture
def denoiser():
    return denoise.init_model(depth=3, features=4, seed=0)


def _cfg(**kw):
    return ex.ExtractorConfig(**{"backbone": "small_cnn", "transform": "log1p", "image_size": SIZE, **kw})


def _train_cfg(**kw):
    return ex.TrainConfig(**{"epochs": 2, "steps_per_epoch": 2, "p": 2, "k": 2, "lr": 1e-3,
                             "warmup_steps": 1, **kw})


# --- sliding windows ----------------------------------------------------------------------------

@pytest.mark.parametrize("length, size, n", [(17, 16, 2), (18, 16, 3), (19, 16, 4), (100, 32, 3), (33, 32, 2),
                                             (131, 128, 4), (1024, 128, 3)])
def test_window_starts_are_in_bounds_equally_spaced_and_reach_both_ends(length, size, n):
    starts = ex.window_starts(length, size, n)
    assert len(starts) == n and starts[0] == 0 and starts[-1] == length - size
    assert all(0 <= s <= length - size for s in starts)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1 and max(gaps) - min(gaps) <= 1


@pytest.mark.parametrize("length, size, n, expected", [(16, 16, 3, [0]), (17, 16, 3, [0, 1]), (18, 16, 4, [0, 1, 2]),
                                                       (32, 32, 4, [0])])
def test_coinciding_windows_are_given_once(length, size, n, expected):
    assert ex.window_starts(length, size, n) == expected


def test_one_window_is_the_centre_crop():
    img = torch.arange(3 * 20 * 20, dtype=torch.float32).view(3, 20, 20)
    (crop,) = ex.windows(img, 16, 1)
    assert torch.equal(crop, img[:, 2:18, 2:18])


def test_windows_of_an_image_just_above_the_window_size():
    img = torch.randint(0, 256, (3, 17, 18), dtype=torch.uint8)
    crops = ex.windows(img, 16, 3)            # rows start at 0, 1; columns at 0, 1, 2
    assert crops.shape == (6, 3, 16, 16) and crops.dtype == torch.uint8
    assert torch.equal(crops[0], img[:, :16, :16]) and torch.equal(crops[-1], img[:, 1:, 2:])
    assert torch.equal(crops[1], img[:, :16, 1:17])


def test_small_images_are_resized_up_to_one_window():
    img = torch.randint(0, 256, (3, 10, 40), dtype=torch.uint8)
    crops = ex.windows(img, 16, 3)
    assert crops.shape == (1, 3, 16, 16) and crops.dtype == torch.uint8


def test_bad_window_arguments_are_rejected():
    with pytest.raises(ValueError):
        ex.window_starts(10, 16, 2)
    with pytest.raises(ValueError):
        ex.window_starts(20, 16, 0)


# --- the network and its input ------------------------------------------------------------------

@pytest.mark.parametrize("backbone, pooling", [("small_cnn", "avg"), ("small_cnn", "flatten"),
                                               ("resnet18", "avg"), ("none", "avg")])
def test_features_and_logits_shapes(denoiser, backbone, pooling):
    model = ex.build(denoiser, _cfg(backbone=backbone, pooling=pooling), ["a", "b", "c"], seed=0)
    h, logits = model(torch.rand(5, 3, SIZE, SIZE) * 2 - 1)
    assert h.shape == (5, model.dim) and logits.shape == (5, 3)
    if backbone == "none":
        assert model.dim == 3 * SIZE * SIZE


def test_spectrum_input_is_the_fft_magnitude_of_the_denoiser_residual(denoiser):
    model = ex.build(denoiser, _cfg(transform="abs"), ["a", "b"], seed=0)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    expected = torch.fft.fft2(denoise.noise_residual(denoiser, x)).abs()
    torch.testing.assert_close(model.front(x), expected, rtol=1e-5, atol=1e-5)


def test_per_position_statistics_standardise_training_spectra(denoiser):
    model = ex.build(denoiser, _cfg(normalize=True), ["a", "b"], seed=0)
    x = torch.rand(64, 3, SIZE, SIZE) * 2 - 1
    model.front.fit_statistics(x, batch_size=16)
    s = model.front(x)
    torch.testing.assert_close(s.mean(0), torch.zeros_like(s[0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(s.std(0), torch.ones_like(s[0]), atol=1e-3, rtol=0)


def test_the_denoiser_stays_frozen_and_in_eval_mode(denoiser):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).train()
    assert not model.front.denoiser.training and model.backbone.training
    assert all(not p.requires_grad for p in model.front.parameters())


def test_quantize_rounds_to_8_bit_levels():
    x = torch.tensor([-1.0, -0.99, 0.0, 0.5, 1.0, 1.7])
    q = ex.quantize(x)
    levels = (q + 1) * 127.5
    torch.testing.assert_close(levels, levels.round())
    assert q.min() >= -1 and q.max() <= 1 and (q - x.clamp(-1, 1)).abs().max() <= 1 / 255 + 1e-6


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [ex.lr_factor(s, 4, 20) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(f[3:], f[4:])) and ex.lr_factor(20, 4, 20) == pytest.approx(0.0)


# --- training -----------------------------------------------------------------------------------

def test_zoo_source_gives_each_image_through_its_model(zoo, pool):
    source = ex.ZooSource(zoo, pool, "cpu")
    labels = torch.tensor([0, 0, 3, 3])
    a = source(labels, torch.Generator().manual_seed(0))
    idx = torch.randint(len(pool), (4,), generator=torch.Generator().manual_seed(0))
    real = pool[idx].float() / 127.5 - 1
    expected = torch.stack([zoo.models[k](real[i:i + 1])[0] for i, k in enumerate(labels.tolist())])
    torch.testing.assert_close(a, ex.quantize(expected))


def test_training_is_resumable_after_a_kill(tmp_path, zoo, pool, denoiser):
    def run(epochs, state=None, model=None):
        model = model or ex.build(denoiser, _cfg(), zoo.names, seed=0)
        hist = ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=2), "cpu", state_path=state,
                        on_epoch=None) if epochs == 2 else None
        return model, hist

    whole, hist = run(2)
    assert [r["epoch"] for r in hist] == [1, 2] and all(r["loss"] > 0 for r in hist)

    # a run "killed" after epoch 1: its state file is what a finished epoch 1 leaves behind
    state = tmp_path / "state.pt"
    first = ex.build(denoiser, _cfg(), zoo.names, seed=0)

    class Kill(Exception):
        pass

    def kill(row):
        raise Kill

    with pytest.raises(Kill):
        ex.train(first, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=2), "cpu", state_path=state, on_epoch=kill)
    resumed = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    hist2 = ex.train(resumed, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=2), "cpu", state_path=state)
    assert [r["epoch"] for r in hist2] == [1, 2]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_per_epoch_scores_join_the_history_survive_a_kill_and_leave_training_alone(tmp_path, zoo, pool, denoiser):
    seen = []
    probe = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def evaluator(model):           # a forward pass as scoring's: in train mode it would move BatchNorm's statistics
        seen.append((model.training, torch.is_grad_enabled()))
        return {"val_score": float(model.features(probe).double().sum())}

    class Kill(Exception):
        pass

    def kill(row):                                  # after epoch 1's state is written
        raise Kill

    def run(state=None, on_epoch=None, evaluator=evaluator):
        model = ex.build(denoiser, _cfg(), zoo.names, seed=0)
        return model, ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=2), "cpu",
                               state_path=state, on_epoch=on_epoch, evaluator=evaluator)

    whole, hist = run()
    assert [r["epoch"] for r in hist] == [1, 2] and all({"val_score", "val_seconds"} <= set(r) for r in hist)
    assert seen == [(False, False), (False, False)] and whole.training      # eval mode, no grad; then back
    plain, _ = run(evaluator=None)
    for (k, a), b in zip(whole.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)                              # scoring changes no weight

    state = tmp_path / "state.pt"
    with pytest.raises(Kill):
        run(state, on_epoch=kill)
    seen.clear()
    _, resumed = run(state)
    assert len(seen) == 1                                                    # only epoch 2 is scored again
    assert [r["val_score"] for r in resumed] == pytest.approx([r["val_score"] for r in hist])


def test_a_state_file_of_another_configuration_is_refused(tmp_path, zoo, pool, denoiser):
    state = tmp_path / "state.pt"
    model = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=1, steps_per_epoch=1), "cpu", state_path=state)
    with pytest.raises(ValueError, match="another configuration"):
        ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=2, lr=5e-4), "cpu", state_path=state)


def test_training_separates_two_models_on_easy_data(denoiser):
    # two "models": one adds vertical stripes, one horizontal stripes (period 2): different
    # frequencies, so different input spectra; a few steps must tell them apart
    class Toy:
        classes = ["vertical", "horizontal"]
        device = torch.device("cpu")

        def __call__(self, labels, gen):
            base = torch.rand(len(labels), 3, SIZE, SIZE, generator=gen) * 0.2
            stripes = torch.arange(SIZE) % 2 * 0.6 - 0.3
            vertical, horizontal = stripes.view(1, SIZE).expand(SIZE, SIZE), stripes.view(SIZE, 1).expand(SIZE, SIZE)
            pattern = torch.where((labels == 0).view(-1, 1, 1, 1), vertical, horizontal)
            return base + pattern * torch.rand(len(labels), 1, 1, 1, generator=gen)

    model = ex.build(denoiser, _cfg(backbone="small_cnn"), Toy.classes, seed=0)
    hist = ex.train(model, Toy(), _train_cfg(epochs=3, steps_per_epoch=10, p=2, k=4), "cpu")
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["train_acc"] > 0.9


def test_augmentation_is_seeded_and_changes_images():
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    spec = {"jpeg": [30, 60], "crop": [0.5, 0.8], "p": 1.0}
    a = ex.augment(x, spec, torch.Generator().manual_seed(0))
    b = ex.augment(x, spec, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.allclose(a, ex.quantize(x))


def test_gray_augmentation_gives_what_the_tool_reads_from_a_grayscale_file(tmp_path):
    from PIL import Image

    from modelfp.pools import load_image, to_uint8
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = to_uint8(ex.augment(x, {"gray": 1.0}, torch.Generator().manual_seed(0)))
    for image, gray in zip(to_uint8(x), out):
        Image.fromarray(image.permute(1, 2, 0).numpy()).convert("L").save(tmp_path / "gray.png")
        assert torch.equal(gray, load_image(tmp_path / "gray.png", None))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_augmentation_without_gray_draws_and_gives_what_it_did_before_gray():
    """A spec without `gray` (a state written before it) makes the very same images, and leaves the
    generator where it did: the draws of before, crop then JPEG, written out here."""
    import numpy as np

    from modelfp.perturb import perturb
    from modelfp.pools import as_unit_range, to_uint8
    x = torch.rand(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    spec = {"jpeg": [30, 90], "crop": [0.5, 1.0], "p": 0.5}
    gen, before = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    got = ex.augment(x, spec, gen)
    expected = []
    for img in to_uint8(x).permute(0, 2, 3, 1).numpy():
        for kind in ("crop", "jpeg"):
            if torch.rand((), generator=before) < spec["p"]:
                lo, hi = spec[kind]
                level = lo + (hi - lo) * torch.rand((), generator=before).item()
                level = round(level) if kind == "jpeg" else level
                img = perturb(np.ascontiguousarray(img), kind, level, int(torch.randint(2**31, (), generator=before)))
        expected.append(torch.from_numpy(np.ascontiguousarray(img)))
    assert torch.equal(got, as_unit_range(torch.stack(expected).permute(0, 3, 1, 2)))
    assert torch.equal(gen.get_state(), before.get_state())
    # and gray at probability 0 changes no image (it only draws)
    assert torch.equal(ex.augment(x, {"gray": 0.0}, torch.Generator().manual_seed(0)), ex.quantize(x))


# --- inference and files ------------------------------------------------------------------------

def test_embedding_averages_the_windows(denoiser):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    img = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    emb = ex.embed(model, [img, img[:, :SIZE, :SIZE]], n_windows=2, batch_size=3)
    crops = ex.windows(img, SIZE, 2)
    with torch.no_grad():
        expected = model.features(crops.float() / 127.5 - 1).mean(0)
        single = model.features(img[None, :, :SIZE, :SIZE].float() / 127.5 - 1)[0]
    torch.testing.assert_close(emb[0], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(emb[1], single, rtol=1e-4, atol=1e-5)


def test_the_views_are_the_eight_flips_and_quarter_turns_of_the_square():
    img = torch.arange(3 * 4 * 4).reshape(3, 4, 4)
    turned = {name: turn(img) for name, turn in ex.VIEWS.items()}
    assert len({t.numpy().tobytes() for t in turned.values()}) == 8 == len(ex.VIEWS)
    assert torch.equal(turned["identity"], img)
    assert torch.equal(turned["rotate_90_clockwise"], torch.rot90(img, -1, dims=(1, 2)))
    assert torch.equal(turned["rotate_90_anticlockwise"], torch.rot90(img, 1, dims=(1, 2)))
    assert torch.equal(turned["rotate_180"], torch.rot90(img, 2, dims=(1, 2)))
    assert torch.equal(turned["anti_transpose"], torch.rot90(img, 1, dims=(1, 2)).flip(2))
    for bad in (0, 9):
        with pytest.raises(ValueError, match="views must be 1 to 8"):
            ex.check_views(bad)


@pytest.mark.parametrize("views", [2, 8])
def test_a_fingerprint_of_k_views_is_their_unit_fingerprints_side_by_side(denoiser, views):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    model.centre.copy_(torch.randn(model.dim, generator=torch.Generator().manual_seed(2)))
    gen = torch.Generator().manual_seed(3)
    imgs = [torch.randint(0, 256, (3, SIZE, SIZE + 4), dtype=torch.uint8, generator=gen) for _ in range(3)]
    emb = ex.embed(model, imgs, n_windows=2, views=views)
    assert emb.shape == (3, views * model.dim)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    blocks = emb.reshape(3, views, model.dim) * views ** 0.5
    for i, turn in enumerate(list(ex.VIEWS.values())[:views]):
        plain = F.normalize(ex.embed(model, [turn(img) for img in imgs], n_windows=2), dim=1)
        torch.testing.assert_close(blocks[:, i], plain, rtol=1e-4, atol=1e-5)
    # their cosine is the mean of the views' cosines, and view 1 alone is the plain fingerprint
    per_view = (blocks[0] * blocks[1]).sum(1)
    torch.testing.assert_close(emb[0] @ emb[1], per_view.mean(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ex.embed(model, imgs, n_windows=2, views=1), ex.embed(model, imgs, n_windows=2))
    assert ex.embed(model, [], n_windows=2, views=views).shape == (0, views * model.dim)


def test_embed_runs_channels_last_and_equals_the_default_layout_up_to_rounding(denoiser):
    """`embed` runs the network channels-last (faster convolutions, benchmarks/memory_layout.py): a
    fingerprint is the default layout's mean window feature minus the centre, up to rounding, and
    the model is left in the default layout (training after a validation embed stays bit-exact)."""
    import copy
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    model.centre.copy_(torch.randn(model.dim, generator=torch.Generator().manual_seed(2)))
    default = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(5)
    imgs = [torch.randint(0, 256, (3, SIZE + 3, SIZE + 6), dtype=torch.uint8, generator=gen) for _ in range(2)]
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1)
    hook = conv.register_forward_pre_hook(lambda m, inp: seen.append(m.weight.is_contiguous(
        memory_format=torch.channels_last) and not m.weight.is_contiguous()))
    got = ex.embed(model, imgs, n_windows=2, views=2)[:, :model.dim] * 2 ** 0.5
    hook.remove()
    assert seen and all(seen)                                    # channels-last while it ran
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous() for w in convs)                 # and back in the default layout
    assert torch.equal(torch.cat([p.detach().flatten() for p in model.parameters()]),
                       torch.cat([p.detach().flatten() for p in default.parameters()]))
    with torch.no_grad():
        want = torch.stack([default.features(ex.as_unit_range(ex.windows(im, SIZE, 2))).mean(0) for im in imgs])
    torch.testing.assert_close(got, F.normalize(want - default.centre, dim=1), rtol=1e-5, atol=1e-5)


def test_fewer_views_are_the_first_blocks_of_more(denoiser):
    """The views study embeds once, in the most views, and takes the others as prefixes."""
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    model.centre.copy_(torch.randn(model.dim, generator=torch.Generator().manual_seed(2)))
    gen = torch.Generator().manual_seed(4)
    imgs = [torch.randint(0, 256, (3, SIZE, SIZE + 4), dtype=torch.uint8, generator=gen) for _ in range(3)]
    eight = ex.embed(model, imgs, n_windows=2, views=8)
    for k in (1, 2, 4, 8):
        # (one view's `embed` is the raw centred fingerprint: compared at unit length)
        torch.testing.assert_close(ex.first_views(eight, 8, k),
                                   F.normalize(ex.embed(model, imgs, n_windows=2, views=k), dim=1), rtol=1e-5, atol=1e-6)
    as_numpy = ex.first_views(eight.numpy(), 8, 3)
    assert isinstance(as_numpy, np.ndarray) and np.allclose(np.linalg.norm(as_numpy, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="cannot take 4 views"):
        ex.first_views(ex.first_views(eight, 8, 2), 2, 4)
    with pytest.raises(ValueError, match="not 2 views"):
        ex.first_views(eight[:, :-1], 2, 1)          # an odd width


def test_the_calibrated_views_and_resaves_thresholds_survive_save_load_and_export(tmp_path, denoiser):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    path = tmp_path / "x.pt"
    ex.save(model, path)
    assert ex.load(path).views == 1
    assert ex.load(path).resaved is None
    resaved = {"jpeg90": {"verification_threshold": np.float64(0.49), "openset": {"threshold": 0.78, "z": 0.5,
                                                                                  "prior": 1.0, "margin": 0.05}}}
    ex.set_threshold(path, 0.3, openset_threshold=0.2, views=8, resaved=resaved)
    calibrated = ex.load(path)
    assert calibrated.views == 8 and calibrated.resaved == resaved
    ex.export(calibrated, tmp_path / "shared")
    shared = ex.load(tmp_path / "shared")
    assert shared.views == 8 and shared.resaved == resaved       # the re-saves' thresholds too
    with pytest.raises(ValueError, match="views must be 1 to 8"):
        ex.set_threshold(path, 0.3, views=9)


def test_save_load_round_trip_and_threshold(tmp_path, denoiser):
    model = ex.build(denoiser, _cfg(normalize=True), ["a", "b"], seed=0).eval()
    model.front.mean.fill_(0.5)
    path = tmp_path / "x.pt"
    ex.save(model, path, variant="all")
    again = ex.load(path)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    torch.testing.assert_close(again.features(x), model.features(x))
    assert again.threshold is None and again.meta["variant"] == "all" and again.classes == ["a", "b"]
    ex.set_threshold(path, 0.8)
    assert ex.load(path).threshold == 0.8


def test_wrong_files_get_clear_errors(tmp_path, denoiser):
    other = tmp_path / "dncnn.pt"
    denoise.save(denoiser, other)
    with pytest.raises(ValueError, match="fingerprint-extractor"):
        ex.load(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt"):
        ex.load(junk)


def test_config_typos_are_rejected():
    with pytest.raises(ValueError, match="backbone"):
        ex.ExtractorConfig(backbone="resnet51")
    with pytest.raises(ValueError, match="transform"):
        ex.ExtractorConfig(transform="log2")
    with pytest.raises(ValueError, match="augmentation"):
        ex.TrainConfig(augment={"jpg": [1, 2]})
    with pytest.raises(ValueError, match="gray"):
        ex.TrainConfig(augment={"gray": 1.5})


# --- the centre: fingerprints compared after subtracting the mean training fingerprint -----------

class _Recorder:
    """A training source that remembers the images it gave (what `fit_centre` measured)."""

    def __init__(self, source):
        self.source, self.classes, self.device, self.given = source, source.classes, source.device, []

    def __call__(self, labels, gen):
        images = self.source(labels, gen)
        self.given.append(images)
        return images


def test_the_centre_is_the_mean_training_fingerprint(zoo, pool, denoiser):
    model = ex.build(denoiser, _cfg(), zoo.names, seed=0).eval()
    source = _Recorder(ex.ZooSource(zoo, pool, "cpu"))
    centre = ex.fit_centre(model, source, seed=5, n=40, batch_size=16)
    images = torch.cat(source.given)
    assert len(images) == 40
    with torch.no_grad():
        feats = model.features(images)
    # float32 features (|h| ~ 1) summed in float64, the centre rounded once to float32: the
    # centred training fingerprints average to 0 up to float32 rounding (~1e-7 relative), well
    # inside 1e-5 of the features' scale
    scale = feats.abs().max()
    torch.testing.assert_close(centre, feats.mean(0), rtol=0, atol=1e-5 * scale)
    assert (feats - model.centre).mean(0).abs().max() < 1e-5 * scale
    assert centre.norm() > 0.1 * feats.norm(dim=1).mean()            # not trivially zero
    # a measurement, not part of any graph: the buffer is no leaf of the network's autograd
    assert not model.centre.requires_grad and not centre.requires_grad
    # seeded: the same seed measures the same images, another seed others
    again = ex.fit_centre(model, ex.ZooSource(zoo, pool, "cpu"), seed=5, n=40, batch_size=16)
    other = ex.fit_centre(model, ex.ZooSource(zoo, pool, "cpu"), seed=6, n=40, batch_size=16)
    assert torch.equal(again, centre) and not torch.equal(other, centre)


def test_embed_returns_the_raw_fingerprint_minus_the_centre(denoiser):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    img = torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    raw = ex.embed(model, [img], n_windows=1)
    model.centre.copy_(torch.randn(model.dim, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        expected = model.features(img[None].float() / 127.5 - 1)[0] - model.centre
    torch.testing.assert_close(ex.embed(model, [img], n_windows=1)[0], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ex.embed(model, [img], n_windows=1), raw - model.centre, rtol=1e-4, atol=1e-5)


def test_a_saved_extractor_keeps_its_centre_and_old_files_load_uncentred(tmp_path, caplog, denoiser):
    model = ex.build(denoiser, _cfg(), ["a", "b"], seed=0).eval()
    model.centre.copy_(torch.linspace(-1, 1, model.dim))
    path = tmp_path / "x.pt"
    ex.save(model, path)
    assert torch.equal(ex.load(path).centre, model.centre)
    ex.set_threshold(path, 0.3, openset_threshold=0.2)          # calibrating keeps the centre
    calibrated = ex.load(path)
    assert torch.equal(calibrated.centre, model.centre)
    assert (calibrated.threshold, calibrated.openset_threshold) == (0.3, 0.2)
    # a file written before centring: it loads, centre zero, with a warning naming the file
    from modelfp import checkpoints
    payload = checkpoints.load(path, ex.FORMAT, "fingerprint-extractor file")
    del payload["centre"], payload["openset_threshold"]
    old = tmp_path / "old.pt"
    checkpoints.save(payload, old)
    caplog.clear()
    loaded = ex.load(old)
    assert torch.equal(loaded.centre, torch.zeros(model.dim)) and loaded.openset_threshold is None
    assert loaded.threshold == 0.3
    assert any(r.levelname == "WARNING" and str(old) in r.getMessage() and "centre" in r.getMessage()
               for r in caplog.records)


def test_centring_removes_a_common_component_that_makes_every_cosine_near_one(denoiser):
    # fabricated fingerprints: the image pixels themselves (no network), images = a large common
    # grey level shared by all + a small pattern of one of two "models" + noise
    model = ex.build(denoiser, _cfg(backbone="none"), ["a", "b"], seed=0).eval()
    model.front = torch.nn.Identity()
    g = torch.Generator().manual_seed(0)
    patterns = torch.randn(2, 3, SIZE, SIZE, generator=g).sign() * 6

    def images(label, n):
        noise = torch.randn(n, 3, SIZE, SIZE, generator=g) * 2
        return (230 + patterns[label] + noise).round().clamp(0, 255).to(torch.uint8)

    train = ex.FolderSource([images(0, 20), images(1, 20)], ["a", "b"], "cpu")
    a, b = list(images(0, 5)), list(images(1, 5))           # new images, never in the centre
    raw = torch.nn.functional.normalize(ex.embed(model, a + b, 1), dim=1)
    assert (raw[:5] @ raw[5:].T).min() > 0.99                  # different models, cosine ~ 1
    ex.fit_centre(model, train, seed=0, n=64)
    centred = torch.nn.functional.normalize(ex.embed(model, a + b, 1), dim=1)
    assert (centred[:5] @ centred[5:].T).max() < 0.5           # different models now score low
    assert (centred[:5] @ centred[:5].T).min() > 0.5           # the same model still scores high


# --- options for a spectrum input and same-design batches (issue 22) ----------------------------

def test_a_centred_spectrum_has_zero_frequency_in_the_middle(denoiser):
    plain = ex.build(denoiser, _cfg(transform="abs"), ["a", "b"], seed=0)
    centred = ex.build(denoiser, _cfg(transform="abs", centre_spectrum=True), ["a", "b"], seed=0)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    s, c = plain.front(x), centred.front(x)
    dc = denoise.noise_residual(denoiser, x).sum((-2, -1)).abs()      # |F(0, 0)| = |sum of the residual|
    torch.testing.assert_close(s[..., 0, 0], dc, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c[..., SIZE // 2, SIZE // 2], dc, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c, torch.roll(s, (SIZE // 2, SIZE // 2), (-2, -1)))


def test_input_scale_multiplies_the_residual_before_the_spectrum(denoiser):
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    one = ex.build(denoiser, _cfg(transform="log1p"), ["a", "b"], seed=0).front(x)
    scaled = ex.build(denoiser, _cfg(transform="log1p", input_scale=255.0), ["a", "b"], seed=0).front(x)
    # |FFT| is linear in the residual: log1p(|F(255 r)|) = log1p(255 |F(r)|). Tolerance: the two
    # sides round differently in float32 (FFT of a scaled input; and the denoiser's convolutions
    # differ in the last bits with the thread count: a pytest-xdist worker measured 2.7e-4 on one
    # bin), while a scale not applied would be off by log(255) = 5.5
    torch.testing.assert_close(scaled, torch.log1p(255 * torch.expm1(one)), rtol=1e-3, atol=1e-3)
    # in [-1, 1] units log1p is nearly the identity on small magnitudes; in 8-bit units it is not
    assert (scaled - torch.log1p(255 * one)).abs().max() < (scaled - 255 * one).abs().max()


@pytest.mark.parametrize("backbone, stem, size, shift", [("small_cnn", "standard", SIZE, 8),
                                                         ("resnet18", "light", SIZE, 8),
                                                         ("resnet18", "standard", 64, 32)])
def test_circular_padding_makes_pooled_features_invariant_to_circular_shifts(denoiser, backbone, stem, size, shift):
    # a circular shift by the backbone's total stride moves the last map by whole positions, which
    # wrap around under circular padding: the global average is unchanged; zero padding breaks it
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    rolled = torch.roll(x, (shift, shift), (-2, -1))
    feats = {}
    for padding in ("circular", "zeros"):
        net = ex.build(denoiser, _cfg(backbone=backbone, stem=stem, image_size=size, padding=padding),
                       ["a", "b"], seed=0).backbone.eval()
        with torch.no_grad():
            feats[padding] = net(x), net(rolled)
    torch.testing.assert_close(*feats["circular"], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(*feats["zeros"], rtol=1e-3, atol=1e-4)


def test_circular_padding_keeps_the_weights_names():
    import torchvision
    net = torchvision.models.resnet18(weights=None)
    keys = list(net.state_dict())
    ex.circular_padding(net)
    assert list(net.state_dict()) == keys and net.conv1.padding_mode == "circular"


@pytest.mark.parametrize("stem, side, pooled", [("light", SIZE, False), ("light_maxpool", SIZE // 2, True),
                                                ("light_stride2", SIZE // 2, False), ("standard", SIZE // 4, True)])
def test_each_stem_gives_the_first_block_its_spatial_size(denoiser, stem, side, pooled):
    x = torch.rand(1, 3, SIZE, SIZE)
    net = ex.build(denoiser, _cfg(backbone="resnet18", stem=stem), ["a", "b"], seed=0).backbone.eval()
    with torch.no_grad():
        before_block = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    assert before_block.shape[-2:] == (side, side)
    assert isinstance(net.maxpool, torch.nn.MaxPool2d) == pooled
    assert net.conv1.kernel_size == ((7, 7) if stem == "standard" else (3, 3))


def test_linear_backbone_starts_at_the_whitened_principal_components():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g) * torch.logspace(0, 1.5, 20) + 3     # anisotropic, off-centre
    lin = ex.LinearMap(20, dim=5)
    lin.fit_pca(x)
    with torch.no_grad():
        y = lin(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), torch.eye(5), atol=1e-4, rtol=0)
    # the rows are the top principal directions: the largest-variance input axes
    assert set(lin.map.weight.abs().argmax(1).tolist()) == {15, 16, 17, 18, 19}


def test_linear_backbone_is_fitted_before_training_and_trains(zoo, pool, denoiser):
    model = ex.build(denoiser, _cfg(backbone="linear"), zoo.names, seed=0)
    before = model.backbone.map.weight.clone()
    source = ex.ZooSource(zoo, pool, "cpu")
    ex.fit_input_statistics(model, source, seed=0)
    fitted = model.backbone.map.weight.clone()
    assert model.dim == ex.LINEAR_DIM and not torch.equal(before, fitted)
    hist = ex.train(model, source, _train_cfg(epochs=1), "cpu")
    assert hist[0]["loss"] > 0 and not torch.equal(fitted, model.backbone.map.weight)


def test_nothing_is_measured_without_normalize_or_linear(denoiser):
    class NoImages:
        classes = ["a", "b"]

        def __call__(self, labels, gen):
            raise AssertionError("no training images should be drawn")

    ex.fit_input_statistics(ex.build(denoiser, _cfg(), ["a", "b"], seed=0), NoImages(), seed=0)


@pytest.mark.parametrize("options", [{"backbone": "resnet18", "stem": "light", "padding": "circular",
                                      "centre_spectrum": True, "input_scale": 255.0},
                                     {"backbone": "linear", "normalize": True}])
def test_the_new_options_survive_save_and_load(tmp_path, denoiser, options):
    model = ex.build(denoiser, _cfg(**options), ["a", "b"], seed=0).eval()
    path = tmp_path / "x.pt"
    ex.save(model, path)
    again = ex.load(path)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    assert again.cfg == model.cfg
    torch.testing.assert_close(again.features(x), model.features(x))


class _Labels:
    """A training source that remembers the labels of every batch."""

    def __init__(self, source):
        self.source, self.classes, self.designs, self.device = source, source.classes, source.designs, source.device
        self.batches = []

    def __call__(self, labels, gen):
        self.batches.append(labels.clone())
        return self.source(labels, gen)


def test_same_design_training_batches_pair_seeds_of_one_architecture(zoo, pool, denoiser):
    source = _Labels(ex.ZooSource(zoo, pool, "cpu"))
    assert source.designs == [a for a in ARCHS for _ in (0, 1)]
    model = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    ex.train(model, source, _train_cfg(epochs=1, steps_per_epoch=4, sampler="same_design", seeds_per_design=2,
                                       triplet_distance="cosine"), "cpu")
    assert len(source.batches) == 4
    for labels in source.batches:                    # P = 2, S = 2: one architecture, both its seeds
        models = labels.unique().tolist()
        assert len(models) == 2 and len({source.designs[m] for m in models}) == 1


def test_same_design_training_resumes_like_an_unbroken_run(tmp_path, zoo, pool, denoiser):
    tcfg = _train_cfg(epochs=2, sampler="same_design")

    class Kill(Exception):
        pass

    def kill(row):
        raise Kill

    whole = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    ex.train(whole, ex.ZooSource(zoo, pool, "cpu"), tcfg, "cpu")
    state = tmp_path / "state.pt"
    with pytest.raises(Kill):
        ex.train(ex.build(denoiser, _cfg(), zoo.names, seed=0), ex.ZooSource(zoo, pool, "cpu"), tcfg, "cpu",
                 state_path=state, on_epoch=kill)
    resumed = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    ex.train(resumed, ex.ZooSource(zoo, pool, "cpu"), tcfg, "cpu", state_path=state)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_a_state_written_before_the_new_options_still_resumes(tmp_path, zoo, pool, denoiser):
    from modelfp import checkpoints
    state = tmp_path / "state.pt"
    model = ex.build(denoiser, _cfg(), zoo.names, seed=0)
    ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=1, steps_per_epoch=1), "cpu", state_path=state)
    payload = checkpoints.load(state, ex.STATE_FORMAT, "state")
    for key, names in (("train", ("sampler", "seeds_per_design", "triplet_distance")),
                       ("model", ("centre_spectrum", "padding", "stem", "input_scale"))):
        for name in names:
            del payload["fingerprint"][key][name]
    checkpoints.save(payload, state)
    # same configuration (epochs 1): the old state is accepted and the finished run is not retrained
    hist = ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=1, steps_per_epoch=1), "cpu",
                    state_path=state)
    assert [r["epoch"] for r in hist] == [1]
    with pytest.raises(ValueError, match="another configuration"):        # a new option set is another run
        ex.train(model, ex.ZooSource(zoo, pool, "cpu"), _train_cfg(epochs=1, steps_per_epoch=1, sampler="same_design"),
                 "cpu", state_path=state)


@pytest.mark.parametrize("model_kw, train_kw, match", [
    ({"stem": "light"}, {}, "stem"), ({"padding": "reflect"}, {}, "padding"), ({"input_scale": 0}, {}, "input_scale"),
    ({"backbone": "linear", "weights": "w.pt"}, {}, "linear"), ({}, {"sampler": "per_design"}, "sampler"),
    ({}, {"triplet_distance": "l1"}, "triplet_distance"), ({}, {"seeds_per_design": 0}, "seeds_per_design")])
def test_the_new_options_reject_bad_values(denoiser, model_kw, train_kw, match):
    with pytest.raises(ValueError, match=match):
        ex.build(denoiser, _cfg(**model_kw), ["a", "b"], seed=0) if model_kw else ex.TrainConfig(**train_kw)


def test_specialists_are_carried_by_the_file_and_its_export_and_embed_their_re_saves(tmp_path, denoiser):
    main, jpeg, gray = (ex.build(denoiser, _cfg(), ["a", "b"], seed=s).eval() for s in (0, 1, 2))
    paths = {}
    for name, model in (("main", main), ("jpeg", jpeg), ("gray", gray)):
        paths[name] = tmp_path / f"{name}.pt"
        ex.save(model, paths[name], variant=name)
    out = tmp_path / "with.pt"
    ex.attach_specialists(paths["main"], {"jpeg": paths["jpeg"], "gray": paths["gray"]}, out)
    ex.set_threshold(out, 0.3, openset_threshold=0.2)          # calibrating keeps them
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    for form in (out, _exported(ex.load(out), tmp_path / "shared")):
        loaded = ex.load(form)
        assert sorted(ex.specialists_of(loaded)) == ["gray", "jpeg"] and loaded.threshold == 0.3
        # each re-save meets its specialist (lossy WebP the JPEG one); clean images the main network
        for condition, want in (("jpeg95", jpeg), ("jpeg75", jpeg), ("webp", jpeg), ("gray", gray), (None, main)):
            torch.testing.assert_close(ex.network_for(loaded, condition).features(x), want.features(x))
    assert ex.specialists_of(ex.load(paths["main"])) == {}
    assert ex.network_for(ex.load(paths["main"]), "gray") is not None


def _exported(model, folder):
    ex.export(model, folder)
    return folder


def test_a_specialist_of_another_window_or_kind_is_refused(tmp_path, denoiser):
    main = tmp_path / "main.pt"
    ex.save(ex.build(denoiser, _cfg(), ["a", "b"], seed=0), main)
    other = tmp_path / "big.pt"
    ex.save(ex.build(denoiser, _cfg(image_size=2 * SIZE), ["a", "b"], seed=0), other)
    with pytest.raises(ValueError, match="a specialist must read the extractor's window"):
        ex.attach_specialists(main, {"gray": other}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="unknown specialist kind 'webp'"):
        ex.attach_specialists(main, {"webp": main}, tmp_path / "x.pt")
    payload = torch.load(main, weights_only=False)
    payload["specialists"] = {"heic": {}}                 # a kind of a newer modelfp
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match=r"newer.pt: specialist network\(s\) \['heic'\] of no kind"):
        ex.load(tmp_path / "newer.pt")
