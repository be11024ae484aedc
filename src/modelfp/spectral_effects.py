"""Spectral effects of the architecture options (paper Appendix A, Figures 11, 13, 14), on our zoo.

The paper trains ProGAN/SNGAN variants; we have the synthetic zoo, where each option can be varied
with every other option held fixed. So the claims are tested on *matched pairs*: two architectures
that differ only in the option under test, spectra averaged over seeds.

Claims (Appendix A1, A3, A4):
- nearest and bilinear upsampling attenuate high frequencies compared with transposed convolution;
- ReLU leaves more high-frequency energy than sigmoid and tanh;
- models with the same normalization differ less from each other (seeds) than from models with
  another normalization.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import replace

import numpy as np

from .archspace import parse
from .figures import save_figure
from .spectrum import high_frequency_ratio

HF_CUTOFF = 0.5   # high frequency: above half the Nyquist frequency
OPTION_FIELDS = {"upsampling": "U", "activation": "A", "normalization": "N"}
FIGURES = ("upsampling", "activation", "normalization")   # the options of Figures 11, 13, 14, in order
HF_CLAIMS = [  # (option, value expected lower in high-frequency energy, value expected higher)
    ("upsampling", "nearest", "transposed"),
    ("upsampling", "bilinear", "transposed"),
    ("activation", "sigmoid", "relu"),
    ("activation", "tanh", "relu"),
]


def _per_arch(values: np.ndarray, arch_ids: list[str]) -> dict:
    """Mean over seeds of per-model values, keyed by architecture."""
    groups = defaultdict(list)
    for v, a in zip(values, arch_ids):
        groups[parse(a)].append(v)
    return {a: np.mean(v, axis=0) for a, v in groups.items()}


def hf_claims(power: np.ndarray, arch_ids: list[str]) -> list[dict]:
    """One row per claim: matched pairs, share of pairs that agree, mean ratios, verdict."""
    import torch
    hf = high_frequency_ratio(torch.as_tensor(power), HF_CUTOFF).numpy()
    by_arch = _per_arch(hf, arch_ids)
    rows = []
    for option, low, high in HF_CLAIMS:
        pairs = [(by_arch[a], by_arch[b]) for a in by_arch if getattr(a, option) == low
                 for b in [replace(a, **{option: high})] if b in by_arch]
        lo = np.array([p[0] for p in pairs])
        hi = np.array([p[1] for p in pairs])
        share = float(np.mean(lo < hi)) if pairs else float("nan")
        rows.append({
            "claim": f"{low} has less high-frequency energy than {high}",
            "option": option, "lower": low, "higher": high, "pairs": len(pairs),
            "share_agreeing": round(share, 4),
            "hf_lower": round(float(lo.mean()), 6) if pairs else float("nan"),
            "hf_higher": round(float(hi.mean()), 6) if pairs else float("nan"),
            "agrees": bool(share > 0.5) if pairs else None,
        })
    return rows


def normalization_consistency(log_spectra: np.ndarray, arch_ids: list[str]) -> dict:
    """Appendix A4: mean distance between seeds of one architecture vs between architectures that
    differ only in normalization (seed-averaged). Needs >= 2 seeds per architecture."""
    archs = [parse(a) for a in arch_ids]
    seeds = defaultdict(list)
    for spec, a in zip(log_spectra, archs):
        seeds[a].append(spec)
    within = [np.linalg.norm(x - y) for v in seeds.values() for x, y in itertools.combinations(v, 2)]
    means = {a: np.mean(v, axis=0) for a, v in seeds.items()}
    across = [np.linalg.norm(means[a] - means[b]) for a, b in itertools.combinations(means, 2)
              if replace(a, normalization=b.normalization) == b]
    w = float(np.mean(within)) if within else float("nan")
    x = float(np.mean(across)) if across else float("nan")
    return {"claim": "same normalization (other seeds) is closer than another normalization",
            "option": "normalization", "pairs_within": len(within), "pairs_across": len(across),
            "distance_within": round(w, 6), "distance_across": round(x, 6),
            "agrees": bool(w < x) if within and across else None}


def plot_option(log_spectra: np.ndarray, arch_ids: list[str], option: str, png, pdf):
    """Reduced spectra grouped by one option: mean log10 power per value with the 25-75% band,
    saved as png and pdf."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [getattr(parse(a), option) for a in arch_ids]
    freq = np.linspace(0, 1, log_spectra.shape[1] - 1)   # fraction of Nyquist; last bin is beyond
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for value in dict.fromkeys(sorted(values)):
        group = log_spectra[[v == value for v in values]][:, :-1]
        mean = group.mean(0)
        lo, hi = np.percentile(group, [25, 75], axis=0)
        ax.plot(freq, mean, label=f"{OPTION_FIELDS[option]}={value} ({len(group)})")
        ax.fill_between(freq, lo, hi, alpha=0.2)
    ax.set_xlabel("radial frequency (fraction of Nyquist)")
    ax.set_ylabel("log10 power of the noise residual")
    ax.set_title(f"Spectral effects of {option} (synthetic zoo)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)
