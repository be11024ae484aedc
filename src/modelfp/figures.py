"""Figures: models' spectra (paper Figure 10), synthesis depth (Figure 8), robustness (Figure 16)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def closest_synthetic(real_log: np.ndarray, syn_log: np.ndarray) -> np.ndarray:
    """Index of the closest synthetic model for each real model, by Euclidean distance of their
    mean log10 reduced spectra (the FFD representation)."""
    d = ((real_log[:, None, :] - syn_log[None, :, :]) ** 2).sum(-1)
    return d.argmin(1)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, **savefig_kwargs) -> None:
    """Write a matplotlib figure atomically: to a temporary name in the same folder, then os.replace,
    so a killed job never leaves a half-written figure under the final name. The format is the
    path's suffix (png, pdf), passed as format= since the temporary name ends otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower(), **savefig_kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def plot_closest_spectra(real_names, real_spec2d, real_log, syn_names, syn_spec2d, syn_log,
                         png, pdf, per_row: int = 3):
    """Figure 10: each test model's mean 2D residual spectrum beside its closest synthetic model's."""
    plt = _pyplot()

    closest = closest_synthetic(real_log, syn_log)
    n = len(real_names)
    rows = -(-n // per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(2.1 * 2 * per_row, 2.3 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (name, k) in enumerate(zip(real_names, closest)):
        r, c = divmod(i, per_row)
        pair = (real_spec2d[i], syn_spec2d[k])
        lo, hi = min(p.min() for p in pair), max(p.max() for p in pair)   # one colour scale per pair
        for j, (img, title) in enumerate(zip(pair, (name, syn_names[k]))):
            ax = axes[r, 2 * c + j]
            ax.imshow(img, cmap="viridis", vmin=lo, vmax=hi)
            ax.set_title(title if j == 0 else f"closest: {title}", fontsize=6)
    fig.suptitle("Mean residual spectra: test models (left) and their closest synthetic models", fontsize=9)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)
    return closest


def plot_block_count(rows: list[dict], png, pdf) -> None:
    """Figure 8: synthesis time (rows' synthesis_hours) and verification accuracy per max block count."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    ks = [r["max_blocks"] for r in rows]
    a.bar(ks, [r["synthesis_hours"] for r in rows])
    a.set(xlabel="maximum block count", ylabel="synthesis time (CPU/GPU hours)", xticks=ks)
    b.plot(ks, [r["verification_acc"] for r in rows], "o-")
    b.set(xlabel="maximum block count", ylabel="verification accuracy (%)", xticks=ks)
    fig.suptitle("Figure 8: synthesis cost and attribution versus synthetic model depth")
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)


def plot_robustness(rows: list[dict], png, pdf) -> None:
    """Figure 16: identification accuracy versus JPEG quality and crop scale, plain and immunized
    (rows: extractor, perturbation, level, identification_acc)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, kind, xlabel in zip(axes, ("jpeg", "crop"), ("JPEG quality", "crop scale")):
        for name, colour in (("plain", "tab:blue"), ("immunized", "tab:red")):
            pts = sorted((r["level"], r["identification_acc"]) for r in rows
                         if r["perturbation"] == kind and r["extractor"] == name)
            if pts:
                ax.plot(*zip(*pts), "o-", color=colour, label=name)
        ax.set(xlabel=xlabel, ylabel="identification accuracy (%)")
        ax.invert_xaxis()
        if ax.get_legend_handles_labels()[0]:       # a panel without rows (e.g. no crop levels) has no legend
            ax.legend()
    fig.suptitle("Figure 16: robustness to JPEG compression and crop resizing")
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)
