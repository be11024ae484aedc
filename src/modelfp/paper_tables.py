"""The paper's attribution tables, and the figures drawn from evaluations, as one registry.

An entry of `TABLES` (a `Table`) holds all the workflow needs to write one table: its title, the
metrics of its columns and its rows for a preset. A row (`Row`) is our label, the label of the
paper's row it stands beside and the variant (or baseline_<method>) whose evaluation it reads, in
which view. `FIGURES` lists the rows of the figures that read evaluations (Figure 8's points,
Figure 16's curves) alike. A table lists its rows in the order it prints them, and names variants
as the config does (modelfp.variants: "all", "all_ablation" - All at the ablations' budget, ...).

The paper's numbers are data: paper_numbers.yaml beside this module, read by `paper_rows`. Every
paper label a row gives is looked up strictly (`paper_numbers`), so the workflow stops at start-up
on a label the paper lacks instead of writing blank paper columns. Adding a table is one entry here
and its numbers in the data file; a new baseline gets its rows in Tables VIII-X from its registry
entry (modelfp.baselines.BASELINES) once the config lists it.

Light to import (no torch, numpy or yaml until the numbers are read): the workflow reads it when
the Snakefile is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Callable, NamedTuple

from .baselines import BASELINES, baseline_variant

PAPER_NUMBERS = "paper_numbers.yaml"     # package data beside this module


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


# Tables IV-VII score every row on these, over all test models
ABLATION_METRICS = ("verification_acc", "verification_auc", "identification_acc", "identification_f1")


@dataclass(frozen=True)
class Table:
    """An attribution table. An ablation table (Tables IV-VII) gives each row its `metrics` over
    all test models beside its paper row; a comparison table (Tables VIII-X) lists every method
    the paper compares, on its two `metrics`, each on the classical and the emerging test models
    (modelfp.tables.ablation_table, comparison_table)."""
    title: str
    rows: Callable[[Preset], list[Row]]
    metrics: tuple[str, ...] = ABLATION_METRICS
    comparison: bool = False
    noise: tuple[str, ...] = ()    # columns shown beside the metrics, without paper numbers
    digits: int = 2                # decimals of our numbers


POOL_LABELS = {"celeba": "CelebA", "lsun": "LSUN"}     # Table VI: the paper's pools, by our pool name


def _options(p: Preset) -> list[Row]:
    """Table IV: one synthesis option frozen at a time, then All at the ablations' budget."""
    return [Row(f"w/o {k}", f"w/o {k}", f"wo_{k}") for k in "KLSUAN"] + [Row("All", "All", "all_ablation")]


def _seed_counts(p: Preset) -> list[Row]:
    """Table V: a row per seed count; the zoo's own count is every seed, the paper's All (its 20);
    a count the paper ran has its paper row."""
    paper = paper_rows("table_v")
    return [Row(f"{n} (all)", "20", f"seeds_{n}") if n == p.seeds else
            Row(str(n), str(n) if str(n) in paper else "", f"seeds_{n}") for n in p.seed_counts]


def _pools(p: Preset) -> list[Row]:
    """Table VI: each synthesis pool alone, then all of them (All at the ablations' budget)."""
    return ([Row(q, POOL_LABELS.get(q.lower(), ""), f"pool_{q}") for q in p.pools]
            + [Row(" + ".join(p.pools), "CelebA + LSUN", "all_ablation")])


def _windows(p: Preset) -> list[Row]:
    """Table VII: `all` in n x n windows; the paper's are n = 1 (no sliding window) to 4."""
    paper = paper_rows("table_vii")
    labels = ["w/o slide window" if n == 1 else f"{n}x{n}" for n in p.windows]
    return [Row(label, label if label in paper else "", "all", f"w{n}") for n, label in zip(p.windows, labels)]


def _methods(p: Preset) -> list[Row]:
    """Tables VIII-X: the configured baselines (their registry's labels, the paper's rows where it
    compares them), Only-Syn, Fine-tune, then the two controls the paper has no row for."""
    baselines = [(m, BASELINES[m]) for m in p.baselines]
    return ([Row(b.label, b.label if b.in_paper else "", baseline_variant(m)) for m, b in baselines]
            + [Row("Ours (Only-Syn)", "Ours (Only-Syn)", "all"), Row("Ours (Fine-tune)", "Ours (Fine-tune)", "finetune"),
               Row("Training-free reference", "", "reference"), Row("Random-init extractor", "", "random")])


TABLES = {
    "table_iv": Table("Table IV: ablation on the architecture options of the synthetic models", _options),
    "table_v": Table("Table V: ablation on the number of seeds per synthetic architecture", _seed_counts),
    "table_vi": Table("Table VI: ablation on the real image pool of the fingerprinted images", _pools),
    "table_vii": Table("Table VII: ablation on the sliding window", _windows),
    # Table VIII shows its noise beside the accuracies: the spread over gallery draws and the binomial
    # standard error (modelfp.evaluate.group_row); the paired tests are results/tables/table_viii_paired.csv
    "table_viii": Table("Table VIII: model identification, classical and emerging test models", _methods,
                        ("identification_acc", "identification_f1"), comparison=True,
                        noise=("identification_acc_sd", "identification_acc_se")),
    "table_ix": Table("Table IX: model verification, classical and emerging test models", _methods,
                      ("verification_acc", "verification_auc"), comparison=True),
    "table_x": Table("Table X: silhouette score (SS, higher is better) and Davies-Bouldin index (DBI, lower is "
                     "better)", _methods, ("silhouette", "dbi"), comparison=True, digits=3),
}

# The figures that read evaluations: Figure 8's points (the zoo up to k blocks; the paper: synthesis
# GPU hours) and Figure 16's curves (plain and immunized under JPEG and crop)
FIGURES: dict[str, Callable[[Preset], list[Row]]] = {
    "fig_8": lambda p: [Row(str(k), str(k), f"blocks_{k}") for k in (1, 2, 3)],
    "fig_16": lambda p: [Row("plain", "", "all_ablation"), Row("immunized", "", "immunized")],
}


def rows(name: str, preset: Preset) -> list[Row]:
    """The rows of a table (or figure) under a preset; each paper label is looked up
    (`paper_numbers`), so one the paper lacks raises here."""
    if name in TABLES:
        out = TABLES[name].rows(preset)
    elif name in FIGURES:
        out = FIGURES[name](preset)
    else:
        raise ValueError(f"no table or figure {name!r}; known: {[*TABLES, *FIGURES]}")
    for row in out:
        paper_numbers(name, row.paper)
    return out


@cache
def _paper() -> dict[str, dict[str, tuple]]:
    """paper_numbers.yaml as {table: {paper row label: its numbers}}, read once."""
    import yaml

    text = resources.files(__package__).joinpath(PAPER_NUMBERS).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml's parser: 2 ms instead of 16
    return {table: {str(label): tuple(numbers) for label, numbers in numbers_by_label.items()}
            for table, numbers_by_label in yaml.load(text, Loader=loader).items()}


def paper_rows(table: str) -> dict[str, tuple]:
    """The paper's rows of a table (or figure), {paper row label: its numbers}, in the paper's
    order ({} for one without numbers, such as Figure 16)."""
    return dict(_paper().get(table, {}))


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
