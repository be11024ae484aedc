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

The registry `FAMILIES` holds one entry per family (the baselines' included): its names (a regex;
`PATTERN` joins them), what a member trains on, its rows in Tables IV-X and Figures 8 and 16 (our
label, the paper's row label, the variant and view it reads) and the paper's numbers for them.
`rows` lists a table's rows for a preset and looks each paper label up strictly (`paper_numbers`),
so the workflow stops at start-up on a label the paper lacks. Adding a family is adding one entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

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


class Row(NamedTuple):
    """A row of a paper table, or a point or curve of a figure: our label, the paper's row label
    ("": the paper has none, as for a control or a seed count it did not run), the variant (or
    baseline_<method>) whose evaluation it reads, and its view (None: the default window)."""
    label: str
    paper: str
    variant: str
    view: str | None = None


@dataclass(frozen=True)
class Preset:
    """What of the config shapes the rows: the zoo's seeds per architecture and synthesis pools,
    Table V's seed counts, Table VII's windows and the configured baselines."""
    seeds: int
    pools: tuple[str, ...]
    seed_counts: tuple[int, ...]
    windows: tuple[int, ...]
    baselines: tuple[str, ...]


class Selection(NamedTuple):
    """What a variant trains on: parsed architectures, seeds, pools."""
    archs: list
    seeds: list[int]
    pools: list[str]


@dataclass(frozen=True)
class Family:
    """One family of variants (or the trained baselines), an entry of `FAMILIES`."""
    pattern: str                 # its names, a regex
    rows: Callable[[Preset], dict]   # {table or figure: its rows there}, for a preset
    # what a member trains on: (name, all's selection, the whole zoo) -> its selection; None: all's
    select: Callable[[str, Selection, list], Selection] | None = None
    flags: dict = field(default_factory=dict)    # its Variant flags
    # {table or figure: {paper row label: the paper's numbers}}: Tables IV-VII the ABLATION_METRICS,
    # VIII-X (classical m1, m2, emerging m1, m2) of tables.COMPARISON_METRICS, Figure 8 GPU hours
    paper: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)   # {member: paper row label} (the baselines' methods)


ABLATION_ALL = "all_ablation"
BASELINE_PREFIX = "baseline_"
BASELINE_VERIFIERS = ("abady",)    # methods with a pair verifier of their own (`pair_score`)
ABLATION = {"ablation": True}      # trained for the ablations' budget
COMPARISON = ("table_viii", "table_ix", "table_x")
TABLES = ("table_iv", "table_v", "table_vi", "table_vii", *COMPARISON)   # the attribution tables
PAPER_ALL = (89.73, 95.69, 94.03, 93.84)      # the paper's All extractor: a row of each of Tables IV-VII
POOL_LABELS = {"celeba": "CelebA", "lsun": "LSUN"}     # Table VI: the paper's pools


def _arg(name: str) -> str:
    """What follows a family's prefix (seeds_<n>, pool_<pool>, blocks_<k>)."""
    return name.split("_", 1)[1]


def _one_pool(name, s, zoo):
    if _arg(name) not in s.pools:
        raise ValueError(f"variant {name!r}: pool {_arg(name)!r} is not one of the synthesis pools {s.pools}")
    return s._replace(pools=[_arg(name)])


def _seed_rows(p):
    """Table V: the paper's seed counts (archspace.SEED_COUNTS); its 20 is every seed, its All."""
    return [Row(f"{n} (all)" if n == p.seeds else str(n),
                "20" if n == p.seeds else (str(n) if n in archspace.SEED_COUNTS else ""), f"seeds_{n}")
            for n in p.seed_counts]


def _window_rows(p):
    """Table VII: `all` in n x n windows; the paper's are n = 1 (no sliding window) to 4."""
    labels = ["w/o slide window" if n == 1 else f"{n}x{n}" for n in p.windows]
    return [Row(label, label if n <= 4 else "", "all", f"w{n}") for n, label in zip(p.windows, labels)]


def _compared(*rows):
    """The same rows in each of Tables VIII-X."""
    return dict.fromkeys(COMPARISON, list(rows))


# A table lists its rows family by family, in this order (Table IV: wo_* then All; VI: pool_* then
# All; VIII-X: the baselines, Only-Syn, Fine-tune, the two controls; Figure 16: plain, immunized).
FAMILIES = {
    # wo_K ... wo_N: one synthesis option frozen at its simplest value
    "wo": Family(
        r"wo_[KLSUAN]", flags=ABLATION,
        select=lambda name, s, zoo: s._replace(archs=archspace.subset(name, s.archs)),
        rows=lambda p: {"table_iv": [Row(f"w/o {k}", f"w/o {k}", f"wo_{k}") for k in "KLSUAN"]},
        paper={"table_iv": {"w/o K": (87.04, 94.57, 92.69, 92.51), "w/o L": (87.54, 95.08, 90.04, 89.86),
                            "w/o S": (89.29, 95.56, 93.91, 93.75), "w/o U": (87.68, 94.18, 88.96, 88.64),
                            "w/o A": (84.75, 92.19, 87.03, 86.80), "w/o N": (87.63, 94.80, 93.47, 93.40)}}),
    # seeds_<n>: the first n seeds of every architecture
    "seeds": Family(
        r"seeds_\d+", flags=ABLATION, rows=lambda p: {"table_v": _seed_rows(p)},
        select=lambda name, s, zoo: s._replace(seeds=archspace.first_seeds(int(_arg(name)), len(s.seeds))),
        paper={"table_v": {"1": (89.87, 96.11, 91.04, 90.89), "10": (88.00, 94.70, 93.03, 92.87),
                           "15": (88.87, 95.37, 93.96, 93.78), "20": PAPER_ALL}}),
    # pool_<name>: one real-image pool only
    "pool": Family(
        r"pool_\w+", flags=ABLATION, select=_one_pool,
        rows=lambda p: {"table_vi": [Row(q, POOL_LABELS.get(q.lower(), ""), f"pool_{q}") for q in p.pools]},
        paper={"table_vi": {"CelebA": (87.50, 94.60, 93.90, 93.78), "LSUN": (89.72, 95.53, 93.62, 93.48)}}),
    # all_ablation: all's training set at the ablations' budget, their All row and Figure 16's plain curve
    "all_ablation": Family(
        ABLATION_ALL, flags=ABLATION,
        rows=lambda p: {"table_iv": [Row("All", "All", ABLATION_ALL)],
                        "table_vi": [Row(" + ".join(p.pools), "CelebA + LSUN", ABLATION_ALL)],
                        "fig_16": [Row("plain", "", ABLATION_ALL)]},
        paper={"table_iv": {"All": PAPER_ALL}, "table_vi": {"CelebA + LSUN": PAPER_ALL}}),
    # blocks_<k>: architectures with at most k blocks (k = 3 adds the K=3 zoo); the paper: synthesis GPU hours
    "blocks": Family(
        r"blocks_[123]", flags=ABLATION,
        select=lambda name, s, zoo: s._replace(archs=[a for a in zoo if a.blocks <= int(_arg(name))]),
        rows=lambda p: {"fig_8": [Row(str(k), str(k), f"blocks_{k}") for k in (1, 2, 3)]},
        paper={"fig_8": {"1": (42,), "2": (133,), "3": (393,)}}),
    # immunized: all, trained with JPEG and crop-resize augmentation
    "immunized": Family("immunized", flags={"augment": True, **ABLATION},
                        rows=lambda p: {"fig_16": [Row("immunized", "", "immunized")]}),
    # baseline_<method>: a trained baseline (modelfp.baselines; here so that the workflow reads its
    # label without importing torch), evaluated like a variant but not one (`variant` rejects it)
    "baseline": Family(
        rf"{BASELINE_PREFIX}[a-z]+",
        labels={"marra": "Marra et al.", "yu": "Yu et al.", "dnadet": "DNA-Det", "repmix": "RepMix",
                "abady": "Abady et al.", "pose": "POSE"},
        rows=lambda p: _compared(*(Row(BASELINE_LABELS[m], BASELINE_LABELS[m], baseline_variant(m))
                                   for m in p.baselines)),
        paper={"table_viii": {"Marra et al.": (61.00, 55.01, 26.72, 22.33), "Yu et al.": (96.28, 96.27, 31.93, 30.67),
                              "DNA-Det": (98.55, 98.55, 47.41, 46.60), "RepMix": (94.34, 94.29, 26.63, 25.35),
                              "Abady et al.": (97.12, 97.09, 48.23, 48.15), "POSE": (98.93, 98.93, 49.80, 48.87)},
               "table_ix": {"Marra et al.": (66.10, 68.99, 59.37, 59.46), "Yu et al.": (96.80, 99.27, 63.84, 68.97),
                            "DNA-Det": (99.31, 99.94, 69.64, 77.54), "RepMix": (99.15, 97.44, 61.09, 57.92),
                            "Abady et al.": (95.10, 96.98, 64.52, 68.98), "POSE": (98.76, 99.91, 66.94, 72.85)},
               "table_x": {"Marra et al.": (-0.07, 23.18, -0.21, 34.17), "Yu et al.": (0.36, 1.21, -0.05, 12.73),
                           "DNA-Det": (0.40, 1.08, 0.01, 4.53), "RepMix": (0.28, 2.59, -0.10, 8.48),
                           "Abady et al.": (0.38, 1.18, -0.02, 10.96), "POSE": (0.44, 0.90, -0.02, 3.64)}}),
    # all: every architecture of the zoo (K <= 2), every seed and pool; Only-Syn, the deployed extractor
    "all": Family(
        "all",
        rows=lambda p: {"table_vii": _window_rows(p), **_compared(Row("Ours (Only-Syn)", "Ours (Only-Syn)", "all"))},
        paper={"table_vii": {"w/o slide window": (88.42, 94.63, 87.92, 87.68), "2x2": (89.88, 95.38, 91.84, 91.79),
                             "3x3": PAPER_ALL, "4x4": (89.68, 95.60, 94.03, 93.81)},
               "table_viii": {"Ours (Only-Syn)": (96.71, 96.70, 93.20, 93.11)},
               "table_ix": {"Ours (Only-Syn)": (92.01, 96.90, 85.88, 92.66)},
               "table_x": {"Ours (Only-Syn)": (0.19, 2.02, 0.19, 1.84)}}),
    # finetune: all, then one epoch on the classical test models
    "finetune": Family(
        "finetune", flags={"finetune": True},
        rows=lambda p: _compared(Row("Ours (Fine-tune)", "Ours (Fine-tune)", "finetune")),
        paper={"table_viii": {"Ours (Fine-tune)": (99.88, 99.89, 94.02, 93.97)},
               "table_ix": {"Ours (Fine-tune)": (99.21, 99.93, 85.62, 92.55)},
               "table_x": {"Ours (Fine-tune)": (0.45, 0.84, 0.18, 1.88)}}),
    # the controls, no paper row: the input spectrum itself, and the network left at initialisation
    "reference": Family("reference", flags={"untrained": True, "backbone": "none"},
                        rows=lambda p: _compared(Row("Training-free reference", "", "reference"))),
    "random": Family("random", flags={"untrained": True},
                     rows=lambda p: _compared(Row("Random-init extractor", "", "random"))),
}
FINGERPRINTER_PATTERN = "|".join(f.pattern for f in FAMILIES.values())   # what embed / evaluate / tsne take
PATTERN = "|".join(f.pattern for key, f in FAMILIES.items() if key != "baseline")   # the extractor variants
BASELINE_LABELS = FAMILIES["baseline"].labels
_PATTERN = re.compile(PATTERN)


def baseline_variant(method: str) -> str:
    """The embeddings / evaluation name of a trained baseline."""
    return f"{BASELINE_PREFIX}{method}"


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
    return Variant(name, tuple(a.id for a in chosen.archs), tuple(chosen.seeds), tuple(chosen.pools), **fam.flags)


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


def rows(table: str, preset: Preset) -> list[Row]:
    """The rows of a table (or figure) under a preset, family by family; each paper label is looked
    up (`paper_numbers`), so one the paper lacks raises here."""
    out = [row for f in FAMILIES.values() for row in f.rows(preset).get(table, ())]
    for row in out:
        paper_numbers(table, row.paper)
    return out


def paper_rows(table: str) -> dict[str, tuple]:
    """The paper's rows of a table (or figure), {paper row label: its numbers}, in registry order."""
    return {label: numbers for f in FAMILIES.values() for label, numbers in f.paper.get(table, {}).items()}


def paper_numbers(table: str, paper_label: str | None):
    """The paper's numbers of `table`'s row `paper_label`; None where the label is None or "" (a row
    declared to have no paper counterpart: a control, a seed count the paper did not run). Any other
    label must be one of the paper's rows: a ValueError names the table, it and the known ones, so a
    typo never gives a row silently blank paper columns."""
    if not paper_label:
        return None
    known = paper_rows(table)
    if paper_label not in known:
        raise ValueError(f"{table}: no paper row {paper_label!r}; the paper's rows are {list(known)} "
                         f"(give an empty paper label for a row without one)")
    return known[paper_label]
