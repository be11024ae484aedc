"""The paper's tables as data: our numbers beside the paper's, written as csv and Markdown.

Table II: FFD between the real (test) models and each synthetic subset. Table XI: how FFD depends
on the number N of images per model, as the correlation of the eight Table II values at each N
with those at the largest N.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import scipy.stats

from .archspace import SUBSETS, parse
from .ffd import ffd

# Paper values, Table II (FFD) and Table XI (Pearson correlation with N=500, %).
PAPER_TABLE_II = {"All": 3.30, "w/o K": 3.57, "w/o L": 3.41, "w/o S": 3.51, "w/o U": 9.81,
                  "w/o A": 4.46, "w/o N": 3.02, "w/o seed": 3.39}
PAPER_TABLE_XI = {50: 99.97, 100: 99.98, 200: 99.99, 300: 100.00, 400: 100.00, 500: 100.00}


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
    rows = []
    for name, mask in ffd_conditions(arch_ids, seeds).items():
        rows.append({"models": name, "n_synthetic": int(mask.sum()),
                     "ffd": round(_ffd_or_nan(real_reps, syn_reps[mask], log), 4),
                     "paper_ffd": PAPER_TABLE_II[name]})
    return rows


def _ffd_or_nan(real_reps, syn_reps, log):
    """FFD, or NaN where a small zoo (smoke preset) has no model of a subset."""
    return ffd(real_reps, syn_reps, log=log) if len(syn_reps) else float("nan")


def table_xi(real_by_n, syn_by_n, ns, arch_ids, seeds, log=None) -> list[dict]:
    """real_by_n (len(ns), n_r, d), syn_by_n (len(ns), n_s, d): per N, the correlation of the
    eight Table II FFDs with those at the largest N (Pearson, as the table's header; Spearman too,
    since the text speaks of a rank correlation)."""
    masks = ffd_conditions(arch_ids, seeds)
    values = np.array([[_ffd_or_nan(r, s[m], log) for m in masks.values()]
                       for r, s in zip(real_by_n, syn_by_n)])
    ref = values[int(np.argmax(ns))]
    usable = np.isfinite(ref)                     # conditions with models in this zoo
    paper_ns = sorted(PAPER_TABLE_XI)
    rows = []
    for i, n in enumerate(ns):
        a, b = values[i][usable], ref[usable]
        rows.append({"n_images": int(n), "conditions": int(usable.sum()),
                     "pearson_percent": round(100 * scipy.stats.pearsonr(a, b)[0], 2),
                     "spearman_percent": round(100 * scipy.stats.spearmanr(a, b)[0], 2),
                     "paper_n": paper_ns[i] if len(ns) == len(paper_ns) else "",
                     "paper_pearson_percent": PAPER_TABLE_XI[paper_ns[i]] if len(ns) == len(paper_ns) else "",
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

# (verification acc, AUC, identification acc, F1) of the paper's ablation tables, by row label
PAPER_ABLATIONS = {
    "table_iv": {"w/o K": (87.04, 94.57, 92.69, 92.51), "w/o L": (87.54, 95.08, 90.04, 89.86),
                 "w/o S": (89.29, 95.56, 93.91, 93.75), "w/o U": (87.68, 94.18, 88.96, 88.64),
                 "w/o A": (84.75, 92.19, 87.03, 86.80), "w/o N": (87.63, 94.80, 93.47, 93.40),
                 "All": (89.73, 95.69, 94.03, 93.84)},
    "table_v": {"1": (89.87, 96.11, 91.04, 90.89), "10": (88.00, 94.70, 93.03, 92.87),
                "15": (88.87, 95.37, 93.96, 93.78), "20": (89.73, 95.69, 94.03, 93.84)},
    "table_vi": {"CelebA": (87.50, 94.60, 93.90, 93.78), "LSUN": (89.72, 95.53, 93.62, 93.48),
                 "CelebA + LSUN": (89.73, 95.69, 94.03, 93.84)},
    "table_vii": {"w/o slide window": (88.42, 94.63, 87.92, 87.68), "2x2": (89.88, 95.38, 91.84, 91.79),
                  "3x3": (89.73, 95.69, 94.03, 93.84), "4x4": (89.68, 95.60, 94.03, 93.81)},
}
ABLATION_METRICS = ("verification_acc", "verification_auc", "identification_acc", "identification_f1")

# Tables VIII-X: per method, (classical, emerging) pairs of the table's two metrics
PAPER_COMPARISON = {
    "table_viii": ("identification_acc", "identification_f1", {
        "Marra et al.": (61.00, 55.01, 26.72, 22.33), "Yu et al.": (96.28, 96.27, 31.93, 30.67),
        "DNA-Det": (98.55, 98.55, 47.41, 46.60), "RepMix": (94.34, 94.29, 26.63, 25.35),
        "Abady et al.": (97.12, 97.09, 48.23, 48.15), "POSE": (98.93, 98.93, 49.80, 48.87),
        "Ours (Only-Syn)": (96.71, 96.70, 93.20, 93.11), "Ours (Fine-tune)": (99.88, 99.89, 94.02, 93.97)}),
    "table_ix": ("verification_acc", "verification_auc", {
        "Marra et al.": (66.10, 68.99, 59.37, 59.46), "Yu et al.": (96.80, 99.27, 63.84, 68.97),
        "DNA-Det": (99.31, 99.94, 69.64, 77.54), "RepMix": (99.15, 97.44, 61.09, 57.92),
        "Abady et al.": (95.10, 96.98, 64.52, 68.98), "POSE": (98.76, 99.91, 66.94, 72.85),
        "Ours (Only-Syn)": (92.01, 96.90, 85.88, 92.66), "Ours (Fine-tune)": (99.21, 99.93, 85.62, 92.55)}),
    "table_x": ("silhouette", "dbi", {
        "Marra et al.": (-0.07, 23.18, -0.21, 34.17), "Yu et al.": (0.36, 1.21, -0.05, 12.73),
        "DNA-Det": (0.40, 1.08, 0.01, 4.53), "RepMix": (0.28, 2.59, -0.10, 8.48),
        "Abady et al.": (0.38, 1.18, -0.02, 10.96), "POSE": (0.44, 0.90, -0.02, 3.64),
        "Ours (Only-Syn)": (0.19, 2.02, 0.19, 1.84), "Ours (Fine-tune)": (0.45, 0.84, 0.18, 1.88)}),
}
TITLES = {
    "table_iv": "Table IV: ablation on the architecture options of the synthetic models",
    "table_v": "Table V: ablation on the number of seeds per synthetic architecture",
    "table_vi": "Table VI: ablation on the real image pool of the fingerprinted images",
    "table_vii": "Table VII: ablation on the sliding window",
    "table_viii": "Table VIII: model identification, classical and emerging test models",
    "table_ix": "Table IX: model verification, classical and emerging test models",
    "table_x": "Table X: silhouette score (SS, higher is better) and Davies-Bouldin index (DBI, lower is better)",
}


def read_evaluation(path) -> dict[str, dict]:
    """An evaluation csv (one row per group) as {group: {metric: float}}."""
    with open(path, newline="") as f:
        return {row["group"]: {k: float(v) if k != "group" else v for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)}


def _r(value, digits=2):
    return round(float(value), digits) if value is not None and np.isfinite(value) else ""


def paper_numbers(table: str, paper_label: str | None):
    """The paper's numbers of `table`'s row `paper_label`; None where the label is None or "" (a row
    declared to have no paper counterpart: a control, a seed count the paper did not run). Any other
    label must be one of the paper's rows: a ValueError names it and the known ones, so a typo never
    gives a row silently blank paper columns."""
    if not paper_label:
        return None
    known = PAPER_ABLATIONS[table] if table in PAPER_ABLATIONS else PAPER_COMPARISON[table][2]
    if paper_label not in known:
        raise ValueError(f"{table}: no paper row {paper_label!r}; the paper's rows are {list(known)} "
                         f"(give an empty paper label for a row without one)")
    return known[paper_label]


def ablation_table(table: str, rows: list[tuple[str, str | None, dict | None]]) -> list[dict]:
    """Tables IV-VII: rows (label, paper label, evaluation) -> our four metrics on all test models
    beside the paper's row of `paper label` (None or "": no paper counterpart; `paper_numbers`)."""
    out = []
    for label, paper_label, ev in rows:
        ours = (ev or {}).get("all", {})
        paper = paper_numbers(table, paper_label) or (None,) * 4
        row = {"row": label, "paper_row": paper_label or ""}
        for metric, p in zip(ABLATION_METRICS, paper):
            row[metric] = _r(ours.get(metric))
            row[f"paper_{metric}"] = "" if p is None else p
        out.append(row)
    return out


def comparison_table(table: str, rows: list[tuple[str, str | None, dict | None]]) -> list[dict]:
    """Tables VIII-X: every method of the paper (its numbers; ours where a row names it as its paper
    label), then our rows without a paper label (the controls), under their own labels.
    rows: (label, paper label or None/"", evaluation or None); an unknown paper label raises
    (`paper_numbers`)."""
    m1, m2, paper = PAPER_COMPARISON[table]
    digits = 2 if table != "table_x" else 3
    ours = {}
    for label, paper_label, ev in rows:
        paper_numbers(table, paper_label)
        ours[paper_label or label] = ev
    out = []
    for method in list(paper) + [m for m in ours if m not in paper]:
        ev = ours.get(method) or {}
        row = {"method": method}
        for g in ("classical", "emerging"):
            for m in (m1, m2):
                row[f"{g} {m}"] = _r(ev.get(g, {}).get(m), digits)
        p = paper.get(method)
        for i, (g, m) in enumerate([(g, m) for g in ("classical", "emerging") for m in (m1, m2)]):
            row[f"paper {g} {m}"] = "" if p is None else p[i]
        out.append(row)
    return out
