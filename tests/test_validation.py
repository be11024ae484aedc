"""The validation set (issue 11): the same-design pair metric, and the workflow's validation target."""
import numpy as np
import pytest

from conftest import snakemake
from modelfp import evaluate, validation
from modelfp.validation import Pair

SMOKE = ("--configfile", "configs/smoke.yaml")


def _clusters(centres, n=12, noise=0.0, seed=0):
    """n embeddings around each centre (one model per centre, named m0, m1, ...)."""
    rng = np.random.default_rng(seed)
    emb = np.concatenate([np.asarray(c, float) + noise * rng.standard_normal((n, len(c))) for c in centres])
    labels = np.repeat([f"m{i}" for i in range(len(centres))], n)
    return emb, labels


def test_pair_identification_is_chance_when_the_two_clusters_are_identical():
    emb, labels = _clusters([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert validation.pair_identification(emb, labels, "m0", "m1", gallery_size=2) == 0.5


def test_pair_identification_is_perfect_when_the_two_clusters_are_apart():
    emb, labels = _clusters([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], noise=0.05)
    assert validation.pair_identification(emb, labels, "m0", "m1", gallery_size=2) == 1.0


def test_pair_identification_ignores_models_outside_the_pair():
    # m2 sits on m0's centre: in 3-way identification it would take m0's queries, not within the pair
    emb, labels = _clusters([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], noise=0.05)
    assert validation.pair_identification(emb, labels, "m0", "m1", gallery_size=2) == 1.0


def test_pair_identification_names_a_member_without_embeddings():
    emb, labels = _clusters([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="m9"):
        validation.pair_identification(emb, labels, "m0", "m9", gallery_size=2)


def test_choices_row_averages_pairs_overall_and_per_kind():
    # m0/m1 identical (50 %), m2/m3 apart (100 %)
    emb, labels = _clusters([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], noise=0.0)
    pairs = [Pair("twins", "seed", "m0", "m1"), Pair("apart", "data", "m2", "m3")]
    row = validation.choices_row("all", {"identification_acc": "70.0", "verification_auc": "80.0"},
                                 emb, labels, pairs, gallery_size=2)
    assert row["identification_acc"] == 70.0 and row["verification_auc"] == 80.0
    assert row["pair_twins"] == 50.0 and row["pair_apart"] == 100.0
    assert row["seed_pairs_acc"] == 50.0 and row["data_pairs_acc"] == 100.0
    assert row["pair_identification_acc"] == 75.0


def test_scores_of_embeddings_that_separate_the_models_are_perfect():
    emb, labels = _clusters([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], noise=0.05)
    got = validation.scores(emb, labels, [Pair("twins", "seed", "m0", "m1")], gallery_size=2, n_same=20, n_diff=20)
    assert got["identification_acc"] == 100.0 and got["verification_auc"] == 100.0
    assert got["seed_pairs_acc"] == 100.0 and np.isnan(got["data_pairs_acc"])


def test_scores_are_those_of_the_evaluation_csvs_all_row():
    # overlapping clusters, so neither score is trivial: the same numbers as `evaluate` writes
    emb, labels = _clusters([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 1.0, 0.0]], noise=0.5)
    got = validation.scores(emb, labels, gallery_size=3, n_same=30, n_diff=30, seed=4)
    row = evaluate.evaluate_group(emb, labels, n_same=30, n_diff=30, gallery_size=3, seed=4)
    assert 0 < got["identification_acc"] < 100 and 50 < got["verification_auc"] < 100
    assert got["identification_acc"] == row["identification_acc"]
    assert got["verification_auc"] == row["verification_auc"]


def test_the_per_epoch_subset_is_fixed_by_its_seed_and_at_most_per_model():
    paths = {"a": [f"a/{i:02d}.png" for i in range(30)], "b": [f"b/{i:02d}.png" for i in range(5)]}
    chosen = validation.sample_images(paths, 12, seed=0)
    assert chosen == validation.sample_images(paths, 12, seed=0)
    assert len(chosen["a"]) == 12 and set(chosen["a"]) <= set(paths["a"]) and chosen["b"] == paths["b"]
    assert chosen["a"] != validation.sample_images(paths, 12, seed=1)["a"]


def test_startup_refuses_a_validation_model_named_like_a_test_model(workflow_copy):
    (workflow_copy / "clash.yaml").write_text(
        "validation:\n  models: [vae]\n  instances:\n    vae: {generator: vae, steps: 3, hp: {width: 4}}\n")
    result = snakemake(workflow_copy, "validation", "--dry-run", "--cores", "1", *SMOKE, "clash.yaml",
                       check=False)
    assert result.returncode != 0
    assert "validation model name(s) ['vae'] are also test models" in result.stdout


def test_startup_refuses_a_pair_that_differs_in_more_than_it_says(workflow_copy):
    (workflow_copy / "pair.yaml").write_text(
        "validation:\n  models: [val_dcgan_s0, val_dcgan_s1]\n  instances:\n"
        "    val_dcgan_s1: {generator: dcgan, steps: 4, seed: 11, hp: {g_width: 4, d_width: 4},"
        " pair: dcgan_seed, differs: seed}\n")
    result = snakemake(workflow_copy, "validation", "--dry-run", "--cores", "1", *SMOKE, "pair.yaml",
                       check=False)
    assert result.returncode != 0
    assert "validation pair 'dcgan_seed'" in result.stdout and "also differ in ['steps']" in result.stdout


def test_validation_target_plans_the_validation_set_and_not_the_test_bed(workflow_copy):
    result = snakemake(workflow_copy, "validation", "--dry-run", "--cores", "2", *SMOKE)
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # smoke: 4 validation generators; variants all, reference, random (one trained, two controls)
    assert counts["train_test_model"] == 4 and counts["sample_test_model"] == 4
    assert counts["train_extractor"] == 3 and counts["embed"] == 3 and counts["evaluate"] == 3
    assert counts["validation_table"] == 1
    assert "results/validation/val_vae_living/images" in result.stdout
    assert "results/embeddings/all/val-w2" in result.stdout
    assert "results/testbed/" not in result.stdout          # the test bed is not needed to choose


def test_no_table_reads_the_validation_set(workflow_copy):
    tables = ["table_ii", "table_xi", "table_iv", "table_v", "table_vi", "table_vii", "table_viii",
              "table_ix", "table_x"]
    result = snakemake(workflow_copy, *tables, "--dry-run", "--cores", "2", *SMOKE)
    assert "attribution_table" in result.stdout
    # the extractor `all` scores the validation images after every epoch (its history.csv; its weights
    # do not depend on them, tests/test_extractor.py); no table embeds or evaluates them
    assert "val-w" not in result.stdout and "validation_table" not in result.stdout
    (workflow_copy / "off.yaml").write_text("extractor:\n  validate: []\n")
    result = snakemake(workflow_copy, *tables, "--dry-run", "--cores", "2", *SMOKE, "off.yaml")
    assert "attribution_table" in result.stdout
    assert "results/validation/" not in result.stdout and "val-w" not in result.stdout


# --- the per-epoch validation of train-extractor (`epoch_evaluator`) --------------------------------

def _tiny_extractor():
    """The cheapest extractor: the training-free reference (the residual spectrum) of a tiny denoiser."""
    from modelfp import denoise
    from modelfp import extractor as ex
    cfg = ex.ExtractorConfig(backbone="none", transform="log1p", image_size=16)
    return ex.build(denoise.init_model(depth=3, features=4, seed=0), cfg, ["x", "y"], seed=0)


def test_the_epoch_evaluator_reads_a_fixed_subset_of_the_evaluation_side_once(tmp_path, monkeypatch):
    import torch
    from conftest import write_pngs
    from modelfp import extractor as ex
    from modelfp import pools
    from modelfp.splits import EVAL, folder_side
    folders = [(name, write_pngs(tmp_path / name, [f"{i:05d}" for i in range(30)], seed=s))
               for s, name in enumerate(("v0", "v1"))]
    loaded, real = [], pools.load_image
    monkeypatch.setattr(pools, "load_image", lambda p, size: loaded.append(p) or real(p, size))
    real_centre = ex.fit_centre         # the centre of 32 training images, not thousands: fast enough here
    monkeypatch.setattr(ex, "fit_centre", lambda model, source, seed: real_centre(model, source, seed, n=32))
    source = ex.FolderSource([torch.zeros(2, 3, 16, 16, dtype=torch.uint8)] * 2, ["x", "y"], "cpu")
    evaluator = validation.epoch_evaluator(folders, source, train_seed=0, train_fraction=0.5, window=1, gallery=2,
                                           pairs_same=5, pairs_diff=5, seed=0)
    for name, folder in folders:       # gallery + EPOCH_QUERIES images of each model's evaluation side
        mine = [p for p in loaded if p.parent == folder]
        assert len(mine) == 2 + validation.EPOCH_QUERIES and set(mine) <= set(folder_side(folder, 0.5, EVAL)[0])
    model, read = _tiny_extractor(), len(loaded)
    first, second = evaluator(model), evaluator(model)
    assert len(loaded) == read                  # loaded once, before training: no image is read per epoch
    assert first == second and set(first) == {"val_identification_acc", "val_verification_auc"}
    assert 0 <= first["val_identification_acc"] <= 100


def test_the_epoch_evaluator_refuses_bad_validation_folders_before_reading_an_image(tmp_path):
    from conftest import write_pngs
    folder = write_pngs(tmp_path / "v0", [f"{i:05d}" for i in range(8)])
    protocol = dict(train_seed=0, train_fraction=0.5, window=1, gallery=2, pairs_same=5, pairs_diff=5, seed=0)
    with pytest.raises(ValueError, match="also trained on"):
        validation.epoch_evaluator([("v0", folder)], None, **protocol, trained_folders=[str(folder)])
    with pytest.raises(FileNotFoundError, match="validation model v9: .*nope"):
        validation.epoch_evaluator([("v9", tmp_path / "nope")], None, **protocol)
    with pytest.raises(ValueError, match=r"validation model\(s\) \['v0'\]: no more than --gallery 100"):
        validation.epoch_evaluator([("v0", folder)], None, **{**protocol, "gallery": 100})
