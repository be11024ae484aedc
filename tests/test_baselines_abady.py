"""Abady et al. 2024 on tiny inputs: the contrastive loss, pair and batch sampling, the siamese
verifier's symmetry and range, learning to tell two sources apart, seeding, deterministic
embeddings, local backbone weights."""

import pytest
import torch
import torchvision

from modelfp.baselines import abady
from modelfp.baselines.common import Stopping, hold_out
from modelfp.testbed.common import resolve

from conftest import random_pool, smooth_pool, state_copy

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 32
TINY = dict(backbone="efficientnet_b0", dim=16, resize=SIZE)


def two_sources(n, seed):
    """Two easily told apart sources at SIZE: smooth colour fields and uniform noise."""
    return [smooth_pool(n, SIZE, seed=seed), random_pool(n, SIZE, seed=seed + 1)]


# ---------------------------------------------------------------------------------------------
# Losses and sampling

def test_contrastive_loss_matches_its_formula():
    angles = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    z = torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.tensor([0, 0, 1])
    margin = 1.5
    terms = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        d = float((z[i] - z[j]).norm())
        terms.append(d ** 2 if labels[i] == labels[j] else max(0.0, margin - d) ** 2)
    assert abady.contrastive_loss(z, labels, margin).item() == pytest.approx(sum(terms) / 3,
                                                                              rel=1e-9)
    # a repeated image (d = 0) keeps the gradient finite
    z = torch.nn.functional.normalize(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)),
                                      dim=1)
    z = torch.cat([z, z[:1]]).requires_grad_()
    abady.contrastive_loss(z, torch.tensor([0, 1, 1, 2, 0]), 1.0).backward()
    assert torch.isfinite(z.grad).all()


def test_pairs_batches_and_held_out_images_follow_their_labels():
    labels = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2])   # sorted by class; class 1 has one image
    gen = torch.Generator().manual_seed(0)
    a, b, y = abady.sample_pairs(labels, 200, gen)
    assert y[:100].eq(1).all() and y[100:].eq(0).all()
    assert (labels[a[:100]] == labels[b[:100]]).all() and (a[:100] != b[:100]).all()
    assert (labels[a[100:]] != labels[b[100:]]).all()
    assert set(labels[b[100:]].tolist()) == {0, 1, 2}   # every class meets the others
    idx = abady.class_batch(labels, 2, 3, gen)
    classes = labels[idx].view(2, 3)
    assert (classes == classes[:, :1]).all() and classes[0, 0] != classes[1, 0]
    for row in idx.view(2, 3):   # distinct images where the class has enough
        if labels[row[0]] != 1:
            assert len(set(row.tolist())) == 3
    fit, val = hold_out(torch.tensor([0] * 20 + [1] * 3 + [2] * 5), 0.1, 0)
    assert torch.equal(torch.sort(torch.cat([fit, val])).values, torch.arange(28))
    held = torch.bincount(torch.tensor([0] * 20 + [1] * 3 + [2] * 5)[val], minlength=3)
    assert held.tolist() == [2, 0, 2]   # at least 2 where possible, none from a class of 3
    assert torch.equal(val, val.sort().values) and torch.equal(fit, fit.sort().values)


# ---------------------------------------------------------------------------------------------
# The siamese verifier

def test_verifier_is_symmetric_and_scores_are_probabilities():
    model = abady.build(SIZE, 2, **TINY)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():   # spread the untrained verifier's scores over (0, 1)
        for p in model.verifier.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    ea, eb = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g)
    ab, ba = abady.pair_score(model, ea, eb, "cpu"), abady.pair_score(model, eb, ea, "cpu")
    assert ab.dtype == torch.float32 and ab.shape == (64,)
    assert torch.equal(ab, ba)   # |LN(a) - LN(b)|: bitwise symmetric
    assert (ab >= 0).all() and (ab <= 1).all() and ab.std() > 0.05
    images_a, images_b = random_pool(4, SIZE, seed=1), smooth_pool(4, SIZE, seed=2)
    s_ab = abady.verify_score(model, images_a, images_b, "cpu")
    torch.testing.assert_close(s_ab, abady.verify_score(model, images_b, images_a, "cpu"),
                               rtol=0, atol=1e-6)
    assert s_ab.shape == (4,) and ((s_ab >= 0) & (s_ab <= 1)).all()


def test_training_scores_same_source_pairs_above_different_source_pairs():
    hp = dict(TINY, embed_steps=1, verifier_steps=4, checks=8)
    model = abady.build(SIZE, 2, seed=0, **hp)
    model, info = abady.train(model, two_sources(12, seed=0), steps=15, batch_size=4, seed=0,
                              device="cpu", stopping=Stopping(0.25, 5, 3), **hp)
    assert not model.training and info["heldout_images"] == 6 and info["verifier_val_loss"] is not None
    assert info["heldout_acc"] is not None and {r["phase"] for r in info["history"]} == {"embedding", "verifier"}
    assert 0 < info["verifier_steps_run"] <= 60
    a, b = two_sources(8, seed=10), two_sources(8, seed=20)
    same = torch.cat([abady.verify_score(model, a[c], b[c], "cpu") for c in (0, 1)])
    diff = torch.cat([abady.verify_score(model, a[c], b[1 - c], "cpu") for c in (0, 1)])
    assert ((same >= 0) & (same <= 1)).all() and ((diff >= 0) & (diff <= 1)).all()
    assert same.mean() > diff.mean() + 0.3, (same.mean(), diff.mean())


def test_verifier_early_stopping_keeps_its_best_check():
    model = abady.build(SIZE, 2, **TINY)
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(4).repeat_interleave(10)
    emb, val_emb = torch.randn(40, 16, generator=g), torch.randn(40, 16, generator=g)
    hp = resolve("abady", abady.DEFAULTS, dict(TINY, verifier_lr=1e-2, checks=100, patience=3))
    # embeddings without any source signal: the verifier only overfits, validation loss rises
    info = abady.train_verifier(model, emb, labels, val_emb, labels, 400, torch.Generator()
                                .manual_seed(0), "cpu", **hp)
    assert info["verifier_early_stopped"] and info["verifier_steps_run"] < 400
    a, b, y = abady.sample_pairs(labels, abady.VAL_PAIRS, torch.Generator().manual_seed(0))
    assert abady.pair_loss(model, val_emb, a, b, y) == pytest.approx(info["verifier_val_loss"],
                                                                     abs=1e-6)


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    data = two_sources(6, seed=0)   # 2 images per class held out: early stopping runs too
    hp = dict(TINY, embed_steps=1, verifier_steps=2, checks=2)
    state = torch.get_rng_state()

    def run(seed):
        model = abady.build(SIZE, 2, seed=seed, **hp)
        return state_copy(abady.train(model, data, 2, 4, seed, "cpu", stopping=Stopping(0.1, 1, 1), **hp)[0])

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), state)


def test_local_weights_load_and_a_wrong_file_is_named(tmp_path):
    good = torchvision.models.efficientnet_b0()
    torch.save(good.state_dict(), tmp_path / "b0.pt")
    model = abady.build(SIZE, 2, weights=str(tmp_path / "b0.pt"), **TINY)
    loaded = model.backbone.state_dict()
    assert all(torch.equal(v, loaded[k.removeprefix("features.")])
               for k, v in good.state_dict().items() if k.startswith("features."))
    with pytest.raises(ValueError, match=r"b0\.pt: not torchvision efficientnet_b1 weights"):
        abady.build(SIZE, 2, weights=str(tmp_path / "b0.pt"), backbone="efficientnet_b1", dim=16)
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        abady.build(SIZE, 2, weights=str(tmp_path / "notes.txt"), **TINY)


def test_unknown_hyperparameters_and_backbones_are_rejected():
    with pytest.raises(ValueError, match=r"unknown abady hyper-parameters \['margn'\]"):
        abady.build(SIZE, 2, margn=0.5, **TINY)
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        abady.build(SIZE, 2, backbone="resnet50")
    with pytest.raises(ValueError, match="fewer than 2 images per class"):
        abady.train(abady.build(SIZE, 2, **TINY), two_sources(4, 0), 1, 3, 0, "cpu", **TINY)


def test_images_are_resized_to_the_backbone_input_before_it():
    """resize: the authors' 380-px input; the flattened map (the Dense layer's input) is measured at
    that side, and a small image's embedding is that of its bilinear enlargement."""
    from modelfp.baselines.common import resize_images
    small, large = abady.build(SIZE, 2, seed=0, **TINY), abady.build(SIZE, 2, seed=0, **{**TINY, "resize": 2 * SIZE})
    # EfficientNet's five stride-2 stages: 1 x 1 at 32 px, 2 x 2 at 64 px (1280 channels)
    assert (small.embedding.in_features, large.embedding.in_features) == (1280, 4 * 1280)
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    large.eval()
    with torch.no_grad():
        enlarged = resize_images(x, 2 * SIZE)
        assert enlarged.shape[-1] == 2 * SIZE
        torch.testing.assert_close(large.features(x), large.features(enlarged))
    with pytest.raises(ValueError, match="resize"):
        abady.build(SIZE, 2, **{**TINY, "resize": 0})
