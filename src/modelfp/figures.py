"""Figures that compare models' spectra (paper Figure 10)."""

from __future__ import annotations

import numpy as np


def closest_synthetic(real_log: np.ndarray, syn_log: np.ndarray) -> np.ndarray:
    """Index of the closest synthetic model for each real model, by Euclidean distance of their
    mean log10 reduced spectra (the FFD representation)."""
    d = ((real_log[:, None, :] - syn_log[None, :, :]) ** 2).sum(-1)
    return d.argmin(1)


def plot_closest_spectra(real_names, real_spec2d, real_log, syn_names, syn_spec2d, syn_log,
                         path_stem: str, per_row: int = 3):
    """Figure 10: each test model's mean 2D residual spectrum beside its closest synthetic model's."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    for ext in ("png", "pdf"):
        fig.savefig(f"{path_stem}.{ext}", dpi=150)
    plt.close(fig)
    return closest
