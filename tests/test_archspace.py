import re

import pytest

from modelfp import archspace
from modelfp.archspace import Arch, format_id, max_blocks, parse, space, subset


def test_space_has_288_unique_ids_that_round_trip():
    archs = space()
    ids = [a.id for a in archs]
    assert len(archs) == 288 == 2 * 2 * 2 * 3 * 4 * 3
    assert len(set(ids)) == 288
    assert all(parse(i) == a and format_id(parse(i)) == i for i, a in zip(ids, archs))


def test_k3_extension_adds_144_architectures():
    assert len(max_blocks(1)) == 144
    assert len(max_blocks(2)) == 288
    k3 = max_blocks(3)
    assert len(k3) == 432 and len({a.id for a in k3}) == 432
    assert sum(a.blocks == 3 for a in k3) == 144


@pytest.mark.parametrize("name, size", [
    ("all", 288), ("wo_K", 144), ("wo_L", 144), ("wo_S", 144),
    ("wo_U", 96), ("wo_A", 72), ("wo_N", 96),
])
def test_ablation_subset_sizes(name, size):
    chosen = subset(name)
    assert len(chosen) == size
    # each subset removes exactly the variation of its option and keeps all others
    option = {"wo_K": "blocks", "wo_L": "layers", "wo_S": "order", "wo_U": "upsampling",
              "wo_A": "activation", "wo_N": "normalization"}.get(name)
    if option:
        assert len({getattr(a, option) for a in chosen}) == 1


def test_subset_values_follow_the_paper():
    assert {a.blocks for a in subset("wo_K")} == {1}
    assert {a.layers for a in subset("wo_L")} == {1}
    assert {a.order for a in subset("wo_S")} == {"post"}
    assert {a.upsampling for a in subset("wo_U")} == {"bilinear"}
    assert {a.activation for a in subset("wo_A")} == {"none"}
    assert {a.normalization for a in subset("wo_N")} == {"none"}


def test_id_pattern_matches_every_id_and_has_no_capturing_groups():
    pattern = re.compile(archspace.ID_PATTERN)
    assert pattern.groups == 0  # Snakemake wildcard constraints must not define groups
    assert all(pattern.fullmatch(a.id) for a in max_blocks(3))


@pytest.mark.parametrize("bad", [
    "K4-L1-Spost-Unearest-Arelu-Nbn", "K1-L1-Spost-Unearest-Arelu", "k1-l1-spost-unearest-arelu-nbn",
    "K1-L1-Spost-Unearest-Arelu-Nbn-extra", "K1-L1-Smid-Unearest-Arelu-Nbn", "",
])
def test_parse_rejects_malformed_ids_with_an_example(bad):
    with pytest.raises(ValueError, match="K2-L1-Spost-Ubilinear-Arelu-Nbn"):
        parse(bad)


def test_arch_rejects_unknown_option_values():
    with pytest.raises(ValueError, match="activation"):
        Arch(1, 1, "post", "nearest", "gelu", "bn")


def test_table_v_seed_subsets_are_nested_prefixes():
    subsets = [archspace.first_seeds(n, 20) for n in (1, 10, 15, 20)]     # the paper's (evaluation.seed_counts)
    assert [len(s) for s in subsets] == [1, 10, 15, 20]
    assert all(a == b[:len(a)] for a, b in zip(subsets, subsets[1:]))
    with pytest.raises(ValueError, match="2"):
        archspace.first_seeds(10, 2)
