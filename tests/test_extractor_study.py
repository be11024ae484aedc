"""benchmarks/extractor_study.py's open-set score of a setting (issue 25): the calibrate step's
protocol on fabricated embeddings, where the answer is known."""
import numpy as np
import pytest

from conftest import ROOT, load_benchmark
from modelfp import openset

EV = {"gallery": 10, "seed": 0}


def clusters(centres, per_model=40, spread=0.05, seed=0):
    """per_model noisy embeddings around each centre, and their model names m0, m1, ..."""
    rng = np.random.default_rng(seed)
    emb = np.concatenate([c + spread * rng.standard_normal((per_model, len(c))) for c in centres])
    return emb, np.repeat([f"m{i}" for i in range(len(centres))], per_model)


def test_separated_models_are_answered_right():
    emb, labels = clusters(np.eye(5, 16) * 3)
    out = load_benchmark("extractor_study").openset_scores(emb, labels, EV)
    assert out["openset_known_named"] == pytest.approx(100)
    assert out["openset_absent_unknown"] == pytest.approx(100)
    assert out["openset_balanced"] == pytest.approx(100)
    assert out["_openset_draws"].shape == (openset.REPEATS,)
    assert np.allclose(out["_openset_draws"], 100)


def test_a_twin_pair_costs_open_set_accuracy_and_draws_average_to_the_pooled_score():
    centres = np.eye(5, 16) * 3
    twins = centres.copy()
    twins[1] = twins[0] + 0.02                  # m1 is m0's near-twin: an absent twin is taken for it
    separated = load_benchmark("extractor_study").openset_scores(*clusters(centres), EV)
    twinned = load_benchmark("extractor_study").openset_scores(*clusters(twins), EV)
    assert twinned["openset_balanced"] < separated["openset_balanced"] - 5
    # every draw has the same number of queries here (40 images a model, 3 of 5 known), so the mean
    # of the per-draw balanced accuracies is the pooled one the fit reports
    assert twinned["_openset_draws"].mean() == pytest.approx(twinned["openset_balanced"])


def test_every_setting_is_a_valid_lever_and_a_seed_replicate_changes_the_seed_alone():
    """Each SETTINGS entry builds its configs from the demo preset (an unknown option would raise
    before anything trains), and the seed replicates are the preset itself but for the training seed
    (the noise floor the other rows are read against)."""
    from dataclasses import replace
    bench = load_benchmark("extractor_study")
    cfg = bench.merged_config([str(ROOT / "config.yaml"), str(ROOT / "configs" / "demo.yaml")])
    for setting in bench.SETTINGS.values():
        bench.setting_configs(setting, cfg)
    base_model, base_train, base_steps, _ = bench.setting_configs(bench.SETTINGS["base"], cfg)
    for name, seed in (("seed_1", 1), ("seed_2", 2)):
        model, train, steps, _ = bench.setting_configs(bench.SETTINGS[name], cfg)
        assert (model, steps) == (base_model, base_steps) and train.seed == seed != base_train.seed
        assert replace(train, seed=base_train.seed) == base_train
    with pytest.raises(ValueError, match="unknown extractor options"):
        bench.setting_configs({"sed": 1}, cfg)
