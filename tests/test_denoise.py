import pytest
import torch
import torch.nn as nn

from modelfp.denoise import (DnCNN, TrainConfig, init_model, load, noise_residual, psnr_gain,
                             save, train_denoiser)

SMALL = dict(depth=5, features=16)


def _smooth(n, size=48, seed=0):
    """Smooth random images (bilinearly upsampled 6x6 noise), uint8: easy to tell from noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    images = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                       align_corners=False)
    return (images * 255).round().to(torch.uint8)


def _randomize_bn(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: on a 2-core machine shared with other jobs, 2 threads run 10-20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(one_thread):
    cfg = TrainConfig(sigma=15.0, patch=32, batch_size=16, steps=200, lr=5e-3, seed=0)
    calls = []
    model, history = train_denoiser(_smooth(64), cfg, progress=lambda s, l: calls.append(s),
                                    **SMALL)
    return model, history, calls


def test_shape_is_preserved_for_odd_sizes_and_both_input_dtypes():
    model = _randomize_bn(init_model(**SMALL, seed=0))
    u8 = torch.randint(0, 256, (2, 3, 37, 41), dtype=torch.uint8)
    for x in (u8, u8.float() / 127.5 - 1.0):
        for mode in ("predicted", "difference"):
            r = noise_residual(model, x, mode)
            assert r.shape == x.shape and r.dtype == torch.float32 and torch.isfinite(r).all()
    assert noise_residual(model, u8[0]).shape == (3, 37, 41)  # single image
    assert noise_residual(model, u8.double() / 127.5 - 1).dtype == torch.float64
    assert model(u8.float()).shape == (2, 3, 37, 41)


def test_residual_learning_identity_and_modes_agree():
    model = _randomize_bn(init_model(**SMALL, seed=3))
    x = torch.rand(3, 3, 21, 19) * 2 - 1
    with torch.no_grad():
        n = model.noise_estimate(x)
        assert torch.equal(n, model(x))                      # our nets: forward = the noise
        torch.testing.assert_close(model.denoise(x) + n, x, atol=1e-6, rtol=0)
    pred = noise_residual(model, x, "predicted", batch_size=2)
    diff = noise_residual(model, x, "difference", batch_size=2)
    # other batch split: kernels may differ by batch shape and CPU; noise ~0.25 after several
    # float32 layers agrees to ~1e-6, so atol 1e-4 (another image's noise differs by ~0.1)
    torch.testing.assert_close(pred, n, atol=1e-4, rtol=0)
    torch.testing.assert_close(diff, pred, atol=1e-6, rtol=0)
    model.train()
    noise_residual(model, x)
    assert model.training                                    # mode restored
    with pytest.raises(ValueError, match="mode"):
        noise_residual(model, x, "other")


def test_clean_predicting_and_rescaled_models_give_the_same_residual():
    """A net predicting the clean image on [0, 1] must yield the same residual as its noise twin."""
    noise_net = _randomize_bn(init_model(**SMALL, seed=4))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    expected = noise_residual(noise_net, x)

    class Clean01(DnCNN):  # clean = x01 - noise01, noise01 = noise_net(x) / 2
        def forward(self, x01):
            return x01 - noise_net(x01 * 2 - 1) / 2

    clean = Clean01(**SMALL).eval()
    clean.predicts, clean.value_range = "clean", (0.0, 1.0)
    for mode in ("predicted", "difference"):
        torch.testing.assert_close(noise_residual(clean, x, mode), expected, atol=1e-6, rtol=0)


def test_training_reduces_noise_on_held_out_images(trained):
    model, history, calls = trained
    assert not model.training
    assert history.loss[-1] < 0.5                             # of the noise variance
    assert calls == history.steps == [50, 100, 150, 200]
    result = psnr_gain(model, _smooth(8, size=40, seed=99), sigma=15.0, seed=0)
    assert abs(result["psnr_noisy"] - 24.6) < 0.3             # 20 log10(255 / 15) = 24.61
    assert result["gain"] > 4.0, result                   # measured: ~8 dB


def test_training_is_deterministic_for_a_seed():
    cfg = TrainConfig(sigma=15.0, patch=16, batch_size=4, steps=6, seed=7, log_every=3)
    pool = _smooth(8, size=24)
    (a, ha), (b, hb) = (train_denoiser(pool, cfg, depth=3, features=8) for _ in range(2))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert ha.loss == hb.loss
    c, _ = train_denoiser(pool, TrainConfig(**{**cfg.__dict__, "seed": 8}), depth=3, features=8)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def test_save_load_round_trip(trained, tmp_path):
    model = trained[0]
    path = tmp_path / "sub" / "dncnn.pt"
    save(model, path, sigma=15.0, note="test")
    loaded = load(path)
    assert not loaded.training and loaded.info["meta"] == {"sigma": 15.0, "note": "test"}
    assert (loaded.depth, loaded.features, loaded.predicts) == (5, 16, "noise")
    x = _smooth(2, size=33, seed=5)
    assert torch.equal(noise_residual(loaded, x), noise_residual(model, x))
    assert not list(path.parent.glob("*.tmp*"))


def _reference(channels=3, features=16, depth=5, bn=True, bias=True):
    """DnCNNs as other repositories write them: one nn.Sequential, on [0, 1] images."""
    layers = [nn.Conv2d(channels, features, 3, padding=1, bias=bias), nn.ReLU()]
    for _ in range(depth - 2):
        layers.append(nn.Conv2d(features, features, 3, padding=1, bias=bias and not bn))
        layers += [nn.BatchNorm2d(features), nn.ReLU()] if bn else [nn.ReLU()]
    layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=bias))
    torch.manual_seed(11)
    net = nn.Sequential(*layers)
    for m in net:  # non-zero biases everywhere they exist
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.data.normal_(0, 0.1)
    return _randomize_bn(net)


@pytest.mark.parametrize("style", ["kair", "kair_merged", "saoyan", "kair_biased_bn", "gray"])
def test_external_state_dicts_load_and_match(style, tmp_path):
    channels = 1 if style == "gray" else 3
    ref = _reference(channels=channels, bn=style != "kair_merged", bias=style != "saoyan")
    if style == "kair_biased_bn":  # conv bias in front of BN (KAIR's unmerged training nets)
        ref = _reference(bn=True, bias=True)
        for m in list(ref)[2:-1]:
            if isinstance(m, nn.Conv2d):
                m.bias = nn.Parameter(torch.randn(m.out_channels) * 0.1)
        ref = nn.Sequential(*ref).eval()
    prefix = {"saoyan": "module.dncnn."}.get(style, "model.")
    state = {prefix + k: v for k, v in ref.state_dict().items()}
    path = tmp_path / "ext.pth"
    torch.save({"state_dict": state, "epoch": 3} if style == "saoyan" else state, path)
    model = load(path)
    assert (model.depth, model.features, model.channels) == (5, 16, channels)
    assert model.value_range == (0.0, 1.0) and model.predicts == "noise"
    x01 = torch.rand(2, 3, 19, 23)
    with torch.no_grad():
        want = ref(x01) if channels == 3 else ref(x01.reshape(6, 1, 19, 23)).reshape(2, 3, 19, 23)
        # another net layout (and for "gray" another batch shape): float32 rounding of outputs
        # <= 0.3 after 5 layers is ~1e-6, so atol 1e-4; a wrong mapping differs by ~0.01-0.1
        torch.testing.assert_close(model(x01), want, atol=1e-4, rtol=0)
        # residual of [-1, 1] images, in [-1, 1] units: twice the [0, 1] noise
        torch.testing.assert_close(noise_residual(model, x01 * 2 - 1), 2 * want, atol=2e-4, rtol=0)


def test_bad_files_raise_value_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pt"):
        load(garbage)

    state = {"model." + k: v for k, v in _reference().state_dict().items()}
    state["model.5.weight"] = torch.zeros(16, 8, 3, 3)          # a middle conv with wrong shape
    wrong = tmp_path / "wrong_shapes.pth"
    torch.save(state, wrong)
    with pytest.raises(ValueError, match=r"wrong_shapes\.pth.*shape"):
        load(wrong)

    other = tmp_path / "not_dncnn.pth"
    torch.save({"fc.weight": torch.zeros(4, 4), "fc.bias": torch.zeros(4)}, other)
    with pytest.raises(ValueError, match="not_dncnn.pth"):
        load(other)

    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "modelfp.synthetic/1", "state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*modelfp.dncnn/1"):
        load(foreign)
