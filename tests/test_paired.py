"""Issue 22: paired tests of Tables VIII/IX (modelfp.paired) and the ceiling diagnostic (modelfp.ceiling)."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from modelfp import ceiling, denoise, evaluate, paired
from modelfp import extractor as ex
from modelfp.steps import main
from modelfp.splits import TRAIN, side


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- McNemar ---------------------------------------------------------------------------------------

def test_mcnemar_exact_p_of_ten_discordant_queries_all_one_way():
    anchor = np.r_[np.ones(10, bool), np.ones(5, bool), np.zeros(3, bool)]    # 10 only the anchor right,
    other = np.r_[np.zeros(10, bool), np.ones(5, bool), np.zeros(3, bool)]    # 5 both, 3 neither
    got = paired.mcnemar(anchor, other)
    assert (got["n"], got["b"], got["c"]) == (18, 10, 0)
    assert got["p"] == pytest.approx(2 * 0.5 ** 10)
    assert paired.mcnemar(other, anchor)["p"] == pytest.approx(2 * 0.5 ** 10)     # two-sided
    assert paired.mcnemar(anchor, anchor) == {"n": 18, "b": 0, "c": 0, "p": 1.0}   # no discordant query


def test_majority_correct_needs_more_than_half_of_the_draws():
    assert paired.majority_correct([0.0, 1 / 3, 0.5, 2 / 3, 1.0]).tolist() == [False, False, False, True, True]


# --- bootstrap of the AUC difference ---------------------------------------------------------------

def test_bootstrap_interval_contains_the_true_difference_and_excludes_zero_on_a_clear_case():
    rng = np.random.default_rng(0)
    n = 400
    same = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    # both methods score the same pairs; the anchor separates the classes far better
    anchor = np.r_[rng.normal(2.0, 1, n), rng.normal(0, 1, n)]
    other = np.r_[rng.normal(0.5, 1, n), rng.normal(0, 1, n)]
    from scipy.stats import norm
    true_diff = norm.cdf(2.0 / np.sqrt(2)) - norm.cdf(0.5 / np.sqrt(2))   # AUC of two unit normals d apart
    got = paired.auc_difference(same, anchor, other, resamples=300, seed=1)
    assert got["ci_low"] < true_diff < got["ci_high"]
    assert got["ci_low"] > 0 and got["p"] < 0.01
    assert got["diff"] == pytest.approx(got["auc_anchor"] - got["auc_other"])
    assert paired.auc_difference(same, anchor, other, resamples=300, seed=1) == got      # seeded
    tie = paired.auc_difference(same, anchor, anchor, resamples=50, seed=0)          # the same method
    assert tie["diff"] == 0 and tie["ci_low"] == tie["ci_high"] == 0 and tie["p"] == 1.0


def test_the_resamples_rank_auc_is_roc_auc_score_ties_included():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(4, 30)).astype(float)     # many ties
    truth = np.r_[np.ones(12, bool), np.zeros(18, bool)]
    np.testing.assert_allclose(paired._rank_auc(scores, 12), [roc_auc_score(truth, s) for s in scores])


def test_files_on_other_images_do_not_join():
    a = [{"group": "classical", "model": "m", "key": "00001", "correct_fraction": "1"}]
    b = [{"group": "classical", "model": "m", "key": "00002", "correct_fraction": "1"}]
    with pytest.raises(ValueError, match="not on the same images"):
        paired.identification_rows("A", {"A": a, "B": b})


# --- the ceiling -----------------------------------------------------------------------------------

def test_repeated_pairs_join_by_position_only_when_both_files_repeat_them_alike():
    """Pairs drawn with replacement from few images repeat (the smoke preset): the same seeded draw
    gives both methods the same sequence, which joins position by position; another order does not."""
    key = ("group", "model_i", "key_i", "model_j", "key_j")
    rows = [dict(zip(key, ("classical", "a", str(i % 2), "b", "0")), score=str(i)) for i in range(4)]
    other = [dict(r, score="9") for r in rows]
    assert [(a["score"], b["score"]) for a, b in paired.join(rows, other, key, "t")] == [
        (str(i), "9") for i in range(4)]
    with pytest.raises(ValueError, match="different orders"):
        paired.join(rows, other[1:] + other[:1], key, "t")


def test_the_ceiling_fits_only_training_side_images_and_scores_identifications_queries():
    rng = np.random.default_rng(0)
    centres = 4.0 * np.eye(6)[:3]
    models = ["m0", "m1", "m2"]
    train_keys = [(m, f"t{k:02d}") for m in models for k in range(15)]
    eval_keys = [(m, f"e{k:02d}") for m in models for k in range(12)]
    train = np.repeat(centres, 15, axis=0) + rng.normal(size=(45, 6))
    test = np.repeat(centres, 12, axis=0) + rng.normal(size=(36, 6))
    # one evaluated image also listed on the training side: it must stay out of the fit
    train_keys[0] = eval_keys[0]
    got = ceiling.ceiling_group(train, train_keys, test, eval_keys, gallery_size=2, draws=3, seed=0)
    assert not set(got["fit_keys"]) & set(eval_keys) and got["dropped"] == 1 and len(got["fit_keys"]) == 44
    _, queries = evaluate.gallery_pool(np.array([m for m, _ in eval_keys]), 2, 0, 3)
    np.testing.assert_array_equal(got["query_index"], queries)        # the queries of identification
    assert got["accuracy"] > 0.9 and got["n_queries"] == len(queries)
    # restricted to a group: the classifier knows only the group's models
    two = ceiling.ceiling_group(train, train_keys, test[:24], eval_keys[:24], 2, 3, 0)
    assert set(two["predictions"]) <= {"m0", "m1"} and {k[0] for k in two["fit_keys"]} == {"m0", "m1"}


# --- the verbs, end to end on tiny files -----------------------------------------------------------

def _image_folders(root, n=24, size=8):
    """Three models' image folders: noise of a model-specific colour and texture strength."""
    rng = np.random.default_rng(0)
    folders = {}
    for k, name in enumerate(("a", "b", "c")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            img = np.clip(60 + 60 * k + (20 + 30 * k) * rng.normal(size=(size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
        folders[name] = folder
    return folders


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The reference extractor (no network), the test models' evaluation embeddings and `evaluate`'s files."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("paired")
    folders = _image_folders(root / "images")
    model = ex.build(denoise.init_model(depth=3, features=4, seed=0),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=8), ["x", "y"], seed=0)
    ex.save(model.eval(), root / "reference.pt", variant="reference")
    groups = {"a": "classical", "b": "classical", "c": "emerging"}
    common = ["--train-fraction", "0.5", "--window", "1", "--device", "cpu"]
    assert main(["embed", "--extractor", str(root / "reference.pt"), *sum((["--model", m, str(f)] for m, f in folders.items()), []),
                 "--out-dir", str(root / "emb"), *common]) == 0
    protocol = ["--gallery", "2", "--gallery-draws", "3", "--seed", "0"]
    models = sum((["--model", m, g] for m, g in groups.items()), [])
    for name in ("one", "two"):          # two "methods" on the same embeddings
        assert main(["evaluate", "--embeddings", str(root / "emb"), *models, "--pairs-same", "15", "--pairs-diff", "15",
                     *protocol, "--out-csv", str(root / f"{name}.csv"), "--out-queries", str(root / f"{name}.queries.csv"),
                     "--out-pairs", str(root / f"{name}.pairs.csv")]) == 0
    assert main(["ceiling", "--extractor", str(root / "reference.pt"), "--embeddings", str(root / "emb"),
                 *sum((["--model", m, str(f), groups[m]] for m, f in folders.items()), []), *common, *protocol,
                 "--out-csv", str(root / "ceiling.csv"), "--out-queries", str(root / "ceiling.queries.csv")]) == 0
    return root, folders


def test_evaluate_writes_per_query_and_per_pair_files_keyed_by_image(reference_run):
    root, folders = reference_run
    rows = {r["group"]: r for r in read(root / "one.csv")}
    queries = read(root / "one.queries.csv")
    for group, row in rows.items():
        mine = [q for q in queries if q["group"] == group]
        assert int(row["identification_queries"]) == len(mine) and int(row["gallery_draws"]) == 3
        assert float(row["identification_acc"]) == pytest.approx(
            100 * np.mean([float(q["correct_fraction"]) for q in mine]))
        assert float(row["identification_acc_se"]) > 0
    for q in queries:     # every query is an evaluated image of its model
        assert (folders[q["model"]] / f"{q['key']}.png").exists() and side(q["key"], 0.5) != TRAIN
    pairs = read(root / "one.pairs.csv")
    assert {p["group"] for p in pairs} == {"classical", "all"}       # emerging holds one model: no metrics
    assert all((p["model_i"] == p["model_j"]) == (p["same"] == "1") for p in pairs)


def test_the_ceiling_verb_fits_on_the_training_side_and_its_queries_join_identifications(reference_run):
    root, folders = reference_run
    rows = {r["group"]: r for r in read(root / "ceiling.csv")}
    assert set(rows) == {"classical", "all"}                   # emerging holds one model: no row
    n_train = sum(side(p.stem, 0.5) == TRAIN for f in folders.values() for p in f.iterdir())
    assert int(rows["all"]["train_images"]) == n_train
    key = lambda r: (r["group"], r["model"], r["key"])
    assert {key(r) for r in read(root / "ceiling.queries.csv")} == {key(r) for r in read(root / "one.queries.csv")}


def test_paired_tests_verb_compares_every_method_with_the_anchor(reference_run, tmp_path):
    root, _ = reference_run
    out = [tmp_path / "viii.csv", tmp_path / "ix.csv"]
    assert main(["paired-tests", "--anchor", "A", "--queries", "A", str(root / "one.queries.csv"),
                 "--queries", "B", str(root / "two.queries.csv"), "--queries", "ceiling", str(root / "ceiling.queries.csv"),
                 "--pairs", "A", str(root / "one.pairs.csv"), "--pairs", "B", str(root / "two.pairs.csv"),
                 "--seed", "0", "--resamples", "50", "--out-identification", str(out[0]),
                 "--out-verification", str(out[1])]) == 0
    viii, ix = read(out[0]), read(out[1])
    assert [(r["method"], r["group"]) for r in viii] == [("B", "classical"), ("ceiling", "classical")]
    same = viii[0]      # the same embeddings twice: no discordant query
    assert (same["b (anchor right only)"], same["c (method right only)"], float(same["p (McNemar exact)"])) == ("0", "0", 1.0)
    assert [(r["method"], r["group"]) for r in ix] == [("B", "classical")]
    assert float(ix[0]["diff (anchor - method)"]) == 0 and float(ix[0]["p (paired bootstrap)"]) == 1.0
