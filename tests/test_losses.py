"""P x K batches and the batch-hard triplet loss of Eq. 14."""

import pytest
import torch

from modelfp.losses import PKSampler, attribution_loss, batch_hard_triplet


def test_pk_batches_hold_p_distinct_models_k_times_each():
    sampler = PKSampler(n_models=10, p=4, k=3, seed=0)
    for _ in range(20):
        batch = next(sampler)
        assert batch.shape == (12,)
        models, counts = batch.unique(return_counts=True)
        assert len(models) == 4 and (counts == 3).all()
        # model-major: each model's K images are adjacent
        assert (batch.view(4, 3) == batch.view(4, 3)[:, :1]).all()


def test_pk_sampler_covers_every_model_within_a_round():
    n, p = 10, 4
    sampler = PKSampler(n_models=n, p=p, k=2, seed=3)
    for _ in range(5):
        seen = set()
        for _ in range(-(-n // p) + 1):          # ceil(n / p) + 1 consecutive batches
            seen |= set(next(sampler).tolist())
        assert seen == set(range(n))


def test_pk_sampler_is_seeded_and_resumable():
    a, b = PKSampler(7, 3, 2, seed=1), PKSampler(7, 3, 2, seed=1)
    assert all(torch.equal(next(a), next(b)) for _ in range(5))
    state = a.state_dict()
    ahead = [next(a) for _ in range(4)]
    c = PKSampler(7, 3, 2, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(x, next(c)) for x in ahead)


@pytest.mark.parametrize("n, p, k", [(1, 1, 2), (5, 1, 2), (5, 6, 2), (5, 2, 1)])
def test_pk_sampler_rejects_batches_without_positives_or_negatives(n, p, k):
    with pytest.raises(ValueError, match="P x K"):
        PKSampler(n, p, k, seed=0)


def test_batch_hard_triplet_on_hand_made_points():
    # model 0 at x=0 and x=1, model 1 at x=3 and x=5 (1-D features)
    f = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchors: 0: pos 1, neg 3 -> relu(m+1-3); 1: pos 1, neg 2 -> relu(m+1-2)
    #          3: pos 2 (to 5), neg 2 (to 1) -> relu(m+2-2); 5: pos 2, neg 4 -> relu(m+2-4)
    m = 0.3
    expected = (0 + 0 + m + 0) / 4
    assert batch_hard_triplet(f, y, m).item() == pytest.approx(expected)
    assert batch_hard_triplet(f, y, margin=2.5).item() == pytest.approx((0.5 + 1.5 + 2.5 + 0.5) / 4)


def test_batch_hard_triplet_is_zero_for_separated_clusters_and_skips_lonely_anchors():
    f = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0], [50.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1, 2])                # model 2 has no positive: left out
    assert batch_hard_triplet(f, y).item() == 0.0
    single = batch_hard_triplet(f[:2], y[:2])         # no negatives at all
    assert single.item() == 0.0 and single.requires_grad is False


def test_attribution_loss_is_ce_plus_triplet_and_gives_gradients():
    torch.manual_seed(0)
    f = torch.randn(8, 4, requires_grad=True)
    logits = torch.randn(8, 3, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    total, ce, tri = attribution_loss(f, logits, y)
    assert total.item() == pytest.approx(ce.item() + tri.item())
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    total.backward()
    assert f.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


# --- same-design batches (issue 22) -------------------------------------------------------------

from modelfp.losses import SameDesignSampler, make_sampler  # noqa: E402

# 6 architectures x 3 seeds, interleaved as a zoo of seed-major files would be
DESIGNS = [f"arch{i % 6}" for i in range(18)]


def test_same_design_batches_hold_p_over_s_designs_with_s_distinct_seeds_each():
    p, s, k = 6, 2, 3
    sampler = SameDesignSampler(DESIGNS, p=p, k=k, s=s, seed=0)
    for _ in range(30):
        batch = next(sampler)
        assert batch.shape == (p * k,)
        models, counts = batch.unique(return_counts=True)
        assert len(models) == p and (counts == k).all()               # no model twice, K images each
        assert (batch.view(p, k) == batch.view(p, k)[:, :1]).all()     # model-major
        per_design = {}
        for m in models.tolist():
            per_design.setdefault(DESIGNS[m], set()).add(m)
        assert len(per_design) >= p // s and all(len(ms) == s for ms in per_design.values())


def test_same_design_sampler_covers_every_model():
    p, s = 4, 2                                    # 2 designs a batch, 2 of a design's 3 models
    sampler = SameDesignSampler(DESIGNS, p=p, k=2, s=s, seed=3)
    window = (-(-6 // (p // s)) + 1) * (-(-3 // s) + 1)
    for _ in range(4):
        seen = set()
        for _ in range(window):
            seen |= set(next(sampler).tolist())
        assert seen == set(range(18))


def test_same_design_sampler_is_seeded_and_resumable():
    a, b = SameDesignSampler(DESIGNS, 6, 2, 3, seed=1), SameDesignSampler(DESIGNS, 6, 2, 3, seed=1)
    assert all(torch.equal(next(a), next(b)) for _ in range(5))
    state = a.state_dict()
    ahead = [next(a) for _ in range(7)]
    c = SameDesignSampler(DESIGNS, 6, 2, 3, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(x, next(c)) for x in ahead)


def test_same_design_seeds_are_clipped_to_the_seeds_there_are():
    # one model per design (known models when fine-tuning): P x K over designs
    single = SameDesignSampler(["a", "b", "c", "d"], p=3, k=2, s=2, seed=0)
    assert single.s == 1 and len(next(single).unique()) == 3
    # S larger than every design's seeds, D larger than the designs
    few = SameDesignSampler(DESIGNS[:12], p=50, k=2, s=5, seed=0)     # 6 designs x 2 seeds
    assert (few.s, few.d) == (2, 6) and len(next(few).unique()) == 12
    with pytest.raises(ValueError, match="2 models"):
        SameDesignSampler(["a"], p=4, k=2, s=2, seed=0)


def test_make_sampler_uniform_is_the_pk_sampler():
    a, b = make_sampler("uniform", DESIGNS, 4, 2, 2, seed=5), PKSampler(18, 4, 2, seed=5)
    assert all(torch.equal(next(a), next(b)) for _ in range(6))
    with pytest.raises(ValueError, match="sampler"):
        make_sampler("per_design", DESIGNS, 4, 2, 2, seed=0)


# --- cosine triplet distance (issue 22) ---------------------------------------------------------

def test_cosine_triplet_is_invariant_to_each_features_scale():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(12, 5, generator=g)
    y = torch.arange(4).repeat_interleave(3)
    scale = torch.rand(12, 1, generator=g) * 10 + 0.1
    cos = batch_hard_triplet(f, y, distance="cosine")
    assert cos.item() > 0
    assert batch_hard_triplet(f * scale, y, distance="cosine").item() == pytest.approx(cos.item(), rel=1e-5)
    assert batch_hard_triplet(f * scale, y).item() != pytest.approx(batch_hard_triplet(f, y).item(), rel=1e-3)


def test_cosine_triplet_on_hand_made_directions():
    # model 0 at angles 0 and 60 degrees, model 1 at 90 degrees and 180 (unit circle, any radius)
    ang = torch.tensor([0.0, 60.0, 90.0, 180.0]).deg2rad()
    f = torch.stack([ang.cos(), ang.sin()], 1) * torch.tensor([[1.0], [3.0], [0.5], [2.0]])
    y = torch.tensor([0, 0, 1, 1])
    d = lambda a, b: 1 - torch.cos(torch.tensor(float(a - b)).deg2rad()).item()  # noqa: E731
    m = 0.3
    expected = [max(0, m + d(0, 60) - d(0, 90)), max(0, m + d(60, 0) - d(60, 90)),
                max(0, m + d(90, 180) - d(90, 60)), max(0, m + d(180, 90) - d(180, 60))]
    got = batch_hard_triplet(f, y, m, distance="cosine").item()
    assert got == pytest.approx(sum(expected) / 4, abs=1e-6)
    total, _, tri = attribution_loss(f, torch.zeros(4, 2), y, m, distance="cosine")
    assert tri.item() == pytest.approx(got)
