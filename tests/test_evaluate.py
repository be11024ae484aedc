import numpy as np
import pytest
import torch

from modelfp import evaluate
from modelfp.evaluate import (best_threshold_accuracy, cluster_scores, cosine_matrix, evaluate_group,
                              gallery_fingerprints, identification, plot_tsne, verification,
                              verification_pairs)


def clusters(n_models=3, per_model=20, dim=8, noise=0.05, seed=0):
    """Tight clusters around orthogonal directions: embeddings (n, dim) and string labels."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(dim)[:n_models]
    emb = np.repeat(centres, per_model, axis=0) + noise * rng.normal(size=(n_models * per_model, dim))
    labels = np.repeat([f"m{k}" for k in range(n_models)], per_model)
    return emb, labels


def pair_set(i, j):
    return {(int(a), int(b)) for a, b in zip(i, j)}


# --- cosine ----------------------------------------------------------------------------------------

def test_cosine_of_known_vectors_and_zero_rows():
    got = cosine_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]), np.array([[3.0, 4.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(got, [[0.6, -1.0], [0.8, 0.0], [0.0, 0.0]], atol=1e-12)
    assert not np.isnan(cosine_matrix(np.zeros((2, 3)), np.zeros((1, 3)))).any()


def test_cosine_is_scale_invariant_and_accepts_tensors():
    a = np.random.default_rng(0).normal(size=(4, 5))
    np.testing.assert_allclose(cosine_matrix(a, a * 7.0), cosine_matrix(torch.tensor(a), a), atol=1e-12)
    np.testing.assert_allclose(np.diag(cosine_matrix(a, a)), 1.0, atol=1e-12)


# --- verification pairs ----------------------------------------------------------------------------

def test_pairs_counts_labels_and_no_self_pairs():
    labels = np.repeat(["a", "b", "c", "d"], [5, 7, 1, 6])
    i, j, same = verification_pairs(labels, 30, 40, seed=0)
    assert len(i) == len(j) == len(same) == 70 and same.sum() == 30
    assert np.all(i != j) and np.all(i < j)
    assert np.all(labels[i[same]] == labels[j[same]])
    assert np.all(labels[i[~same]] != labels[j[~same]])
    assert "c" not in set(labels[i[same]])    # a model with one image has no same pair


def test_pairs_are_deterministic_by_seed_and_unique_when_possible():
    labels = np.repeat(np.arange(4), 10)      # 4 * 45 = 180 same pairs, 600 different pairs possible
    first = verification_pairs(labels, 100, 100, seed=3)
    for a, b in zip(first, verification_pairs(labels, 100, 100, seed=3)):
        np.testing.assert_array_equal(a, b)
    assert pair_set(*first[:2]) != pair_set(*verification_pairs(labels, 100, 100, seed=4)[:2])
    i, j, same = first
    assert len(pair_set(i[same], j[same])) == 100 and len(pair_set(i[~same], j[~same])) == 100


def test_asking_for_every_pair_returns_each_once_and_more_repeats():
    labels = np.array([0, 0, 0, 1, 1])        # same pairs: 3 + 1; different pairs: 3 * 2
    i, j, same = verification_pairs(labels, 4, 6, seed=0)
    assert pair_set(i[same], j[same]) == {(0, 1), (0, 2), (1, 2), (3, 4)}
    assert pair_set(i[~same], j[~same]) == {(a, b) for a in range(3) for b in (3, 4)}
    i, j, same = verification_pairs(labels, 9, 8, seed=0)   # more than exist: with replacement
    assert same.sum() == 9 and len(pair_set(i[same], j[same])) <= 4 and np.all(i != j)


def test_same_pairs_weigh_models_equally():
    # 40 images (780 pairs) vs 4 images (6 pairs): uniform over pairs would give the small model ~1%
    labels = np.repeat(["big", "small"], [40, 4])
    share = np.mean([np.mean(labels[verification_pairs(labels, 6, 0, seed=s)[0]] == "small")
                     for s in range(60)])
    assert 0.35 < share < 0.65


def test_pairs_without_a_possible_kind_raise():
    with pytest.raises(ValueError, match="same"):
        verification_pairs(["a", "b", "c"], 1, 1, seed=0)
    with pytest.raises(ValueError, match="diff"):
        verification_pairs(["a", "a", "a"], 1, 1, seed=0)


# --- best threshold --------------------------------------------------------------------------------

def test_separable_scores_give_accuracy_one_and_threshold_between_classes():
    acc, thr = best_threshold_accuracy([0.9, 0.1, 0.8, 0.3], [1, 0, 1, 0])
    assert acc == 1.0 and thr == pytest.approx(0.55)


def test_hand_computed_best_accuracy_075():
    # cuts after the top k (k = 0..8) are right on 3,4,5,4,5,6,5,4,5 of 8 pairs: best k = 5
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    acc, thr = best_threshold_accuracy(scores, [1, 1, 0, 1, 1, 0, 0, 1])
    assert acc == 0.75 and thr == pytest.approx(0.45)


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [1, 2, 0, 3], [3, 2, 1, 0]])
def test_tied_scores_are_never_split(order):
    # the three 0.5 pairs (two same, one different) must share one prediction: best 3/4, not 4/4
    scores, same = np.array([0.5, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])
    acc, thr = best_threshold_accuracy(scores[order], same[order])
    assert acc == 0.75 and thr == pytest.approx(0.3)


def test_all_equal_scores():
    acc, thr = best_threshold_accuracy([0.3] * 4, [1, 1, 1, 0])   # best: all "same"
    assert acc == 0.75 and thr <= 0.3
    acc, thr = best_threshold_accuracy([0.3] * 4, [1, 0, 0, 0])   # best: none "same"
    assert acc == 0.75 and thr > 0.3


def test_threshold_reproduces_accuracy_and_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        same = rng.integers(0, 2, size=30).astype(bool)
        same[:2] = [True, False]
        scores = np.round(rng.normal(size=30) + same, 1)           # rounding makes ties
        acc, thr = best_threshold_accuracy(scores, same)
        assert acc == pytest.approx(np.mean((scores >= thr) == same))
        brute = max(np.mean((scores >= t) == same) for t in [*np.unique(scores), np.inf])
        assert acc == pytest.approx(brute)


def test_one_class_only_raises():
    with pytest.raises(ValueError, match="both classes"):
        best_threshold_accuracy([0.1, 0.2], [1, 1])


def test_verification_on_separated_clusters_is_perfect():
    emb, labels = clusters()
    out = verification(emb, labels, 50, 50, seed=0)
    assert out["accuracy"] == 1.0 and out["auc"] == 1.0 and out["n_pairs"] == 100
    assert 0.1 < out["threshold"] < 0.9      # same-model cosines ~1, different-model ~0


# --- identification --------------------------------------------------------------------------------

def test_gallery_fingerprints_known_values():
    names, fp = gallery_fingerprints(np.array([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0]]), ["a", "a", "b"])
    assert list(names) == ["a", "b"]
    np.testing.assert_allclose(fp, [[2 ** -0.5, 2 ** -0.5], [0.0, -1.0]], atol=1e-12)


def test_identification_on_separated_clusters_is_perfect():
    emb, labels = clusters(per_model=15)
    out = identification(emb, labels, gallery_size=5, seed=0)
    assert out["accuracy"] == 1.0 and out["macro_f1"] == 1.0 and out["n_queries"] == 30
    assert len(set(out["gallery_index"]) | set(out["query_index"])) == 45
    assert not set(out["gallery_index"]) & set(out["query_index"])


def test_identification_with_one_known_mistake():
    # model A's image 5 points at model B; with seed 1 it is one of A's queries (asserted below)
    emb = np.array([[1.0, 0, 0]] * 5 + [[0, 1.0, 0]] * 7 + [[0, 0, 1.0]] * 6)
    labels = np.repeat(["A", "B", "C"], 6)
    out = identification(emb, labels, gallery_size=3, seed=1)
    assert 5 in out["query_index"] and out["n_queries"] == 9
    assert out["predictions"][list(out["query_index"]).index(5)] == "B"
    # F1: A (tp 2, fn 1) = 4/5, B (tp 3, fp 1) = 6/7, C = 1
    assert out["accuracy"] == pytest.approx(8 / 9)
    assert out["macro_f1"] == pytest.approx((4 / 5 + 6 / 7 + 1) / 3)


def test_identification_is_seeded_and_rejects_small_models():
    emb, labels = clusters(per_model=15, noise=1.0)
    a, b = identification(emb, labels, 5, seed=2), identification(emb, labels, 5, seed=2)
    np.testing.assert_array_equal(a["gallery_index"], b["gallery_index"])
    np.testing.assert_array_equal(a["predictions"], b["predictions"])
    labels = np.array(["x"] * 20 + ["tiny"] * 10)
    with pytest.raises(ValueError, match="'tiny' has 10 images"):
        identification(np.eye(30), labels, gallery_size=10, seed=0)


# --- cluster scores, table row, t-SNE --------------------------------------------------------------

def test_cluster_scores_separated_vs_shuffled():
    emb, labels = clusters(per_model=30, noise=0.02)
    good = cluster_scores(emb, labels)
    assert good["silhouette"] > 0.95 and good["dbi"] < 0.05
    bad = cluster_scores(emb, np.random.default_rng(0).permutation(labels))
    assert abs(bad["silhouette"]) < 0.1 and bad["dbi"] > 5


def test_cluster_scores_ignore_embedding_norms():
    emb, labels = clusters(noise=0.5)
    scale = np.random.default_rng(1).uniform(0.1, 10, size=(len(emb), 1))
    a, b = cluster_scores(emb, labels), cluster_scores(emb * scale, labels)
    assert a["silhouette"] == pytest.approx(b["silhouette"]) and a["dbi"] == pytest.approx(b["dbi"])


def test_evaluate_group_keys_and_percent_scaling():
    emb, labels = clusters(per_model=15, noise=1.0)
    row = evaluate_group(emb, labels, n_same=40, n_diff=40, gallery_size=5, seed=0)
    assert set(row) == {"verification_acc", "verification_auc", "verification_threshold",
                        "identification_acc", "identification_f1", "identification_acc_sd",
                        "identification_acc_se", "identification_f1_sd", "identification_queries",
                        "gallery_draws", "openset_auroc", "openset_threshold", "silhouette", "dbi"}
    ver, ide = verification(emb, labels, 40, 40, seed=0), identification(emb, labels, 5, seed=0)
    assert row["verification_acc"] == pytest.approx(100 * ver["accuracy"])
    assert row["verification_auc"] == pytest.approx(100 * ver["auc"])
    assert row["verification_threshold"] == ver["threshold"]
    assert row["identification_acc"] == pytest.approx(100 * ide["accuracy"])
    assert row["identification_f1"] == pytest.approx(100 * ide["macro_f1"])
    assert row["silhouette"] == pytest.approx(cluster_scores(emb, labels)["silhouette"])
    assert 50 <= row["verification_acc"] <= 100 and 0 <= row["identification_f1"] <= 100


def test_plot_tsne_writes_files_and_separates_clusters(tmp_path):
    emb, labels = clusters(per_model=20)
    markers = np.tile(["fixed", "varied"], 30)
    coords = plot_tsne(emb, labels, tmp_path / "sub" / "tsne.pdf", "test", seed=0, markers=markers)
    assert coords.shape == (60, 2) and np.all(np.isfinite(coords))
    assert (tmp_path / "sub" / "tsne.pdf").stat().st_size > 0
    assert (tmp_path / "sub" / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    # the 2-D map keeps the clusters apart: each point's nearest neighbour is of its own model
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1) + np.diag(np.full(60, np.inf))
    assert np.all(labels[d.argmin(1)] == labels)
    with pytest.raises(ValueError, match="perplexity"):
        plot_tsne(emb, labels, tmp_path / "x.png", "x", seed=0, perplexity=60)


def test_verification_with_a_cosine_pair_score_equals_the_default():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 8)) + np.repeat(rng.normal(size=(4, 8)), 10, axis=0)
    labels = np.repeat(list("abcd"), 10)

    def cosine(a, b):
        return np.einsum("nd,nd->n", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    default = evaluate.verification(emb, labels, 30, 30, seed=1)
    own = evaluate.verification(emb, labels, 30, 30, seed=1, pair_score=cosine)
    assert own["auc"] == pytest.approx(default["auc"]) and own["accuracy"] == pytest.approx(default["accuracy"])
    flipped = evaluate.verification(emb, labels, 30, 30, seed=1, pair_score=lambda a, b: -cosine(a, b))
    assert flipped["auc"] == pytest.approx(1 - default["auc"])


# --- repeated gallery draws, per-query and per-pair rows (issue 22) ----------------------------------

def test_gallery_draws_keep_the_query_set_fixed_and_draw_each_gallery_from_the_pool():
    emb, labels = clusters(n_models=3, per_model=40, noise=1.5)
    pool, queries = evaluate.gallery_pool(labels, 4, seed=3, draws=5)
    for name in np.unique(labels):        # 5 galleries' worth (20) of 40: half stay queries
        assert np.sum(labels[pool] == name) == evaluate.pool_size(40, 4, 5) == 20
    assert not set(pool) & set(queries) and len(pool) + len(queries) == len(labels)
    galleries = evaluate.gallery_draws(labels, pool, 4, 5, seed=3)
    assert len({tuple(g) for g in galleries}) > 1                  # the draws differ ...
    for g in galleries:                                            # ... but all come from the pool
        assert set(g) <= set(pool) and all(np.sum(labels[g] == n) == 4 for n in np.unique(labels))
    out = identification(emb, labels, 4, seed=3, draws=5)
    np.testing.assert_array_equal(out["query_index"], queries)    # every draw scores the same queries
    assert out["draw_predictions"].shape == (5, len(queries)) and out["draws"] == 5
    accs = [np.mean(p == out["truth"]) for p in out["draw_predictions"]]
    assert out["accuracy"] == pytest.approx(np.mean(accs))
    assert out["accuracy_sd"] == pytest.approx(np.std(accs, ddof=1))
    assert out["accuracy_se"] == pytest.approx(np.sqrt(out["accuracy"] * (1 - out["accuracy"]) / len(queries)))
    np.testing.assert_allclose(out["correct_fraction"], (out["draw_predictions"] == out["truth"]).mean(0))


def test_one_draw_is_the_single_split_protocol():
    emb, labels = clusters(per_model=15, noise=1.0)
    one = identification(emb, labels, 5, seed=2, draws=1)
    np.testing.assert_array_equal(one["pool_index"], one["gallery_index"])   # the pool is the gallery
    assert np.isnan(one["accuracy_sd"]) and one["n_queries"] == 30
    np.testing.assert_array_equal(one["predictions"], one["draw_predictions"][0])


def test_majority_prediction_breaks_ties_by_the_earliest_draw():
    preds = np.array([["a", "b", "c"], ["b", "b", "a"], ["b", "a", "a"], ["a", "c", "c"]])
    assert evaluate._majority(preds).tolist() == ["a", "b", "c"]


def test_query_and_pair_rows_are_keyed_by_image_and_join_across_methods():
    emb, labels = clusters(n_models=3, per_model=12, noise=1.0)
    keys = [(m, f"{k:05d}") for m in ("m0", "m1", "m2") for k in range(12)]
    tables = []
    for scale in (1.0, -1.0):             # two "methods": the same images, other embeddings
        row, ver, ide = evaluate.evaluate_group_details(scale * emb + (scale < 0), labels, n_same=10, n_diff=10,
                                                        gallery_size=2, seed=0, draws=3)
        tables.append((evaluate.query_rows(ide, keys), evaluate.pair_rows(ver, keys)))
        assert row["identification_queries"] == len(tables[-1][0]) and row["gallery_draws"] == 3
    (qa, pa), (qb, pb) = tables
    assert {(r["model"], r["key"]) for r in qa} == {(r["model"], r["key"]) for r in qb}
    assert len(qa) == len({(r["model"], r["key"]) for r in qa}) == 3 * (12 - evaluate.pool_size(12, 2, 3))
    assert {"pred_0", "pred_1", "pred_2", "predicted", "correct_fraction"} <= set(qa[0])
    pair_key = lambda r: (r["model_i"], r["key_i"], r["model_j"], r["key_j"], r["same"])
    assert [pair_key(r) for r in pa] == [pair_key(r) for r in pb]    # the same seeded pairs
    assert all((r["model_i"] == r["model_j"]) == bool(r["same"]) for r in pa)


# --- every group of an embeddings folder (the verb evaluate) ----------------------------------------

def _embeddings_folder(folder, names, per_model=12):
    """One npz per model, as `embed` writes them: clustered embeddings, their image paths and folder."""
    emb, _ = clusters(n_models=len(names), per_model=per_model, dim=len(names) + 1, noise=0.5)
    for k, name in enumerate(names):
        np.savez(folder / f"{name}.npz", embeddings=emb[k * per_model:(k + 1) * per_model],
                 paths=[f"/bed/{name}/{i:05d}.png" for i in range(per_model)], folder=f"/bed/{name}")
    return folder


def test_model_groups_keep_the_order_given_and_name_a_model_of_another_group():
    assert evaluate.model_groups([("a", "classical"), ("b", "emerging"), ("c", "classical")]) == {
        "classical": ["a", "c"], "emerging": ["b"], "all": ["a", "b", "c"]}
    with pytest.raises(ValueError, match="test model d: group must be classical or emerging, not 'other'"):
        evaluate.model_groups([("d", "other")])


def test_evaluate_groups_scores_each_group_as_evaluate_group_and_skips_a_group_of_one(tmp_path, caplog):
    folder = _embeddings_folder(tmp_path, ["a", "b", "c"])
    groups = evaluate.model_groups([("a", "classical"), ("b", "classical"), ("c", "emerging")])
    protocol = dict(n_same=20, n_diff=20, gallery_size=2, seed=3, draws=2)
    flip = lambda x, y: -np.einsum("nd,nd->n", x, y)       # a verifier of its own: cosine's order reversed
    results = list(evaluate.evaluate_groups(folder, groups, **protocol, pair_score=flip, per_image=True))
    assert [r.group for r in results] == ["classical", "all"]          # emerging has one model: skipped
    assert "group emerging has 1 test model(s)" in caplog.text
    for r in results:
        emb, labels = evaluate.read_embeddings(folder, r.names)
        expected = evaluate_group(emb, labels, **protocol)
        assert (r.row["group"], r.row["models"], r.row["images"]) == (r.group, len(r.names), len(labels))
        assert {k: r.row[k] for k in expected} == pytest.approx(expected, nan_ok=True)
        own = verification(emb, labels, 20, 20, 3, pair_score=flip)
        assert r.row["verifier_verification_auc"] == pytest.approx(100 * own["auc"])
        assert len(r.queries) == expected["identification_queries"] and len(r.pairs) == 40
        assert {q["group"] for q in r.queries + r.pairs} == {r.group}
        assert {q["model"] for q in r.queries} == set(r.names)


def test_evaluate_groups_without_per_image_rows_or_verifier_writes_only_the_table_columns(tmp_path):
    folder = _embeddings_folder(tmp_path, ["a", "b"])
    groups = evaluate.model_groups([("a", "classical"), ("b", "classical")])
    classical, every = evaluate.evaluate_groups(folder, groups, n_same=5, n_diff=5, gallery_size=2, seed=0, draws=2)
    assert classical.row == every.row | {"group": "classical"}       # the same two models
    assert not classical.queries and not classical.pairs and "verifier_verification_auc" not in classical.row
