"""Open-set rejection (leave one model out of the gallery): AUROC of known vs unknown best scores
and the threshold between them, on fabricated embeddings whose answer is known."""
import numpy as np
import pytest

from modelfp.evaluate import best_threshold_accuracy, evaluate_group, identification, open_set


def clusters(n_models=4, per_model=12, dim=8, noise=0.05, seed=0):
    """Tight clusters around orthogonal directions: embeddings (n, dim) and string labels."""
    rng = np.random.default_rng(seed)
    emb = np.repeat(3.0 * np.eye(dim)[:n_models], per_model, axis=0)
    emb = emb + noise * rng.normal(size=emb.shape)
    return emb, np.repeat([f"m{k}" for k in range(n_models)], per_model)


def test_separated_clusters_give_auroc_one_and_a_threshold_between_the_scores():
    emb, labels = clusters()
    out = open_set(emb, labels, gallery_size=4, seed=0)
    assert out["auroc"] == 1.0 and out["balanced_accuracy"] == 1.0
    # every query is unknown once (its model left out) and known once per other model
    queries = len(labels) - 4 * 4
    assert (out["n_unknown"], out["n_known"]) == (queries, 3 * queries)
    assert out["unknown_scores"].max() < out["threshold"] < out["known_scores"].min()
    # orthogonal clusters: unknown queries score ~0 against other models, known ones ~1
    assert out["unknown_scores"].max() < 0.2 and out["known_scores"].min() > 0.9


def test_a_model_identical_to_another_is_never_unknown_hand_computed_auroc():
    # models a, b, c; c's images equal a's (e1), b's are e2. 5 images each, gallery 2: 3 queries each.
    # Unknown scores: a's queries (a left out) meet c: 1; b's meet a and c: 0; c's meet a: 1
    #   -> 6 ones and 3 zeros. Known scores: every query's own model is in the gallery: 18 ones.
    # AUROC = P(known > unknown) + P(tie) / 2 = 3/9 + (6/9) / 2 = 2/3.
    # Best balanced cut: "known" at >= 1 keeps all known and rejects 3 of 9 unknown: (1 + 1/3) / 2 = 2/3,
    # at the midpoint 0.5 of the scores 1 and 0.
    e1, e2 = np.eye(3)[0], np.eye(3)[1]
    emb = np.array([e1] * 5 + [e2] * 5 + [e1] * 5)
    labels = np.repeat(["a", "b", "c"], 5)
    out = open_set(emb, labels, gallery_size=2, seed=0)
    assert np.sort(out["unknown_scores"]).tolist() == [0.0] * 3 + [1.0] * 6
    assert out["known_scores"].tolist() == [1.0] * 18
    assert out["auroc"] == pytest.approx(2 / 3)
    assert out["balanced_accuracy"] == pytest.approx(2 / 3) and out["threshold"] == pytest.approx(0.5)


def test_open_set_uses_identifications_gallery_split():
    # a query never counts in a gallery fingerprint: the split is identification's (same seed)
    emb, labels = clusters(noise=1.0)
    ide = identification(emb, labels, gallery_size=4, seed=3)
    out = open_set(emb, labels, gallery_size=4, seed=3)
    assert out["n_unknown"] == ide["n_queries"]
    again = open_set(emb, labels, gallery_size=4, seed=3)
    assert again["auroc"] == out["auroc"] and again["threshold"] == out["threshold"]


def test_one_model_is_refused():
    with pytest.raises(ValueError, match="at least 2 models"):
        open_set(np.eye(6), np.array(["x"] * 6), gallery_size=2)


def test_balanced_best_threshold_weighs_the_classes_equally():
    # 3 positives (0.9, 0.4, 0.3), 1 negative (0.5). Plain accuracy: all "same" (>= 0.3) is right on
    # 3 of 4; balanced: only >= 0.9 gets (1/3 + 1) / 2 = 2/3, the cut between 0.9 and 0.5
    scores, same = [0.9, 0.4, 0.3, 0.5], [True, True, True, False]
    assert best_threshold_accuracy(scores, same) == pytest.approx((0.75, 0.3))
    assert best_threshold_accuracy(scores, same, balanced=True) == pytest.approx((2 / 3, 0.7))
    # with equally many of each class, balanced is plain accuracy
    scores, same = [0.9, 0.2, 0.8, 0.5], [True, True, False, False]
    assert best_threshold_accuracy(scores, same, balanced=True) == best_threshold_accuracy(scores, same)


def test_evaluate_group_reports_the_open_set_columns():
    emb, labels = clusters(noise=1.0)
    row = evaluate_group(emb, labels, n_same=20, n_diff=20, gallery_size=4, seed=0)
    out = open_set(emb, labels, 4, seed=0)
    assert row["openset_auroc"] == pytest.approx(100 * out["auroc"])
    assert row["openset_threshold"] == out["threshold"]
