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


def write_table(rows: list[dict], stem, title: str, note: str = "") -> None:
    """results/tables/<stem>.csv and .md (atomic writes)."""
    stem = Path(stem)
    fields = write_csv(rows, stem.with_suffix(".csv"))
    lines = [f"# {title}", ""] + ([note, ""] if note else [])
    lines += ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in fields) + " |" for row in rows]
    tmp = stem.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, stem.with_suffix(".md"))
