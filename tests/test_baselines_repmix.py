"""RepMix on tiny inputs (a ResNet-18 at 32x32): the mixed loss is the proportion-weighted CE of
its parts, mixing acts on features (not pixels), the gate, Dirichlet proportions, the weights file,
seeding, embedding and learning."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from modelfp.baselines import repmix

from conftest import random_pool, state_copy

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(backbone="resnet18", embedding=16, resize=32, crop=28)


def colours(n, hue, seed):
    """uint8 (n,3,32,32): a random brightness of one colour (0 reddish, 1 bluish) + pixel noise."""
    g = torch.Generator().manual_seed(seed)
    tint = torch.tensor([[200.0, 60.0, 60.0], [60.0, 60.0, 200.0]])[hue][None, :, None, None]
    x = tint * (0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=g)) + 10 * torch.randn(n, 3, 32, 32,
                                                                                   generator=g)
    return x.round().clamp(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# The loss

def test_mixed_loss_equals_the_proportion_weighted_cross_entropy_of_its_parts():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64)
    targets = torch.tensor([[0, 2], [1, 1], [2, 0], [1, 0]])
    lam = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.1, 0.9], [1.0, 0.0]], dtype=torch.float64)
    weight = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)

    def ce(i, c):   # -log softmax by hand
        return -(logits[i, c].item() - math.log(sum(math.exp(v) for v in logits[i].tolist())))

    plain = sum(lam[i, k].item() * ce(i, targets[i, k].item()) for i in range(4) for k in range(2))
    got = repmix.mixed_cross_entropy(logits, targets, lam)
    assert got.item() == pytest.approx(plain / 4, rel=1e-12)
    w = [[lam[i, k].item() * weight[targets[i, k]].item() for k in range(2)] for i in range(4)]
    weighted = sum(w[i][k] * ce(i, targets[i, k].item()) for i in range(4) for k in range(2))
    got = repmix.mixed_cross_entropy(logits, targets, lam, weight)
    assert got.item() == pytest.approx(weighted / sum(map(sum, w)), rel=1e-12)


def test_one_hot_proportions_reduce_to_plain_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 3, 1, 1, 2])
    other = torch.tensor([2, 2, 0, 3, 1])
    weight = torch.tensor([1.0, 0.2, 0.5, 2.0])
    for first in (True, False):   # proportion 1 on the true label, 0 on the other, either column
        targets = torch.stack([y, other] if first else [other, y], 1)
        lam = torch.tensor([[1.0, 0.0] if first else [0.0, 1.0]] * 5)
        torch.testing.assert_close(repmix.mixed_cross_entropy(logits, targets, lam),
                                   F.cross_entropy(logits, y))
        torch.testing.assert_close(repmix.mixed_cross_entropy(logits, targets, lam, weight),
                                   F.cross_entropy(logits, y, weight=weight))


def test_gate_scales_the_real_logit_by_p_real_and_the_others_by_p_fake():
    attribution = torch.tensor([[2.0, -1.0, 3.0]])
    detection = torch.tensor([[0.0, math.log(3.0)]])   # P(real) 1/4, P(fake) 3/4
    torch.testing.assert_close(repmix.gate(attribution, detection, 1),
                               torch.tensor([[1.5, -0.25, 2.25]]))
    torch.testing.assert_close(repmix.gate(attribution, detection, None), attribution * 0.75)
    assert repmix.detection_weights(3, 1).tolist() == [1.0, 0.5]   # [1, 1/(C-1)]
    assert repmix.detection_targets(torch.tensor([0, 1, 2]), 1).tolist() == [1, 0, 1]


def test_model_loss_mixes_features_and_weights_the_parts_by_their_proportions():
    model = repmix.build(28, 3, seed=0, real_class=0, **TINY).eval()   # eval: BN per image
    x = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    y = torch.tensor([0, 1, 2, 1])
    index = torch.tensor([[0, 2], [1, 0], [2, 3], [3, 1]])
    lam = torch.tensor([[0.7, 0.3], [0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    with torch.no_grad():
        loss, attr, det, logits = repmix.repmix_loss(model, x, y, index, lam)
        # mixing acts on the layer4 features: the mixed pooled features are the mixture of the
        # parts' (pooling is linear), while pixel mixup would give something else
        pooled = model.trunk(x)
        mixed = (lam[:, :, None] * pooled[index]).sum(1)
        torch.testing.assert_close(model.trunk(x, (index, lam)), mixed, atol=1e-5, rtol=1e-5)
        pixels = model.trunk((lam[:, :, None, None, None] * x[index]).sum(1))
        assert not torch.allclose(pixels, mixed, atol=1e-3)
        gated, d = model.heads(model.embedding(mixed))
    torch.testing.assert_close(logits, gated, atol=1e-5, rtol=1e-5)
    expect_attr = sum(lam[i, k] * F.cross_entropy(gated[i:i + 1], y[index[i, k]][None])
                      for i in range(4) for k in range(2)) / 4
    real = [index_y == 0 for index_y in y[index].flatten().tolist()]
    w = [lam.flatten()[j].item() * (1.0 if real[j] else 0.5) for j in range(8)]
    ce_d = [F.cross_entropy(d[j // 2:j // 2 + 1], torch.tensor([0 if real[j] else 1])).item()
            for j in range(8)]
    expect_det = sum(a * b for a, b in zip(w, ce_d)) / sum(w)
    assert attr.item() == pytest.approx(expect_attr.item(), rel=1e-5)
    assert det.item() == pytest.approx(expect_det, rel=1e-5)
    assert loss.item() == pytest.approx(attr.item() + det.item(), rel=1e-6)
    # one-hot proportions on the sample itself: the plain CE of the unmixed model
    one_hot = torch.tensor([[1.0, 0.0]] * 4)
    with torch.no_grad():
        _, attr1, det1, _ = repmix.repmix_loss(model, x, y, index, one_hot)
        plain, d1 = model.heads(model.features(x))
    assert attr1.item() == pytest.approx(F.cross_entropy(plain, y).item(), rel=1e-5)
    assert det1.item() == pytest.approx(F.cross_entropy(d1, (y != 0).long(),
                                                        weight=torch.tensor([1.0, 0.5])).item(),
                                        rel=1e-5)


def test_proportions_follow_dirichlet_alpha_and_partners_are_seeded_permutations():
    lam = repmix.dirichlet(20000, 2, 0.4, torch.Generator().manual_seed(0))
    assert lam.shape == (20000, 2) and (lam >= 0).all()
    torch.testing.assert_close(lam.sum(1), torch.ones(20000))
    # Dirichlet(0.4, 0.4) = Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.139
    assert lam[:, 0].mean().item() == pytest.approx(0.5, abs=0.01)
    assert lam[:, 0].var().item() == pytest.approx(1 / 7.2, abs=0.005)
    again = repmix.dirichlet(20000, 2, 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(lam, again)
    idx = repmix.partners(6, 3, torch.Generator().manual_seed(0))
    assert idx[:, 0].tolist() == list(range(6))
    assert all(sorted(idx[:, k].tolist()) == list(range(6)) for k in (1, 2))


# ---------------------------------------------------------------------------------------------
# Weights, seeding, embedding, learning

def test_weights_file_is_loaded_and_a_wrong_one_is_named_in_the_error(tmp_path):
    net = torchvision.models.resnet18(num_classes=5)   # its fc differs: it is dropped anyway
    good = tmp_path / "resnet18-local.pth"   # as old torchvision files: no num_batches_tracked
    torch.save({k: v for k, v in net.state_dict().items() if "num_batches" not in k}, good)
    model = repmix.build(28, 2, weights=str(good), **TINY)
    assert torch.equal(model.backbone.conv1.weight, net.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, net.layer4[1].bn2.running_var)
    wrong = tmp_path / "not-a-resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, wrong)
    with pytest.raises(ValueError, match=r"not-a-resnet18\.pth.*does not fit torchvision's resnet18"):
        repmix.build(28, 2, weights=str(wrong), **TINY)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"cannot read the weights file .*garbage\.pth"):
        repmix.build(28, 2, weights=str(garbage), **TINY)
    with pytest.raises(ValueError, match="unknown backbone 'resnet9'"):
        repmix.build(28, 2, backbone="resnet9")


def test_training_is_seeded_and_leaves_the_global_rngs_alone():
    data = [colours(4, 0, seed=0), colours(4, 1, seed=1)]
    hp = dict(TINY, real_class=0)
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()

    def run(seed):
        model = repmix.build(32, 2, seed=seed, **hp)
        return repmix.train(model, data, 2, 4, seed, "cpu", **hp)

    (m1, info), (m2, _), (m3, _) = run(0), run(0), run(1)
    a, b, c = state_copy(m1), state_copy(m2), state_copy(m3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), states[1]))
    assert random.getstate() == states[2]
    assert not m1.training and m1.real_class == 0
    assert all(math.isfinite(info[k]) for k in ("loss", "attribution", "detection"))


def test_short_training_separates_two_colour_classes():
    hp = dict(TINY, lr=1e-3)
    model = repmix.build(32, 2, seed=0, **hp)
    data = [colours(32, 0, seed=0), colours(32, 1, seed=1)]
    model, info = repmix.train(model, data, steps=15, batch_size=16, seed=0, device="cpu", **hp)
    # on mixed, corrupted crops, against each sample's largest part (chance: 1/2)
    assert info["accuracy"] > 0.7, info
    with torch.no_grad():   # fresh, clean images through embed's path (the untrained model: 1/2)
        fresh = torch.cat([colours(16, 0, seed=5), colours(16, 1, seed=6)])
        pred = model.heads(model.zero_shot(fresh.float() / 127.5 - 1))[0].argmax(1)
    assert (pred == torch.arange(2).repeat_interleave(16)).float().mean() >= 0.9
