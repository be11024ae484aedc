"""The paper's tables as data: our numbers beside the paper's, written as csv and Markdown.

Table II: FFD between the real (test) models and each synthetic subset. Table XI: how FFD depends
on the number N of images per model, as the correlation of the eight Table II values at each N
with those at the largest N. Tables IV-X: evaluations of extractors and baselines, laid out as
their entries of modelfp.paper_tables say. The paper's numbers of every table are read from
paper_numbers.yaml (`paper_tables.paper_rows`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .archspace import SUBSETS, parse
from .paper_tables import ABLATION_METRICS, TABLES, paper_numbers, paper_rows


def ffd_conditions(arch_ids: list[str], seeds: list[int]) -> dict[str, np.ndarray]:
    """Table II's synthetic sets as boolean masks over the zoo's models (one per model)."""
    archs = [parse(a) for a in arch_ids]
    masks = {"All": np.ones(len(archs), bool)}
    for key, label in (("wo_K", "w/o K"), ("wo_L", "w/o L"), ("wo_S", "w/o S"),
                       ("wo_U", "w/o U"), ("wo_A", "w/o A"), ("wo_N", "w/o N")):
        masks[label] = np.array([SUBSETS[key](a) for a in archs])
    masks["w/o seed"] = np.asarray(seeds) == min(seeds)     # one seed per architecture
    return masks


def table_ii(real_reps, syn_reps, arch_ids, seeds, log=None) -> list[dict]:
    """One row per condition: FFD (Eq. 10) of real vs that synthetic subset, and the paper's."""
    paper = paper_rows("table_ii")
    rows = []
    for name, mask in ffd_conditions(arch_ids, seeds).items():
        rows.append({"models": name, "n_synthetic": int(mask.sum()),
                     "ffd": round(_ffd_or_nan(real_reps, syn_reps[mask], log), 4),
                     "paper_ffd": paper[name][0]})
    return rows


def _ffd_or_nan(real_reps, syn_reps, log):
    """FFD, or NaN where a small zoo (smoke preset) has no model of a subset."""
    from .ffd import ffd          # scipy (about 1 s): not imported by the many jobs that only write tables
    return ffd(real_reps, syn_reps, log=log) if len(syn_reps) else float("nan")


def table_xi(real_by_n, syn_by_n, ns, arch_ids, seeds, log=None) -> list[dict]:
    """real_by_n (len(ns), n_r, d), syn_by_n (len(ns), n_s, d): per N, the correlation of the
    eight Table II FFDs with those at the largest N (Pearson, as the table's header; Spearman too,
    since the text speaks of a rank correlation)."""
    import scipy.stats

    masks = ffd_conditions(arch_ids, seeds)
    values = np.array([[_ffd_or_nan(r, s[m], log) for m in masks.values()]
                       for r, s in zip(real_by_n, syn_by_n)])
    ref = values[int(np.argmax(ns))]
    usable = np.isfinite(ref)                     # conditions with models in this zoo
    paper = {int(n): percent for n, (percent,) in paper_rows("table_xi").items()}
    paper_ns = sorted(paper)
    rows = []
    for i, n in enumerate(ns):
        a, b = values[i][usable], ref[usable]
        rows.append({"n_images": int(n), "conditions": int(usable.sum()),
                     "pearson_percent": round(100 * scipy.stats.pearsonr(a, b)[0], 2),
                     "spearman_percent": round(100 * scipy.stats.spearmanr(a, b)[0], 2),
                     "paper_n": paper_ns[i] if len(ns) == len(paper_ns) else "",
                     "paper_pearson_percent": paper[paper_ns[i]] if len(ns) == len(paper_ns) else "",
                     **{f"ffd {name}": round(float(v), 4) for name, v in zip(masks, values[i])}})
    return rows


def write_csv(rows: list[dict], path) -> list[str]:
    """Atomic csv of dict rows (columns: the union of their keys, in first-seen order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return fields


def write_table(rows: list[dict], csv_path, md_path, title: str, note: str = "") -> None:
    """A table as csv and as markdown (title, note, rows), each written atomically."""
    fields = write_csv(rows, csv_path)
    lines = [f"# {title}", ""] + ([note, ""] if note else [])
    lines += ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in fields) + " |" for row in rows]
    md_path = Path(md_path)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = md_path.with_name(md_path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, md_path)


# ---------------------------------------------------------------------------------------------
# Attribution tables (Section IV-B and IV-C): evaluation rows of extractors beside the paper's

# Each table's title, metrics and rows are its entry of modelfp.paper_tables.TABLES, the paper's
# numbers paper_numbers.yaml; these views of the registry are what the attribution-table verb reads
# (and ABLATION_METRICS, imported above, the metrics of Tables IV-VII).
VERIFIER = "verifier_"     # evaluate --verifier: the columns of a method's own pair verifier
TITLES = {name: table.title for name, table in TABLES.items()}
COMPARISON_METRICS = {name: table.metrics for name, table in TABLES.items() if table.comparison}


def read_evaluation(path) -> dict[str, dict]:
    """An evaluation csv (one row per group) as {group: {metric: float}}."""
    with open(path, newline="") as f:
        return {row["group"]: {k: float(v) if k != "group" else v for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)}


def _r(value, digits=2):
    return round(float(value), digits) if value is not None and np.isfinite(value) else ""


def ablation_table(table: str, rows: list[tuple[str, str | None, dict | None]]) -> list[dict]:
    """Tables IV-VII: rows (label, paper label, evaluation) -> our four metrics on all test models
    beside the paper's row of `paper label` (None or "": no paper counterpart; `paper_numbers`)."""
    metrics, out = TABLES[table].metrics, []
    for label, paper_label, ev in rows:
        ours = (ev or {}).get("all", {})
        paper = paper_numbers(table, paper_label) or (None,) * len(metrics)
        row = {"row": label, "paper_row": paper_label or ""}
        for metric, p in zip(metrics, paper):
            row[metric] = _r(ours.get(metric))
            row[f"paper_{metric}"] = "" if p is None else p
        out.append(row)
    return out


def comparison_table(table: str, rows: list[tuple[str, str | None, dict | None]]) -> list[dict]:
    """Tables VIII-X: every method of the paper (its numbers; ours where a row names it as its paper
    label), then our rows without a paper label (the controls), under their own labels. A method
    whose evaluation also scored its own pair verifier (`evaluate --verifier`: columns
    verifier_<metric>, Abady et al.'s siamese network) gets a second row, "<method> (its
    verifier)", in a table of those metrics (Table IX), without paper numbers.
    rows: (label, paper label or None/"", evaluation or None); an unknown paper label raises
    (`paper_numbers`)."""
    layout, paper = TABLES[table], paper_rows(table)
    (m1, m2), digits = layout.metrics, layout.digits
    ours = {}
    for label, paper_label, ev in rows:
        paper_numbers(table, paper_label)
        ours[paper_label or label] = ev
    out = []
    cells = [(g, m) for g in ("classical", "emerging") for m in (m1, m2)]

    noise = [(g, m) for g in ("classical", "emerging") for m in layout.noise]

    def row(method, ev, prefix="", p=None):
        return {"method": method, **{f"{g} {m}": _r(ev.get(g, {}).get(prefix + m), digits) for g, m in cells + noise},
                **{f"paper {g} {m}": "" if p is None else p[i] for i, (g, m) in enumerate(cells)}}

    for method in list(paper) + [m for m in ours if m not in paper]:
        ev = ours.get(method) or {}
        out.append(row(method, ev, p=paper.get(method)))
        if any(VERIFIER + m in ev.get(g, {}) for g, m in cells):
            out.append(row(f"{method} (its verifier)", ev, VERIFIER))
    return out
