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
from .variants import paper_numbers, paper_rows

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

# The paper's numbers of each row live with the variant it reads (modelfp.variants.FAMILIES).
# Tables IV-VII score every row on these (verification acc, AUC, identification acc, F1)
VERIFIER = "verifier_"     # evaluate --verifier: the columns of a method's own pair verifier
ABLATION_METRICS = ("verification_acc", "verification_auc", "identification_acc", "identification_f1")
# Tables VIII-X: the table's two metrics, each on the classical and the emerging test models
COMPARISON_METRICS = {"table_viii": ("identification_acc", "identification_f1"),
                      "table_ix": ("verification_acc", "verification_auc"),
                      "table_x": ("silhouette", "dbi")}
# Table VIII shows its noise beside the accuracies: the spread over gallery draws and the binomial
# standard error (modelfp.evaluate.group_row); the paired tests are results/tables/table_viii_paired.csv
NOISE_METRICS = {"table_viii": ("identification_acc_sd", "identification_acc_se")}
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
    label), then our rows without a paper label (the controls), under their own labels. A method
    whose evaluation also scored its own pair verifier (`evaluate --verifier`: columns
    verifier_<metric>, Abady et al.'s siamese network) gets a second row, "<method> (its
    verifier)", in a table of those metrics (Table IX), without paper numbers.
    rows: (label, paper label or None/"", evaluation or None); an unknown paper label raises
    (`paper_numbers`)."""
    (m1, m2), paper = COMPARISON_METRICS[table], paper_rows(table)
    digits = 2 if table != "table_x" else 3
    ours = {}
    for label, paper_label, ev in rows:
        paper_numbers(table, paper_label)
        ours[paper_label or label] = ev
    out = []
    cells = [(g, m) for g in ("classical", "emerging") for m in (m1, m2)]

    noise = [(g, m) for g in ("classical", "emerging") for m in NOISE_METRICS.get(table, ())]

    def row(method, ev, prefix="", p=None):
        return {"method": method, **{f"{g} {m}": _r(ev.get(g, {}).get(prefix + m), digits) for g, m in cells + noise},
                **{f"paper {g} {m}": "" if p is None else p[i] for i, (g, m) in enumerate(cells)}}

    for method in list(paper) + [m for m in ours if m not in paper]:
        ev = ours.get(method) or {}
        out.append(row(method, ev, p=paper.get(method)))
        if any(VERIFIER + m in ev.get(g, {}) for g, m in cells):
            out.append(row(f"{method} (its verifier)", ev, VERIFIER))
    return out
