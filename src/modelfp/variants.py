"""Extractor variants: what each ablation trains on (Tables IV-VI, Figure 8, Figure 16, Fine-tune).

A variant is named in the config and maps to its synthetic models, pools and training options:

    all          every architecture of the zoo (K <= 2), every seed, every pool   (the default row)
    wo_K ... wo_N  one synthesis option frozen at its simplest value              (Table IV)
    seeds_<n>    the first n seeds of every architecture                          (Table V)
    pool_<name>  one real-image pool only                                         (Table VI)
    blocks_<k>   architectures with at most k blocks (k = 3 adds the K=3 zoo)     (Figure 8)
    immunized    all, trained with JPEG and crop-resize augmentation             (Figure 16)
    finetune     all, then one epoch on the classical test models                 (Tables VIII-X)
    random       the extractor's network left at initialisation (a control, Tables VIII-X)
    reference    no network: the input spectrum itself is the fingerprint (the training-free
                 control of Tables VIII-X)

Beside them, `baseline_<method>` names a trained baseline of Tables VIII-X (modelfp.baselines) in
the same embeddings / evaluation layout: not an extractor variant (`variant` rejects it), but a
name the embed, evaluate and t-SNE rules accept (`FINGERPRINTER_PATTERN`).

The controls are built from the same feed (the per-position input statistics) but never trained.

The ablations' budget: a preset may train Only-Syn (`all`, Tables VIII-X, the deployed extractor)
longer than the ablations (`extractor.ablation_epochs`); the ablations (wo_*, seeds_*, pool_*,
blocks_*, immunized) then share that smaller budget with their own "All" row, `all_ablation`: the
same training set as `all`, at the ablations' budget (`Variant.ablation`).

`canonical` maps a variant that equals `all` under the preset (e.g. seeds_20 of a 20-seed zoo,
blocks_2, the pool_ of the only pool) to its All row - "all_ablation" when the ablations have their
own budget, else "all" - so no extractor is trained twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import archspace


@dataclass(frozen=True)
class Variant:
    name: str
    archs: tuple[str, ...]     # architecture ids of its synthetic models
    seeds: tuple[int, ...]
    pools: tuple[str, ...]
    augment: bool = False      # immunized
    finetune: bool = False     # start from `all` and tune on the classical test models
    untrained: bool = False    # a control: saved at initialisation
    backbone: str | None = None  # overrides the config's backbone (the reference: "none")
    ablation: bool = False     # trained for the ablations' budget (extractor.ablation_epochs)


ABLATION_ALL = "all_ablation"
PATTERN = r"all|all_ablation|immunized|finetune|random|reference|wo_[KLSUAN]|seeds_\d+|pool_\w+|blocks_[123]"
BASELINE_PREFIX = "baseline_"
# the paper's row label of each baseline of Tables VIII-X (here, not in modelfp.baselines, so that the
# workflow reads it without importing torch)
BASELINE_LABELS = {"marra": "Marra et al.", "yu": "Yu et al.", "dnadet": "DNA-Det", "repmix": "RepMix",
                   "abady": "Abady et al.", "pose": "POSE"}
BASELINE_VERIFIERS = ("abady",)    # methods with a pair verifier of their own (`pair_score`)
FINGERPRINTER_PATTERN = f"{PATTERN}|{BASELINE_PREFIX}[a-z]+"   # what embed / evaluate / tsne take
_PATTERN = re.compile(PATTERN)


def baseline_variant(method: str) -> str:
    """The embeddings / evaluation name of a trained baseline."""
    return f"{BASELINE_PREFIX}{method}"


def variant(name: str, zoo: list[str], seeds: int, pools: list[str]) -> Variant:
    """The variant `name` of a zoo (architecture ids, K in {1, 2, 3}) of `seeds` seeds per
    architecture, trained on `pools`; ValueError for unknown names or empty selections."""
    if not _PATTERN.fullmatch(name):
        raise ValueError(f"unknown extractor variant {name!r}; known: all, all_ablation, wo_K, wo_L, wo_S, wo_U, "
                         f"wo_A, wo_N, seeds_<n>, pool_<pool>, blocks_<1|2|3>, immunized, finetune, random, reference")
    archs = [archspace.parse(a) for a in zoo]
    base = [a for a in archs if a.blocks in archspace.BLOCKS]
    chosen, seed_list, pool_list = base, list(range(seeds)), list(pools)
    if name.startswith("wo_"):
        chosen = archspace.subset(name, base)
    elif name.startswith("seeds_"):
        seed_list = archspace.first_seeds(int(name[6:]), seeds)
    elif name.startswith("pool_"):
        if name[5:] not in pools:
            raise ValueError(f"variant {name!r}: pool {name[5:]!r} is not one of the synthesis pools {pools}")
        pool_list = [name[5:]]
    elif name.startswith("blocks_"):
        chosen = [a for a in archs if a.blocks <= int(name[7:])]
    if len(chosen) * len(seed_list) < 2:
        raise ValueError(f"variant {name!r} selects {len(chosen) * len(seed_list)} synthetic models of this "
                         f"zoo; it needs at least 2 (add architectures under synthesis.architectures)")
    return Variant(name, tuple(a.id for a in chosen), tuple(seed_list), tuple(pool_list),
                   augment=name == "immunized", finetune=name == "finetune",
                   untrained=name in ("random", "reference"),
                   backbone="none" if name == "reference" else None,
                   ablation=name not in ("all", "finetune", "random", "reference"))


def canonical(name: str, zoo: list[str], seeds: int, pools: list[str], ablation_budget: bool = False) -> str:
    """The variant that trains what `name` trains: for an ablation that equals `all` in training
    data, its All row ("all_ablation" when the ablations have their own budget, else "all"); else `name`."""
    if name in ("all", "immunized", "finetune", "random", "reference") or name.startswith(BASELINE_PREFIX):
        return name
    all_row = ABLATION_ALL if ablation_budget else "all"
    if name == ABLATION_ALL:
        return all_row
    v, a = variant(name, zoo, seeds, pools), variant("all", zoo, seeds, pools)
    same = (v.archs, v.seeds, v.pools) == (a.archs, a.seeds, a.pools)
    return all_row if same else name
