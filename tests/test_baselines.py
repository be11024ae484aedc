"""The baselines package: registry and interface, and each method's defining property on tiny
inputs (Marra: fingerprints and Pearson embeddings; Yu: equalized lr, learning, determinism;
DNA-Det: transformation pre-training, SupCon, uncertainty weights, seeding) and, for every method
that trains, a run killed and resumed from its state file equal to one run in one go, learning curve
included; held-out early stopping (common.Stopping): the held-out part is cut from the training side
only, and the kept weights are those of the best held-out evaluation."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from modelfp import baselines, checkpoints, steps
from modelfp import extractor as ex
from modelfp.baselines import common, dnadet, marra, yu
from modelfp.baselines.common import Stopping
from modelfp.pools import load_image
from modelfp.splits import EVAL, TRAIN, folder_side
from modelfp.testbed.progan import EqualizedConv2d

from conftest import random_pool, state_copy, write_pngs

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# Registry

def test_registry_names_map_to_modules_with_the_interface():
    assert set(baselines.BASELINES) == {"marra", "yu", "dnadet", "repmix", "abady", "pose"}
    modules = {name: baselines.baseline(name) for name in baselines.BASELINES}
    for name, module in modules.items():
        assert module.__name__ == f"modelfp.baselines.{name}"
        assert all(callable(getattr(module, f)) for f in ("build", "train", "embed"))
        assert baselines.resolve(name, {}) == module.DEFAULTS
        # the entry's verifier flag is what the workflow reads, without importing the module
        assert baselines.BASELINES[name].verifier == hasattr(module, "pair_score"), name


def test_every_baseline_has_its_own_row_label_and_name_among_the_fingerprinters():
    """Tables VIII-X key their rows by label: two methods (or a method and one of our rows) under
    one label would be one row."""
    from modelfp import paper_tables, variants

    labels = [b.label for b in baselines.BASELINES.values()]
    ours = [r.label for r in paper_tables.rows("table_viii", paper_tables.Preset(2, ("a",), (1,), (1,), ()))]
    assert len(set(labels + ours)) == len(labels) + len(ours)
    for name in baselines.BASELINES:
        assert variants.family(baselines.baseline_variant(name)) is variants.FAMILIES["baseline"]


def test_the_registry_is_read_without_torch():
    """The workflow reads the registry when the Snakefile is parsed; torch comes with a method's
    module or a trained file (modelfp.baselines.trained), on first use."""
    code = ("import sys, modelfp.baselines as b; b.BASELINES['yu'].label, b.baseline_variant('yu'); "
            "print('torch' in sys.modules); b.load; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


# each method at toy size: (image size, hp)
TOY = {"yu": (16, dict(width=1 / 16)),
       "dnadet": (16, dict(width=1 / 8, transforms=("gblur:3", "noise:20"), upscale=2)),
       "repmix": (32, dict(backbone="resnet18", embedding=16, resize=32, crop=28)),
       "abady": (32, dict(backbone="efficientnet_b0", dim=16, resize=32)),
       "pose": (32, dict(width=1 / 16, embedding=16))}


@pytest.mark.parametrize("name", sorted(baselines.BASELINES))
def test_every_embed_is_deterministic_in_eval_mode_and_independent_of_batching(name):
    size, hp = TOY.get(name, (16, {}))
    extra = {"denoiser": BoxDenoiser()} if baselines.needs_denoiser(name) else {}
    module = baselines.baseline(name)
    model = module.build(size, 2, seed=0, **extra, **hp).train()   # embed switches to eval and back
    images = random_pool(6, size, seed=2)
    e1, e2 = module.embed(model, images, "cpu"), module.embed(model, images, "cpu")
    assert e1.dtype == torch.float32 and e1.shape[0] == 6 and e1.dim() == 2
    assert torch.equal(e1, e2) and model.training
    # another batch shape may pick other conv kernels: float32 rounding ~1e-5 through many layers
    torch.testing.assert_close(module.embed(model, images[:2], "cpu"), e1[:2], rtol=1e-4, atol=1e-4)


def test_unknown_names_and_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="unknown baseline 'repmixx'.*known"):
        baselines.baseline("repmixx")
    with pytest.raises(ValueError, match=r"unknown yu hyper-parameters \['widht'\]"):
        baselines.resolve("yu", {"widht": 0.5})
    with pytest.raises(ValueError, match="unknown dnadet hyper-parameters"):
        dnadet.build(16, 2, crop_size=8)
    with pytest.raises(ValueError, match="bad transformation 'blur:3'"):
        dnadet.build(16, 2, transforms=("jpeg:50", "blur:3"))
    assert baselines.resolve("yu", {"width": 0.5})["width"] == 0.5


# ---------------------------------------------------------------------------------------------
# Marra et al.

class BoxDenoiser(nn.Module):
    """A 5x5 mean filter (reflect padding): leaves constant images untouched, so the residual of a
    constant colour plus a pattern is the pattern's high-pass part."""

    def denoise(self, x):
        return F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, stride=1)


def patterned(pattern, n, seed, noise=10.0):
    """uint8 (n,3,S,S): a random constant colour per image + the pattern + Gaussian noise (0-255)."""
    g = torch.Generator().manual_seed(seed)
    base = 60 + 130 * torch.rand(n, 3, 1, 1, generator=g)
    x = base + pattern + noise * torch.randn(n, *pattern.shape, generator=g)
    return x.round().clamp(0, 255).to(torch.uint8)


def test_marra_fingerprint_recovers_the_additive_pattern():
    g = torch.Generator().manual_seed(1)
    patterns = [10 * torch.randn(3, 16, 16, generator=g) for _ in range(2)]
    model = marra.build(16, 2, denoiser=BoxDenoiser())
    model, info = marra.train(model, [patterned(p, 64, seed=i) for i, p in enumerate(patterns)],
                              steps=0, batch_size=16, seed=0, device="cpu")
    assert info["images"] == 128
    for c, p in enumerate(patterns):
        r = np.corrcoef(model.fingerprints[c].flatten().numpy(), p.flatten().numpy())[0, 1]
        assert r > 0.9, (c, r)
    # scoring fresh images by correlation with each fingerprint attributes them all correctly
    fresh = torch.cat([patterned(p, 8, seed=10 + i) for i, p in enumerate(patterns)])
    scores = marra.correlate(model, fresh, "cpu")
    assert scores.shape == (16, 2)
    assert (scores.argmax(1) == torch.arange(2).repeat_interleave(8)).all()


def test_marra_embedding_cosine_is_the_pearson_correlation_of_residuals():
    model = marra.build(16, 2, denoiser=BoxDenoiser())
    images = random_pool(3, 16, seed=4)
    e = marra.embed(model, images, "cpu")
    r = model.residual(images, "cpu").flatten(1).double().numpy()
    assert e.shape == (3, 3 * 16 * 16)
    cosine = F.cosine_similarity(e[0:1], e[1:3]).numpy()
    np.testing.assert_allclose(cosine, np.corrcoef(r)[0, 1:3], atol=1e-5)
    np.testing.assert_allclose(e.norm(dim=1).numpy(), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Yu et al.

def checkerboards(n, cell, seed):
    """uint8 (n,3,16,16): a random constant colour per image +- 40 in a checkerboard of cell px."""
    g = torch.Generator().manual_seed(seed)
    i = torch.arange(16) // cell
    board = 40.0 * (2 * ((i[:, None] + i[None, :]) % 2) - 1)
    base = 60 + 130 * torch.rand(n, 3, 1, 1, generator=g)
    return (base + board).round().clamp(0, 255).to(torch.uint8)


def test_yu_shapes_and_equalized_learning_rate():
    assert [yu.channels(level, 1.0) for level in range(7)] == [512, 512, 256, 128, 64, 32, 16]
    model = yu.build(16, 3, width=1 / 16)
    # 16x16: fromRGB to level 3, blocks at 16 and 8, then the 4x4 conv and two dense layers
    assert model.from_rgb.weight.shape == (8, 3, 1, 1)
    assert [tuple(b.weight.shape[:2]) for blk in model.blocks for b in blk] == \
        [(8, 8), (16, 8), (16, 16), (32, 16)]
    assert model.dense.weight.shape[:2] == (32, 32 * 16)
    for layer in model.modules():
        if isinstance(layer, EqualizedConv2d):
            fan_in = layer.weight[0].numel()
            gain = 1.0 if layer is model.out else math.sqrt(2)
            assert layer.runtime_scale == pytest.approx(gain / math.sqrt(fan_in))
    big = model.dense.weight   # N(0, 1) stored weights; He's constant applied at run time
    assert big.std().item() == pytest.approx(1.0, abs=0.05)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert model(x).shape == (2, 3)
    assert yu.embed(model, random_pool(5, 16), "cpu").shape == (5, 32)


def test_yu_separates_two_checkerboard_classes_in_few_steps():
    model = yu.build(16, 2, seed=0, width=1 / 16)
    data = [checkerboards(32, 1, seed=0), checkerboards(32, 2, seed=1)]
    model, info = yu.train(model, data, steps=120, batch_size=16, seed=0, device="cpu", width=1 / 16)
    assert info["accuracy"] > 0.9, info
    assert not model.training
    with torch.no_grad():
        pred = model(torch.cat([checkerboards(8, 1, 5), checkerboards(8, 2, 6)]).float() / 127.5 - 1)
    assert (pred.argmax(1) == torch.arange(2).repeat_interleave(8)).float().mean() >= 0.9


def test_yu_same_seed_same_weights_and_rng_left_alone():
    data = [checkerboards(8, 1, seed=0), checkerboards(8, 2, seed=1)]
    state = torch.get_rng_state()

    def run(seed):
        model = yu.build(16, 2, seed=seed, width=1 / 16)
        return state_copy(yu.train(model, data, 3, 4, seed, "cpu", width=1 / 16)[0])

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), state)


def test_dnadet_transformation_registry():
    specs = dnadet.paper_transforms()
    assert len(specs) == len(set(specs)) == 162
    kinds = {s.split(":")[0] for s in specs}
    assert kinds == set(dnadet.KINDS)
    x = random_pool(1, 16, seed=3)[0]
    gen = torch.Generator().manual_seed(0)
    for spec in ("jpeg:30", "djpeg:50:95", "gblur:29", "mblur:5", "resize:lanczos:0.25", "noise:5"):
        y = dnadet.apply_transform(spec, x, gen)
        assert y.dtype == torch.uint8 and y.shape == x.shape and not torch.equal(x, y), spec
    for bad in ("jpeg:101", "gblur:4", "resize:cubic:0.5", "resize:nearest:1.5", "noise"):
        with pytest.raises(ValueError, match="bad transformation"):
            dnadet.parse_transform(bad)


def test_dnadet_pretraining_tells_transformations_apart():
    specs = ("gblur:5", "noise:30", "jpeg:10")
    hp = dict(width=1 / 8, transforms=specs, pretrain_steps=40, pretrain_batch=24,
              pretrain_lr=1e-2, pretrain_crop=16)
    model = dnadet.build(16, 2, seed=0, **hp)
    images = random_pool(32, 16, seed=0)
    info = dnadet.pretrain(model, images, torch.Generator().manual_seed(0), "cpu",
                           **baselines.resolve("dnadet", hp))
    assert info["pretrain_accuracy"] > 0.7, info
    gen = torch.Generator().manual_seed(9)
    fresh = random_pool(10, 16, seed=1)
    x = torch.stack([dnadet.apply_transform(s, im, gen) for s in specs for im in fresh])
    model.eval()
    with torch.no_grad():
        pred = model.pretrain_head(model.features(x.float() / 127.5 - 1)).argmax(1)
    assert (pred == torch.arange(3).repeat_interleave(10)).float().mean() > 0.6   # chance: 1/3


def test_supcon_loss_matches_a_hand_computed_case():
    angles = torch.tensor([0.0, 0.3, 2.0, 2.5], dtype=torch.float64)
    z = torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.tensor([0, 0, 1, 1])
    t = 0.07
    total = 0.0
    for i in range(4):   # each anchor has exactly one positive: the other member of its class
        p = i ^ 1
        den = sum(math.exp(float(z[i] @ z[a]) / t) for a in range(4) if a != i)
        total += -math.log(math.exp(float(z[i] @ z[p]) / t) / den)
    assert dnadet.supcon_loss(z, labels, t).item() == pytest.approx(total / 4, rel=1e-9)
    # anchors without positives do not count
    lonely = dnadet.supcon_loss(z[:3], labels[:3], t)
    den0 = sum(math.exp(float(z[0] @ z[a]) / t) for a in (1, 2))
    den1 = sum(math.exp(float(z[1] @ z[a]) / t) for a in (0, 2))
    expect = -(math.log(math.exp(float(z[0] @ z[1]) / t) / den0)
               + math.log(math.exp(float(z[1] @ z[0]) / t) / den1)) / 2
    assert lonely.item() == pytest.approx(expect, rel=1e-9)


def test_uncertainty_weighted_sum_matches_its_formula():
    losses = torch.tensor([1.5, 0.3])
    s = torch.tensor([0.2, -0.4], requires_grad=True)
    total = dnadet.uncertainty_weighted(losses, s)
    expect = sum(0.5 * math.exp(-si) * li + 0.5 * si for li, si in zip([1.5, 0.3], [0.2, -0.4]))
    assert total.item() == pytest.approx(expect, rel=1e-6)
    total.backward()   # d/ds_i = (1 - exp(-s_i) L_i) / 2: a loss pulls its weight towards 1/L
    torch.testing.assert_close(s.grad, 0.5 * (1 - torch.exp(-s.detach()) * losses))


TINY = dict(width=1 / 8, transforms=("gblur:3", "noise:20"), pretrain_steps=2, pretrain_batch=4,
            pretrain_crop=16, upscale=2, crop=16, crops_per_image=2)


def test_dnadet_training_is_seeded_and_embed_deterministic():
    data = [random_pool(4, 16, seed=0), random_pool(4, 16, seed=1), random_pool(4, 16, seed=2)]
    state = torch.get_rng_state()

    def run(seed):
        model = dnadet.build(16, 3, seed=seed, **TINY)
        return dnadet.train(model, data, 3, 6, seed, "cpu", **TINY)

    (m1, info), (m2, _), (m3, _) = run(0), run(0), run(1)
    a, b, c = state_copy(m1), state_copy(m2), state_copy(m3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(math.isfinite(info[k]) for k in ("loss", "ce", "supcon", "pretrain_loss"))
    assert info["weight_ce"] != 0.5   # the uncertainty weights moved
    images = random_pool(5, 16, seed=7)
    e1, e2 = dnadet.embed(m1, images, "cpu"), dnadet.embed(m1, images, "cpu")
    assert e1.shape == (5, 64) and torch.equal(e1, e2)
    # another batch shape may pick other conv kernels: float32 rounding ~1e-5 through a few layers
    torch.testing.assert_close(dnadet.embed(m1, images[:2], "cpu"), e1[:2], rtol=1e-4, atol=1e-4)


def test_the_pair_scorer_sees_the_raw_embeddings_the_verifier_was_trained_on():
    from modelfp.baselines import abady
    size, hp = TOY["abady"]
    model = abady.build(size, 2, seed=0, **hp)
    centre = torch.randn(model_dim := abady.embed(model, random_pool(1, size), "cpu").shape[1])
    wrapped = baselines.BaselineExtractor("abady", model, size, centre)
    raw_a, raw_b = torch.randn(5, model_dim), torch.randn(5, model_dim)
    scores = baselines.pair_scorer(wrapped)((raw_a - centre).numpy(), (raw_b - centre).numpy())
    torch.testing.assert_close(torch.from_numpy(scores), abady.pair_score(model, raw_a, raw_b, "cpu"),
                               atol=1e-5, rtol=0)
    assert baselines.pair_scorer(baselines.BaselineExtractor("yu", yu.build(16, 2, width=1 / 16), 16)) is None


# ---------------------------------------------------------------------------------------------
# Resumable training state (common.TrainingState, train-baseline --state)

class Killed(Exception):
    """The simulated kill of a training process."""


def killing_save(at: int):
    """checkpoints.save that dies at its `at`-th call, before writing: the state file holds the
    (at-1)-th state and the steps since it are lost, as when a process is killed between saves."""
    real, calls = checkpoints.save, []

    def save(payload, path):
        calls.append(path)
        if len(calls) == at:
            raise Killed
        real(payload, path)
    return save


# name: (hp beyond TOY's, steps, batch size); with 4 states a phase, 20 steps: a state every 5 steps.
# Held-out evaluations every 2 steps (2 of each class's 8 images held out), patience beyond the run:
# the best evaluation's weights and the learning curve are part of the state, and the kills land.
STOPPING = Stopping(0.25, 2, 100)
RESUME = {"yu": ({}, 20, 4),
          "dnadet": (dict(pretrain_steps=4, pretrain_batch=4, pretrain_crop=16, crop=16, crops_per_image=2),
                     20, 6),
          "repmix": ({}, 10, 4),
          "abady": ({}, 20, 6),
          "pose": (dict(aug_every=3), 20, 4)}


@pytest.mark.parametrize("name, kill", [
    ("yu", 3), ("repmix", 3),       # the state of step 10 (repmix: 4), the steps after it lost
    ("dnadet", 3), ("dnadet", 6),   # in the pre-training (a state per step), in the main phase
    ("abady", 3), ("abady", 6),     # in the embedding phase, in the verifier phase (early stopping's best kept)
    ("pose", 2), ("pose", 4)])      # state at step 5: within the 2nd augmenter's epoch; step 15: at an epoch's end
def test_training_killed_and_resumed_from_its_state_equals_training_in_one_go(name, kill, tmp_path, monkeypatch):
    monkeypatch.setattr(baselines.common, "STATE_SAVES", 4)   # fewer, smaller writes than 10 a phase
    size, hp = TOY[name]
    extra, steps, batch = RESUME[name]
    hp = {**hp, **extra}
    module = baselines.baseline(name)
    data = [random_pool(8, size, seed=0), random_pool(8, size, seed=1)]

    def run(state=None):
        return module.train(module.build(size, 2, seed=0, **hp), data, steps, batch, 0, "cpu", state_path=state,
                            stopping=STOPPING, **hp)

    whole, info = run()
    assert info["heldout_images"] == 4 and len(info["history"]) >= steps // 2
    state = tmp_path / "state.pt"
    with monkeypatch.context() as m, pytest.raises(Killed):
        m.setattr(checkpoints, "save", killing_save(kill))
        run(state)
    resumed, resumed_info = run(state)
    a, b = state_copy(whole), state_copy(resumed)
    # exact: both runs in this process, same shapes and threads, the resumed one repeating the same kernels
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k: v for k, v in info.items() if k != "seconds"} == \
        {k: v for k, v in resumed_info.items() if k != "seconds"}


def test_a_state_of_another_configuration_is_refused(tmp_path, monkeypatch):
    data = [checkerboards(8, 1, seed=0), checkerboards(8, 2, seed=1)]
    state = tmp_path / "state.pt"
    with monkeypatch.context() as m, pytest.raises(Killed):
        m.setattr(checkpoints, "save", killing_save(2))
        yu.train(yu.build(16, 2, width=1 / 16), data, 20, 4, 0, "cpu", state_path=state, width=1 / 16)
    with pytest.raises(ValueError) as err:
        yu.train(yu.build(16, 2, width=1 / 16), data, 20, 8, 1, "cpu", state_path=state, width=1 / 16)
    assert str(err.value) == (f"{state}: training state of another configuration (its batch_size, seed differ); "
                              f"delete it to start over")


def test_train_baseline_resumes_its_state_and_deletes_it_when_done(tmp_path, monkeypatch):
    images = [arg for s, name in enumerate("ab")
              for arg in ("--images", name, str(write_pngs(tmp_path / name, [f"{i:03d}" for i in range(12)], s)))]
    args = ["train-baseline", "--name", "yu", *images, "--train-fraction", "0.5", "--image-size", "16", "--steps", "10",
            "--batch-size", "4", "--seed", "0", "--hp", '{"width": 0.0625}', "--holdout", "0.15", "--eval-every", "2",
            "--patience", "100", "--device", "cpu"]
    state = tmp_path / "state.pt"
    assert steps.main([*args, "--out", str(tmp_path / "whole.pt"), "--history", str(tmp_path / "whole.csv")]) == 0
    resumed = [*args, "--out", str(tmp_path / "resumed.pt"), "--history", str(tmp_path / "resumed.csv"),
               "--state", str(state)]
    with monkeypatch.context() as m, pytest.raises(Killed):
        m.setattr(checkpoints, "save", killing_save(4))
        steps.main(resumed)
    assert state.exists() and not (tmp_path / "resumed.pt").exists() and not (tmp_path / "resumed.csv").exists()
    assert steps.main(resumed) == 0
    assert not state.exists()
    a, b = (baselines.load(tmp_path / f).state_dict() for f in ("whole.pt", "resumed.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)    # exact: one process, same shapes and threads
    whole_rows, resumed_rows = (_rows(tmp_path / f) for f in ("whole.csv", "resumed.csv"))
    assert whole_rows == resumed_rows and [r["step"] for r in whole_rows] == ["2", "4", "6", "8", "10"]
    info = baselines.load(tmp_path / "resumed.pt").meta["info"]
    assert info["steps_run"] == 10 and "history" not in info
    assert float(max(r["heldout_acc"] for r in whole_rows)) == info["heldout_acc"]


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------
# Held-out early stopping (common.Stopping, common.Monitor)

def test_held_out_part_is_a_seeded_disjoint_share_of_each_class():
    labels = torch.tensor([0] * 40 + [1] * 10 + [2] * 3)
    fit, held = common.hold_out(labels, 0.15, seed=0)
    assert torch.equal(torch.sort(torch.cat([fit, held])).values, torch.arange(len(labels)))   # disjoint, all
    assert torch.bincount(labels[held], minlength=3).tolist() == [6, 2, 0]   # 15 %, at least 2, none of 3
    assert torch.equal(held, common.hold_out(labels, 0.15, seed=0)[1])
    assert not torch.equal(held, common.hold_out(labels, 0.15, seed=1)[1])
    # a class's draw is its own: other classes' sizes do not move it
    other = common.hold_out(torch.tensor([0] * 40 + [1] * 30), 0.15, seed=0)[1]
    assert torch.equal(held[labels[held] == 0], other[other < 40])
    assert len(common.hold_out(labels, 0.0, seed=0)[1]) == 0


def fabricated(curve):
    """A stand-in for a method's heldout_accuracy: the i-th call returns curve[i]; the images of each
    call are recorded."""
    seen = []

    def score(model, images, labels, device):
        seen.append(images.clone())
        return curve[len(seen) - 1]
    return score, seen


def test_early_stopping_keeps_the_weights_of_the_best_evaluation_and_stops_after_patience(monkeypatch):
    data = [checkerboards(12, 1, seed=0), checkerboards(12, 2, seed=1)]

    def run(steps, curve):
        score, _ = fabricated(curve)
        monkeypatch.setattr(yu, "heldout_accuracy", score)
        return yu.train(yu.build(16, 2, width=1 / 16), data, steps, 4, 0, "cpu", stopping=Stopping(0.2, 5, 2),
                        width=1 / 16)

    model, info = run(40, [0.2, 0.5, 0.9, 0.4, 0.9, 1.0, 1.0, 1.0])
    assert (info["steps_run"], info["best_step"], info["heldout_acc"]) == (25, 15, 0.9)   # 0.9 again is no gain
    assert info["stopped_early"] and info["heldout_images"] == 4 and info["images"] == 20
    assert [(r["step"], r["heldout_acc"], r["phase"]) for r in info["history"]] == \
        [(5, 0.2, "train"), (10, 0.5, "train"), (15, 0.9, "train"), (20, 0.4, "train"), (25, 0.9, "train")]
    # the weights kept are those of step 15: a run of 15 steps ends there (scoring draws nothing)
    at_15, info_15 = run(15, [0.2, 0.5, 0.9])
    assert not info_15["stopped_early"] and info_15["best_step"] == 15
    a, b = state_copy(model), state_copy(at_15)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_reads_the_held_out_part_of_the_training_side_only(tmp_path, monkeypatch):
    """The fit and held-out parts split the training side, and the step kept is the held-out
    accuracy's choice: a fabricated score that would pick another step from evaluation-side images
    (its curve peaking later) never gets to, as none is ever passed to the held-out scorer."""
    folders = {name: write_pngs(tmp_path / name, [f"{i:03d}" for i in range(40)], s) for s, name in enumerate("ab")}

    def side(which):
        return {bytes(ex.windows(load_image(p, None), 16, 1)[0].numpy()) for f in folders.values()
                for p in folder_side(f, 0.5, which)[0]}
    train_side, eval_side = side(TRAIN), side(EVAL)
    assert train_side and eval_side and not train_side & eval_side
    held_curve, eval_curve = [0.3, 0.8, 0.5, 0.4, 0.2, 0.1], [0.3, 0.4, 0.5, 0.9, 0.2, 0.1]
    seen, parts = [], []

    def score(model, images, labels, device):
        keys = {bytes(x.numpy()) for x in images}
        seen.append(keys)
        return (eval_curve if keys & eval_side else held_curve)[len(seen) - 1]

    def split(*args):
        parts.append(common.fit_and_heldout(*args))
        return parts[-1]
    monkeypatch.setattr(yu, "heldout_accuracy", score)
    monkeypatch.setattr(yu, "fit_and_heldout", split)
    images = [arg for name, folder in folders.items() for arg in ("--images", name, str(folder))]
    assert steps.main(["train-baseline", "--name", "yu", *images, "--train-fraction", "0.5", "--image-size", "16",
                       "--steps", "30", "--batch-size", "4", "--seed", "0", "--hp", '{"width": 0.0625}',
                       "--holdout", "0.25", "--eval-every", "5", "--patience", "3", "--device", "cpu",
                       "--out", str(tmp_path / "yu.pt"), "--history", str(tmp_path / "history.csv")]) == 0
    fit, _, held, _ = parts[0]
    fit_keys, held_keys = ({bytes(x.numpy()) for x in t} for t in (fit, held))
    assert fit_keys and held_keys and not fit_keys & held_keys
    assert fit_keys | held_keys == train_side                     # together exactly the training side
    assert len(seen) == 5 and all(keys == held_keys for keys in seen)   # stopped at 25: 3 without a gain
    info = baselines.load(tmp_path / "yu.pt").meta["info"]
    assert (info["best_step"], info["heldout_acc"], info["steps_run"]) == (10, 0.8, 25)   # not 20, eval's peak
    assert [(r["step"], r["heldout_acc"]) for r in _rows(tmp_path / "history.csv")] == \
        [("5", "0.3"), ("10", "0.8"), ("15", "0.5"), ("20", "0.4"), ("25", "0.2")]


def test_load_fingerprinter_opens_an_extractor_and_a_trained_baseline_alike_and_only_abady_verifies(tmp_path):
    """`embed` reads either kind of file through one function; `evaluate --verifier` takes only a
    method with a pair verifier of its own."""
    from modelfp import denoise
    cfg = ex.ExtractorConfig(backbone="none", transform="log1p", image_size=16)
    ex.save(ex.build(denoise.init_model(depth=3, features=4, seed=0), cfg, ["a", "b"], seed=0), tmp_path / "x.pt")
    model = yu.build(16, 2, seed=0, width=1 / 16)
    dim = yu.embed(model, random_pool(1, 16), "cpu").shape[1]
    baselines.save(tmp_path / "yu.pt", "yu", model, 16, ["a", "b"], {"width": 1 / 16}, torch.zeros(dim), {})
    assert isinstance(baselines.load_fingerprinter(tmp_path / "x.pt", "cpu"), ex.Extractor)
    loaded = baselines.load_fingerprinter(tmp_path / "yu.pt", "cpu")
    assert isinstance(loaded, baselines.BaselineExtractor) and loaded.name == "yu"
    with pytest.raises(ValueError, match="yu.pt: its method has no pair verifier of its own"):
        baselines.pair_verifier(tmp_path / "yu.pt")
