"""Extractor variants: what each ablation row trains on."""

import pytest

from modelfp import archspace
from modelfp.variants import canonical, variant

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
