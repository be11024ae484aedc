"""Extractor variants: what each ablation row trains on, and the names the workflow accepts for
them and for the trained baselines (the tables' rows: tests/test_paper_tables.py)."""

import re

import pytest

from modelfp import archspace, paper_tables, variants
from modelfp.baselines import BASELINE_PREFIX, BASELINES
from modelfp.paper_tables import Preset
from modelfp.perturb import MATCHED
from modelfp.variants import SPECIALISTS, canonical, variant

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
    jpeg = variant("specialist_jpeg", ZOO, 20, POOLS)
    assert jpeg.specialist == "jpeg" and not jpeg.ablation and jpeg.archs == variant("all", ZOO, 20, POOLS).archs
    assert set(SPECIALISTS) == {"jpeg", "gray"} and {c for cs in SPECIALISTS.values() for c in cs} <= set(MATCHED)
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
               baselines=tuple(BASELINES))
SMOKE = Preset(seeds=2, pools=("living", "scenes"), seed_counts=(1, 2), windows=(1, 2), baselines=("marra", "abady"))
TABLES = (*paper_tables.TABLES, *paper_tables.FIGURES)


def test_the_pattern_accepts_exactly_the_names_the_tables_read():
    # and the specialists the tool's file carries (no table reads them)
    names = {r.variant for preset in (PAPER, SMOKE) for t in TABLES for r in paper_tables.rows(t, preset)}
    names |= {f"{variants.SPECIALIST_PREFIX}{kind}" for kind in SPECIALISTS}
    for key, family in variants.FAMILIES.items():
        own = {n for n in names if re.fullmatch(family.pattern, n)}
        assert own, f"family {key}: no row names one of its members"
        assert not any(re.fullmatch(f.pattern, n) for n in own for k, f in variants.FAMILIES.items() if k != key)
    for name in names:
        assert re.fullmatch(variants.FINGERPRINTER_PATTERN, name)
        is_variant = not name.startswith(BASELINE_PREFIX)
        assert bool(re.fullmatch(variants.PATTERN, name)) == is_variant, name
        if is_variant and name in {r.variant for t in TABLES for r in paper_tables.rows(t, PAPER)}:
            assert variant(name, ZOO, 20, POOLS).name == name     # every variant the paper reads is buildable
    for name in ("wo_X", "wo_", "seeds_", "seeds_x", "pool_", "pool_a-b", "blocks_4", "blocks_12", "All", "all_",
                 "immunised", "baseline_", "baseline_Marra", "baseline_x1", "random_", "w/o K", "specialist_webp",
                 "specialist_", ""):
        assert not re.fullmatch(variants.FINGERPRINTER_PATTERN, name), name
    with pytest.raises(ValueError, match="unknown extractor variant 'baseline_marra'"):
        variant("baseline_marra", ZOO, 20, POOLS)               # a baseline is no extractor variant
