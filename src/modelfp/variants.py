"""Extractor variants: what each ablation trains on (Tables IV-VI, Figure 8, Figure 16, Fine-tune).

A variant is named in the config and maps to its synthetic models, pools and training options:

    all          every architecture of the zoo (K <= 2), every seed, every pool   (the default row)
    wo_K ... wo_N  one synthesis option frozen at its simplest value              (Table IV)
    seeds_<n>    the first n seeds of every architecture                          (Table V)
    pool_<name>  one real-image pool only                                         (Table VI)
    blocks_<k>   architectures with at most k blocks (k = 3 adds the K=3 zoo)     (Figure 8)
    immunized    all, trained with JPEG and crop-resize augmentation             (Figure 16)
    specialist_<kind>  all's recipe, every training image re-saved as `extractor.specialists`
                 says (kinds of `SPECIALISTS`: jpeg, gray); carried by the tool's
                 extractor file to embed its re-saves (issue 25; not in the paper)
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

The registry `FAMILIES` holds one entry per family (the baselines' included): its names (a regex;
`PATTERN` joins them) and what a member trains on. Adding a family is adding one entry; where its
rows stand in the paper's tables is the tables' business (modelfp.paper_tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from . import archspace
from .baselines import BASELINE_PREFIX


@dataclass(frozen=True)
class Variant:
    name: str
    archs: tuple[str, ...]     # architecture ids of its synthetic models
    seeds: tuple[int, ...]
    pools: tuple[str, ...]
    augment: bool = False      # immunized
    specialist: str | None = None  # specialist_<kind>: trained on images re-saved as that kind
    finetune: bool = False     # start from `all` and tune on the classical test models
    untrained: bool = False    # a control: saved at initialisation
    backbone: str | None = None  # overrides the config's backbone (the reference: "none")
    ablation: bool = False     # trained for the ablations' budget (extractor.ablation_epochs)


class Selection(NamedTuple):
    """What a variant trains on: parsed architectures, seeds, pools."""
    archs: list
    seeds: list[int]
    pools: list[str]


@dataclass(frozen=True)
class Family:
    """One family of variants (or the trained baselines), an entry of `FAMILIES`."""
    pattern: str                 # its names, a regex
    # what a member trains on: (name, all's selection, the whole zoo) -> its selection; None: all's
    select: Callable[[str, Selection, list], Selection] | None = None
    flags: dict = field(default_factory=dict)    # its Variant flags


# the specialist networks the tool's extractor file may carry beside its own (issue 25), and the
# re-saves (`perturb.MATCHED`) each embeds (lossy WebP by the JPEG one: it halves the colour and
# quantises transform blocks as JPEG does; validation, nearest right 70.6 -> 73.7 %): a query of
# such a condition and the gallery's copies of it are embedded by the specialist, every other image
# by the extractor's own network
# (`extractor.network_for`); specialist_<kind> trains one (`extractor.specialists` in the config)
SPECIALISTS = {"jpeg": ("jpeg95", "jpeg90", "jpeg85", "jpeg75", "webp"), "gray": ("gray",)}
SPECIALIST_PREFIX = "specialist_"

ABLATION_ALL = "all_ablation"
ABLATION = {"ablation": True}      # trained for the ablations' budget


def _arg(name: str) -> str:
    """What follows a family's prefix (seeds_<n>, pool_<pool>, blocks_<k>)."""
    return name.split("_", 1)[1]


def _one_pool(name, s, zoo):
    if _arg(name) not in s.pools:
        raise ValueError(f"variant {name!r}: pool {_arg(name)!r} is not one of the synthesis pools {s.pools}")
    return s._replace(pools=[_arg(name)])


# The order is the patterns' order in FINGERPRINTER_PATTERN (the workflow's wildcard constraint).
FAMILIES = {
    # wo_K ... wo_N: one synthesis option frozen at its simplest value
    "wo": Family(r"wo_[KLSUAN]", flags=ABLATION,
                 select=lambda name, s, zoo: s._replace(archs=archspace.subset(name, s.archs))),
    # seeds_<n>: the first n seeds of every architecture
    "seeds": Family(r"seeds_\d+", flags=ABLATION,
                    select=lambda name, s, zoo: s._replace(seeds=archspace.first_seeds(int(_arg(name)), len(s.seeds)))),
    # pool_<name>: one real-image pool only
    "pool": Family(r"pool_\w+", flags=ABLATION, select=_one_pool),
    # all_ablation: all's training set at the ablations' budget, their All row and Figure 16's plain curve
    "all_ablation": Family(ABLATION_ALL, flags=ABLATION),
    # blocks_<k>: architectures with at most k blocks (k = 3 adds the K=3 zoo)
    "blocks": Family(r"blocks_[123]", flags=ABLATION,
                     select=lambda name, s, zoo: s._replace(archs=[a for a in zoo if a.blocks <= int(_arg(name))])),
    # immunized: all, trained with JPEG and crop-resize augmentation
    "immunized": Family("immunized", flags={"augment": True, **ABLATION}),
    # specialist_<kind>: all's recipe, every training image re-saved so (SPECIALISTS)
    "specialist": Family(rf"{SPECIALIST_PREFIX}(?:{'|'.join(SPECIALISTS)})"),
    # baseline_<method>: a trained baseline (modelfp.baselines.baseline_variant), evaluated like a
    # variant but not one (`variant` rejects it)
    "baseline": Family(rf"{BASELINE_PREFIX}[a-z]+"),
    # all: every architecture of the zoo (K <= 2), every seed and pool; Only-Syn, the deployed extractor
    "all": Family("all"),
    # finetune: all, then one epoch on the classical test models
    "finetune": Family("finetune", flags={"finetune": True}),
    # the controls: the input spectrum itself, and the network left at initialisation
    "reference": Family("reference", flags={"untrained": True, "backbone": "none"}),
    "random": Family("random", flags={"untrained": True}),
}
FINGERPRINTER_PATTERN = "|".join(f.pattern for f in FAMILIES.values())   # what embed / evaluate / tsne take
PATTERN = "|".join(f.pattern for key, f in FAMILIES.items() if key != "baseline")   # the extractor variants
_PATTERN = re.compile(PATTERN)


def family(name: str) -> Family:
    """The family of a variant or baseline name; ValueError for a name of none."""
    for f in FAMILIES.values():
        if re.fullmatch(f.pattern, name):
            return f
    raise ValueError(f"unknown extractor variant {name!r}; known: {FINGERPRINTER_PATTERN.replace('|', ', ')}")


def variant(name: str, zoo: list[str], seeds: int, pools: list[str]) -> Variant:
    """The variant `name` of a zoo (architecture ids, K in {1, 2, 3}) of `seeds` seeds per
    architecture, trained on `pools`; ValueError for unknown names or empty selections."""
    if not _PATTERN.fullmatch(name):
        raise ValueError(f"unknown extractor variant {name!r}; known: {PATTERN.replace('|', ', ')}")
    archs = [archspace.parse(a) for a in zoo]
    chosen = Selection([a for a in archs if a.blocks in archspace.BLOCKS], list(range(seeds)), list(pools))
    fam = family(name)
    if fam.select:
        chosen = fam.select(name, chosen, archs)
    n = len(chosen.archs) * len(chosen.seeds)
    if n < 2:
        raise ValueError(f"variant {name!r} selects {n} synthetic models of this zoo; it needs at least 2 "
                         f"(add architectures under synthesis.architectures)")
    flags = {**fam.flags, **({"specialist": _arg(name)} if fam is FAMILIES["specialist"] else {})}
    return Variant(name, tuple(a.id for a in chosen.archs), tuple(chosen.seeds), tuple(chosen.pools), **flags)


def canonical(name: str, zoo: list[str], seeds: int, pools: list[str], ablation_budget: bool = False) -> str:
    """The variant that trains what `name` trains: for an ablation that equals `all` in training
    data, its All row ("all_ablation" when the ablations have their own budget, else "all"); else `name`."""
    all_row = ABLATION_ALL if ablation_budget else "all"
    if name == ABLATION_ALL:
        return all_row
    if family(name).select is None:     # all itself, a baseline, or trained otherwise on all's data
        return name
    v, a = variant(name, zoo, seeds, pools), variant("all", zoo, seeds, pools)
    same = (v.archs, v.seeds, v.pools) == (a.archs, a.seeds, a.pools)
    return all_row if same else name

