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
