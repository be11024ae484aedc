"""Extractor variants: what each ablation row trains on, and the registry's rows of the paper's
tables and figures with the paper's numbers."""

import dataclasses
import re

import pytest

from modelfp import archspace, variants
from modelfp.variants import Preset, Row, canonical, variant

ZOO = [a.id for a in archspace.max_blocks(3)]          # 288 + 144 architectures
POOLS = ["celeba", "lsun"]


def test_all_uses_every_k_le_2_architecture_every_seed_and_pool():
    v = variant("all", ZOO, 20, POOLS)
    assert len(v.archs) == 288 and v.seeds == tuple(range(20)) and v.pools == tuple(POOLS)
    assert not (v.augment or v.finetune or v.untrained)


@pytest.mark.parametrize("name, n", [("wo_K", 144), ("wo_L", 144), ("wo_S", 144), ("wo_U", 96),
                                     ("wo_A", 72), ("wo_N", 96)])
def test_table_iv_variants_freeze_one_option(name, n):
    v = variant(name, ZOO, 20, POOLS)
    assert len(v.archs) == n
    assert set(v.archs) == {a.id for a in archspace.subset(name)}


def test_seed_pool_and_block_variants():
    assert variant("seeds_10", ZOO, 20, POOLS).seeds == tuple(range(10))
    assert variant("pool_lsun", ZOO, 20, POOLS).pools == ("lsun",)
    assert len(variant("blocks_1", ZOO, 20, POOLS).archs) == 144
    assert len(variant("blocks_3", ZOO, 20, POOLS).archs) == 432
    assert variant("immunized", ZOO, 20, POOLS).augment
    assert variant("finetune", ZOO, 20, POOLS).finetune
    assert variant("reference", ZOO, 20, POOLS).backbone == "none"
    assert variant("random", ZOO, 20, POOLS).untrained


def test_variants_equal_to_all_are_not_trained_twice():
    assert canonical("seeds_20", ZOO, 20, POOLS) == "all"
    assert canonical("blocks_2", ZOO, 20, POOLS) == "all"
    assert canonical("pool_celeba", ZOO, 20, ["celeba"]) == "all"
    assert canonical("seeds_10", ZOO, 20, POOLS) == "seeds_10"
    assert canonical("wo_K", ZOO, 20, POOLS) == "wo_K"


def test_bad_variants_are_named():
    with pytest.raises(ValueError, match="unknown extractor variant"):
        variant("wo_X", ZOO, 20, POOLS)
    with pytest.raises(ValueError, match="pool 'ffhq'"):
        variant("pool_ffhq", ZOO, 20, POOLS)
    with pytest.raises(ValueError, match="seeds"):
        variant("seeds_30", ZOO, 20, POOLS)
    with pytest.raises(ValueError, match="at least 2"):
        variant("wo_A", ["K1-L1-Spost-Unearest-Arelu-Nbn"], 1, POOLS)


def test_with_an_ablation_budget_ablations_equal_to_all_share_their_own_all_row():
    for name in ("seeds_20", "blocks_2", "pool_celeba", "all_ablation"):
        assert canonical(name, ZOO, 20, ["celeba"], ablation_budget=True) == "all_ablation"
        assert canonical(name, ZOO, 20, ["celeba"]) == "all"        # one budget: the row is `all` itself
    assert canonical("all", ZOO, 20, ["celeba"], ablation_budget=True) == "all"
    assert canonical("seeds_10", ZOO, 20, ["celeba"], ablation_budget=True) == "seeds_10"
    trains = {n: variant(n, ZOO, 20, ["celeba"]) for n in ("all", "all_ablation", "wo_K", "immunized",
                                                          "finetune", "random", "reference")}
    assert (trains["all"].archs, trains["all"].seeds) == (trains["all_ablation"].archs, trains["all_ablation"].seeds)
    assert {n for n, v in trains.items() if v.ablation} == {"all_ablation", "wo_K", "immunized"}


# config.yaml (the paper) and a smoke-sized preset with two of the six baselines
PAPER = Preset(seeds=20, pools=("celeba", "lsun"), seed_counts=(1, 10, 15, 20), windows=(1, 2, 3, 4),
               baselines=tuple(variants.BASELINE_LABELS))
SMOKE = Preset(seeds=2, pools=("living", "scenes"), seed_counts=(1, 2), windows=(1, 2), baselines=("marra", "abady"))
TABLES = ("table_iv", "table_v", "table_vi", "table_vii", "table_viii", "table_ix", "table_x", "fig_8", "fig_16")


def test_the_registrys_rows_are_each_tables_rows_in_order():
    assert variants.rows("table_iv", SMOKE) == [Row(f"w/o {k}", f"w/o {k}", f"wo_{k}") for k in "KLSUAN"] + [
        Row("All", "All", "all_ablation")]
    assert variants.rows("table_v", PAPER) == [Row("1", "1", "seeds_1"), Row("10", "10", "seeds_10"),
                                               Row("15", "15", "seeds_15"), Row("20 (all)", "20", "seeds_20")]
    assert variants.rows("table_v", SMOKE) == [Row("1", "1", "seeds_1"), Row("2 (all)", "20", "seeds_2")]
    assert variants.rows("table_vi", PAPER) == [Row("celeba", "CelebA", "pool_celeba"), Row("lsun", "LSUN", "pool_lsun"),
                                                Row("celeba + lsun", "CelebA + LSUN", "all_ablation")]
    assert variants.rows("table_vi", SMOKE) == [Row("living", "", "pool_living"), Row("scenes", "", "pool_scenes"),
                                                Row("living + scenes", "CelebA + LSUN", "all_ablation")]
    assert variants.rows("table_vii", dataclasses.replace(SMOKE, windows=(1, 3, 5))) == [
        Row("w/o slide window", "w/o slide window", "all", "w1"), Row("3x3", "3x3", "all", "w3"),
        Row("5x5", "", "all", "w5")]                      # a window the paper did not run: no paper row
    comparison = [Row("Marra et al.", "Marra et al.", "baseline_marra"),
                  Row("Abady et al.", "Abady et al.", "baseline_abady"),
                  Row("Ours (Only-Syn)", "Ours (Only-Syn)", "all"), Row("Ours (Fine-tune)", "Ours (Fine-tune)", "finetune"),
                  Row("Training-free reference", "", "reference"), Row("Random-init extractor", "", "random")]
    assert all(variants.rows(t, SMOKE) == comparison for t in ("table_viii", "table_ix", "table_x"))
    assert variants.rows("fig_8", SMOKE) == [Row("1", "1", "blocks_1"), Row("2", "2", "blocks_2"),
                                             Row("3", "3", "blocks_3")]
    assert variants.rows("fig_16", SMOKE) == [Row("plain", "", "all_ablation"), Row("immunized", "", "immunized")]


def test_a_typo_in_a_paper_label_fails_at_lookup_naming_the_table_the_label_and_the_known_ones(monkeypatch):
    typo = dataclasses.replace(variants.FAMILIES["wo"], rows=lambda p: {"table_iv": [Row("w/o K", "w/o  K", "wo_K")]})
    monkeypatch.setitem(variants.FAMILIES, "wo", typo)
    with pytest.raises(ValueError) as err:
        variants.rows("table_iv", SMOKE)
    message = str(err.value)
    assert message.startswith("table_iv: no paper row 'w/o  K'")
    assert all(repr(label) in message for label in variants.paper_rows("table_iv"))
    with pytest.raises(ValueError, match="table_v: no paper row 'twenty'"):
        variants.paper_numbers("table_v", "twenty")
    assert variants.paper_numbers("table_v", "") is None          # declared: no paper row


def test_the_workflow_stops_at_start_up_on_a_paper_label_the_paper_lacks(monkeypatch):
    """common.smk looks every row's paper label up when the Snakefile is parsed, before any job."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    from conftest import ROOT

    typo = dataclasses.replace(variants.FAMILIES["finetune"],
                               rows=lambda p: {"table_ix": [Row("Ours (Fine-tune)", "Ours (Finetune)", "finetune")]})
    monkeypatch.setitem(variants.FAMILIES, "finetune", typo)
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api, pytest.raises(ValueError) as err:
        api.workflow(resource_settings=ResourceSettings(), snakefile=ROOT / "Snakefile", workdir=ROOT,
                     config_settings=ConfigSettings(configfiles=[ROOT / "configs" / "smoke.yaml"]))._workflow
    assert str(err.value).startswith("table_ix: no paper row 'Ours (Finetune)'; the paper's rows are [")


def test_every_paper_number_set_has_its_tables_arity_and_one_family():
    from modelfp.tables import ABLATION_METRICS, COMPARISON_METRICS

    arity = {**dict.fromkeys(("table_iv", "table_v", "table_vi", "table_vii"), len(ABLATION_METRICS)),
             **{t: 2 * len(metrics) for t, metrics in COMPARISON_METRICS.items()},   # classical, emerging
             "fig_8": 1}                                                          # GPU hours of synthesis
    for key, family in variants.FAMILIES.items():
        for table, numbers in family.paper.items():
            assert table in arity, (key, table)
            for label, values in numbers.items():
                assert len(values) == arity[table], (key, table, label)
                assert all(isinstance(v, (int, float)) for v in values), (key, table, label)
    for table in arity:       # no paper row is claimed by two families (one would hide the other)
        assert sum(len(f.paper.get(table, {})) for f in variants.FAMILIES.values()) == len(variants.paper_rows(table))


def test_the_paper_preset_shows_every_paper_row():
    for table in TABLES:
        assert {r.paper for r in variants.rows(table, PAPER)} - {""} == set(variants.paper_rows(table)), table


def test_the_pattern_accepts_exactly_the_registrys_names():
    names = {r.variant for preset in (PAPER, SMOKE) for t in TABLES for r in variants.rows(t, preset)}
    for key, family in variants.FAMILIES.items():
        own = {n for n in names if re.fullmatch(family.pattern, n)}
        assert own, f"family {key}: no row names one of its members"
        assert not any(re.fullmatch(f.pattern, n) for n in own for k, f in variants.FAMILIES.items() if k != key)
    for name in names:
        assert re.fullmatch(variants.FINGERPRINTER_PATTERN, name)
        is_variant = not name.startswith(variants.BASELINE_PREFIX)
        assert bool(re.fullmatch(variants.PATTERN, name)) == is_variant, name
        if is_variant and name in {r.variant for t in TABLES for r in variants.rows(t, PAPER)}:
            assert variant(name, ZOO, 20, POOLS).name == name     # every variant the paper reads is buildable
    for name in ("wo_X", "wo_", "seeds_", "seeds_x", "pool_", "pool_a-b", "blocks_4", "blocks_12", "All", "all_",
                 "immunised", "baseline_", "baseline_Marra", "baseline_x1", "random_", "w/o K", ""):
        assert not re.fullmatch(variants.FINGERPRINTER_PATTERN, name), name
    with pytest.raises(ValueError, match="unknown extractor variant 'baseline_marra'"):
        variant("baseline_marra", ZOO, 20, POOLS)               # a baseline is no extractor variant
