"""POSE on tiny inputs: the DCT input, the augmentation networks (close in pixels, away in
features, one more per epoch, frozen after it), the batch-hard triplet term, seeding and embed."""

import math

import numpy as np
import pytest
import scipy.fft
import torch

from modelfp.baselines import pose
from modelfp.optim import Adam
from modelfp.testbed.common import resolve

from conftest import random_pool, smooth_pool, state_copy

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(width=1 / 16, embedding=16)   # channels 4-8-16-32, a 16-d embedding
HP = resolve("pose", pose.DEFAULTS, TINY)


def three_classes(n=4, size=32):
    return [smooth_pool(n, size, seed=c) for c in range(3)]


def test_dct_input_is_scipy_orthonormal_dctn_and_inverts():
    model = pose.build(32, 2, **TINY).eval()
    x = random_pool(2, 32, seed=3).float() / 127.5 - 1
    expect = scipy.fft.dctn(x.double().numpy(), axes=(-2, -1), norm="ortho")
    got = model.dct @ x @ model.dct.T
    np.testing.assert_allclose(got.numpy(), expect, atol=1e-4)
    np.testing.assert_allclose((model.dct.T @ got @ model.dct).numpy(), x.numpy(), atol=1e-5)
    # the network sees exactly that DCT
    with torch.no_grad():
        direct = model.fc(model.trunk(torch.from_numpy(expect).float()).flatten(1))
        torch.testing.assert_close(model.features(x), direct, rtol=1e-4, atol=1e-4)


def test_augmentation_network_stays_close_in_pixels_and_moves_away_in_features():
    model = pose.build(32, 2, seed=0, **TINY)
    x = smooth_pool(4, 32, seed=0).float() / 127.5 - 1
    before = state_copy(model)

    def trained(**hp):
        aug = pose.build(32, 2, **TINY).add_augmenter(1)   # the same start for every run
        opt = Adam(aug.parameters(), lr=HP["aug_lr"])
        d0 = pose.augmentation_distance(model, aug, x).mean().item()
        for _ in range(60):
            pose.augmentation_step(model, aug, opt, x, **{**HP, **hp})
        with torch.no_grad():
            mse = (aug(x) - x).pow(2).mean().item()
        return d0, pose.augmentation_distance(model, aug, x).mean().item(), mse

    d0, d1, mse = trained()
    assert d0 < 1e-4   # a new network starts near the identity
    assert d1 > max(20 * d0, HP["aug_margin"] / 2), (d0, d1)   # towards the distance asked for
    # the identity has loss aug_weight * aug_margin, so a minimiser's MSE cannot exceed it
    assert mse <= HP["aug_weight"] * HP["aug_margin"], mse
    # without the feature term the MSE alone keeps it at the identity: the move is that term's
    _, d_mse_only, _ = trained(aug_weight=0.0)
    assert d1 > 5 * d_mse_only, (d1, d_mse_only)
    # the classifier, running statistics included, is untouched by the augmentation steps
    after = state_copy(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_augmentation_networks_grow_one_per_epoch_and_freeze_after_it():
    data = three_classes()   # 12 images at batch 6: an epoch is 2 steps
    model, info = pose.train(pose.build(32, 3, **TINY), data, 5, 6, 0, "cpu", **TINY)
    assert info["steps_per_augmenter"] == 2 and info["augmenters"] == len(model.augmenters) == 3
    hp = dict(TINY, aug_every=3)
    long, _ = pose.train(pose.build(32, 3, **hp), data, 6, 6, 0, "cpu", **hp)
    short, _ = pose.train(pose.build(32, 3, **hp), data, 3, 6, 0, "cpu", **hp)
    assert len(long.augmenters) == 2 and len(short.augmenters) == 1
    # network 0 trained during steps 0-2 only: frozen during the next epoch
    a, b = long.augmenters[0].state_dict(), short.augmenters[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(long.augmenters[1].g[0].weight, long.augmenters[0].g[0].weight)


def test_batch_hard_triplet_matches_a_hand_computed_case():
    z = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor: (hardest positive, nearest negative): 0: (1, 3), 1: (1, 2), 2: (0.5, 2), 3: (0.5, 2.5)
    expect = (max(0, 1 - 3 + 1.5) + max(0, 1 - 2 + 1.5) + max(0, 0.5 - 2 + 1.5)
              + max(0, 0.5 - 2.5 + 1.5)) / 4
    assert pose.batch_hard_triplet(z, labels, 1.5).item() == pytest.approx(expect, rel=1e-5)
    # anchors without a positive do not count
    assert pose.batch_hard_triplet(z[:3], labels[:3], 1.5).item() == \
        pytest.approx((0 + 0.5) / 2, rel=1e-5)


def test_training_is_seeded_and_leaves_global_rng_alone():
    data = three_classes()
    hp = dict(TINY, aug_every=2)
    state = torch.get_rng_state()

    def run(seed):
        return pose.train(pose.build(32, 3, seed=seed, **hp), data, 4, 6, seed, "cpu", **hp)

    (m1, info), (m2, _), (m3, _) = run(0), run(0), run(1)
    a, b, c = state_copy(m1), state_copy(m2), state_copy(m3)
    assert any(k.startswith("augmenters.1.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), state)
    assert not m1.training
    assert all(math.isfinite(info[k]) for k in ("loss", "ce", "triplet", "aug_mse", "aug_distance"))
    # a fresh build takes the trained state, augmentation networks included
    fresh = pose.build(32, 3, seed=5, **hp)
    fresh.load_state_dict(m1.state_dict())
    assert len(fresh.augmenters) == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_bad_sizes_and_unknown_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="multiple of 16"):
        pose.build(24, 2)
    with pytest.raises(ValueError, match="unknown pose hyper-parameters"):
        pose.build(32, 2, aug_evry=2)
