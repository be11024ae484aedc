"""What a re-saved image is answered with (issue 25).

A JPEG, grayscale or lossy WebP query is compared with the gallery's copies re-saved the same way
(`identify`), and such an image with the other image of a pair re-saved the same way (`verify`): like
meets like. But every model's copies share what the re-save did to them, so they score higher
against each other than clean images do (on the demo's validation set the median cosine of two
different models' JPEG 95 copies is 0.32, of their clean images -0.03), and the clean images'
thresholds then name most absent models' re-saved images and call most pairs of two models' re-saved
images "same model". So each re-save (`perturb.MATCHED`) gets thresholds of its own, fitted as the
clean ones are, on the validation generators' images re-saved so, which the rule `resaved_gallery`
embeds by the tool's own code (a gallery: `Attributor.add` keeps every image's copies):

- verification: the best threshold on the verification protocol's same- and different-model pairs
  (`evaluate.verification`, the pairs drawn as for the clean threshold);
- open set: the global threshold of the leave-one-model-out protocol and the per-model constants
  around it (`openset.fit_deployable`), recorded beside the clean rule's scores on the same draws.

The calibrate step stores them in the extractor file (`extractor.set_threshold(resaved=...)`); the
tool uses them for a query compared with re-saved copies (`Attributor.open_set_rule`,
`Attributor.threshold`). Never fitted on the test bed.
"""

from __future__ import annotations

import numpy as np

from . import openset
from .evaluate import GALLERY_SIZE, verification


def copies(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{condition: (fingerprints, labels)} of a `resaved-gallery` file: every image's copy re-saved
    in each `perturb.MATCHED` condition that at least two of its models hold for all their images."""
    from .attributor import read_gallery
    from .perturb import MATCHED
    gallery = read_gallery(path)
    out = {}
    for condition in MATCHED:
        parts = [(gallery.models[m]["matched"][condition]["prints"].float().numpy(), m) for m in gallery.models
                 if condition in gallery.copies(m)]
        if len(parts) >= 2:
            out[condition] = (np.concatenate([p for p, _ in parts]),
                              np.concatenate([[m] * len(p) for p, m in parts]))
    return out


def fit(copies_by_condition: dict, clean_rule: openset.OpenSetRule, clean_verification: float,
        gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1, n_same: int = 1000, n_diff: int = 1000,
        source: str = "", neighbours: int = 0) -> dict:
    """Per condition, the thresholds a query re-saved so is answered with (module docstring):
    {"verification_threshold", "verification_accuracy" (balanced, in-sample) and the clean
    threshold's accuracy on the same pairs ("verification_accuracy_clean"), "openset": the fitted
    rule (`OpenSetRule` constants with its global "threshold", the protocol, its in-sample known
    named right, absent called unknown and balanced accuracy) with "clean_rule", `clean_rule`'s
    scores on the same draws (what it replaces)}; every open-set score by the model's `neighbours`
    nearest copies (`evaluate.gallery_scores`), as the clean rule's."""
    out = {}
    for condition, (emb, labels) in copies_by_condition.items():
        pairs = verification(emb, labels, n_same, n_diff, seed)
        clean_right = (pairs["scores"] >= clean_verification) == pairs["same"]
        fitted = openset.fit_deployable(emb, labels, gallery_size, seed, draws, neighbours)
        before = openset.outcomes(fitted.scored, clean_rule)          # the same draws
        out[condition] = {
            "verification_threshold": pairs["threshold"], "verification_accuracy": pairs["accuracy"],
            "verification_accuracy_clean": float(clean_right.mean()), "pairs": pairs["n_pairs"],
            "openset": {"threshold": fitted.rule.threshold, **fitted.record(source),
                        "known_named": fitted.fitted["known_named"], "absent_unknown": fitted.fitted["absent_unknown"],
                        "clean_rule": {k: before[k] for k in ("known_named", "absent_unknown", "balanced")}}}
    return out


def describe(fitted: dict) -> list[str]:
    """One line per condition, for the calibrate step's log."""
    lines = []
    for condition, r in fitted.items():
        o = r["openset"]
        lines.append(f"{condition:7s} verification threshold {r['verification_threshold']:.4f}: "
                     f"{100 * r['verification_accuracy']:.1f} % of {r['pairs']} pairs right (the clean threshold: "
                     f"{100 * r['verification_accuracy_clean']:.1f} %); open set per-model (z {o['z']:g}, prior "
                     f"{o['prior']:g}, margin {o['margin']:g}; global {o['threshold']:.4f}): known named right "
                     f"{100 * o['known_named']:.1f} %, absent unknown {100 * o['absent_unknown']:.1f} % (the clean "
                     f"rule: {100 * o['clean_rule']['known_named']:.1f} %, {100 * o['clean_rule']['absent_unknown']:.1f} %)")
    return lines
