"""Open-set answers per model: when `identify` says "unknown" (issue 25).

One global threshold on the best gallery score cannot serve models whose images spread
differently: a diffuse model's own images fall under it (named "unknown"), while a close relative
of a tight model clears it (named wrongly). The rule here gives each gallery model its own
acceptance threshold, from how its own gallery images score against it:

- a query's score against a model is the mean of its `neighbours` highest cosines with the model's
  gallery images (`evaluate.gallery_scores`; 0: the cosine with the model's fingerprint, the mean
  direction, as the paper's tables score): a model whose images spread in several directions (a
  VAE's, a diffusion model's, and most re-saved copies) is met where its images are, not only at
  their mean. The calibrate step fits the rule with `evaluation.tool_neighbours` (2, chosen on the
  validation generators: docs/tool-studies.md, "Scores from a model's nearest gallery images");
  files calibrated before it score by the fingerprint;
- the leave-one-out score of a gallery image is its score against its model made without it
  (with neighbours 0: cos(h_i, s - h_i), s the model's sum of unit fingerprints): what a new image
  of the same model would score, measured on images the gallery already holds (`loo_scores`);
- the model's threshold is a normal quantile of those scores, their mean minus `z` standard
  deviations, shrunk toward the global (calibrated) threshold with weight n / (n + `prior`), n the
  scored images: a model with few gallery images keeps close to the global threshold, one with
  many is judged by its own spread, and a model with fewer than 2 images (or a gallery made before
  per-image fingerprints were kept) uses the global threshold (`OpenSetRule.model_threshold`). A
  normal quantile rather than an empirical one: with the usual 10 gallery images an empirical low
  quantile is just the lowest score, while the mean and sd use all of them;
- a query is named its nearest model only if it clears that model's threshold and beats the
  second-best model by `margin` (an image between two gallery models is not claimed by either).

`prior` -> infinity with margin 0 is the old global threshold, so the rule's family contains it.
The three constants are fitted by the workflow's `calibrate` step (`fit`) on the validation
generators' embeddings, with the same leave-some-models-out protocol that `benchmarks/openset.py`
reports (`leave_out_splits`): galleries of `gallery_size` images for a share of the models, known
queries from those models' other images, absent queries from the left-out models; the objective is
the balanced open-set accuracy (known images named right and absent images called unknown, each a
rate, averaged). Never fitted on the test bed.

A re-saved query (JPEG, grayscale, lossy WebP) is compared with the gallery's copies re-saved the same way,
which share what the re-save did to them and score higher against every model than clean images
do; the clean images' rule then names most absent models' re-saved images. So each re-save has a
rule of its own, global threshold and constants both, fitted the same way on the validation
generators' images re-saved so (`modelfp.resaved`, the calibrate step, from the rule `resaved_gallery`).

Everything here is a pure function of numpy arrays; the attributor applies it to a gallery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .evaluate import GALLERY_SIZE    # images per known model's gallery: the identification protocol's
from .evaluate import gallery_scores, top_mean
KNOWN_FRACTION = 0.6      # share of the models in each draw's gallery; the others are absent
REPEATS = 20              # draws of known / absent models
MIN_IMAGES = 2            # scored gallery images a model needs for its own threshold
# the fitted grid, simplest first (ties keep the first): margin 0, near-global priors, small z
MARGINS = (0.0, 0.01, 0.02, 0.05, 0.1)
PRIORS = (100.0, 30.0, 10.0, 3.0, 1.0, 0.0)
ZS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


# ---------------------------------------------------------------------------------------------
# The rule


@dataclass(frozen=True)
class OpenSetRule:
    """Per-model acceptance (module docstring): `threshold` the global (calibrated) threshold,
    `z`, `prior`, `margin` the fitted constants; `OpenSetRule.global_only(t)` is the old rule."""
    threshold: float
    z: float = 0.0
    prior: float = math.inf
    margin: float = 0.0
    neighbours: int = 0

    @classmethod
    def global_only(cls, threshold: float) -> OpenSetRule:
        return cls(float(threshold))

    @property
    def per_model(self) -> bool:
        return math.isfinite(self.prior)

    def constants(self) -> dict:
        """What `calibrate` stores in the extractor file (the global threshold is stored apart)."""
        return {"z": self.z, "prior": self.prior, "margin": self.margin, "neighbours": self.neighbours}

    @classmethod
    def from_constants(cls, constants: dict, threshold: float) -> OpenSetRule:
        """The rule a file stores (files calibrated before neighbours score by the fingerprint)."""
        return cls(float(threshold), float(constants["z"]), float(constants["prior"]), float(constants["margin"]),
                   int(constants.get("neighbours", 0)))

    def model_threshold(self, loo) -> float:
        """A model's threshold from its gallery images' leave-one-out scores (`loo_scores`)."""
        return float(self.thresholds_of(*_stats([np.asarray(loo, dtype=np.float64)]))[0])

    def thresholds_of(self, n, mean, sd) -> np.ndarray:
        """Vectorised `model_threshold` from per-model counts, means and standard deviations."""
        n = np.asarray(n, dtype=np.float64)
        own = n >= MIN_IMAGES
        w = np.zeros_like(n) if not self.per_model else np.where(own, n / np.maximum(n + self.prior, 1e-12), 0.0)
        local = np.where(own, np.asarray(mean) - self.z * np.asarray(sd), 0.0)
        return w * local + (1 - w) * self.threshold

    def describe(self) -> str:
        scored = f"; scored by the {self.neighbours} nearest gallery images" if self.neighbours else ""
        if not self.per_model:
            return f"global threshold {self.threshold:.4f}{scored}"
        return (f"per-model (z {self.z:g}, prior {self.prior:g}, margin {self.margin:g}; global "
                f"{self.threshold:.4f}{scored})")


def _stats(loo: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.array([len(x) for x in loo], dtype=np.float64)
    mean = np.array([x.mean() if len(x) else 0.0 for x in loo])
    sd = np.array([x.std(ddof=1) if len(x) > 1 else 0.0 for x in loo])
    return n, mean, sd


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def loo_scores(prints, total, neighbours: int = 0) -> np.ndarray:
    """Leave-one-out scores of a model's gallery images: with neighbours 0, cos(h_i, s - h_i) for
    each unit fingerprint h_i of `prints` (k, dim), s = `total` (dim,), the sum of all the model's
    unit fingerprints (it may hold more images than `prints`: each score is still exact); with n >=
    1, the mean of h_i's n highest cosines with the model's other images (`prints` must then be all
    of them). Empty when the model holds a single image (nothing is left out of)."""
    prints = _unit(prints).reshape(-1, np.shape(total)[-1])
    if neighbours:
        if len(prints) < 2:
            return np.zeros(0)
        sims = prints @ prints.T
        others = sims[~np.eye(len(prints), dtype=bool)].reshape(len(prints), len(prints) - 1)
        return top_mean(others, neighbours)
    rest = np.asarray(total, dtype=np.float64)[None, :] - prints
    keep = np.linalg.norm(rest, axis=1) > 1e-9
    return np.einsum("kd,kd->k", prints[keep], _unit(rest[keep]))


@dataclass
class Answer:
    """One query's answer under a rule: accepted (named its nearest model) or not, and why not."""
    accepted: bool
    threshold: float
    reason: str | None = None


def decide(rule: OpenSetRule, nearest: str, best: float, threshold: float, second: str | None = None,
           second_score: float | None = None) -> Answer:
    """Name `nearest` (score `best`, its threshold `threshold`) or answer unknown, with the reason."""
    if best < threshold:
        whose = f"{nearest}'s threshold" if rule.per_model else "the threshold"
        return Answer(False, threshold, f"score {best:.4f} below {whose} {threshold:.4f}")
    if rule.margin > 0 and second is not None and best - second_score < rule.margin:
        return Answer(False, threshold, f"{nearest} {best:.4f} and {second} {second_score:.4f} closer than the "
                                        f"margin {rule.margin:g}")
    return Answer(True, threshold)


# ---------------------------------------------------------------------------------------------
# The protocol: leave some models out of the gallery


@dataclass
class Split:
    """One draw: gallery image indices (gallery_size per known model), known-query indices (the
    known models' other images) and absent-query indices (every image of the left-out models)."""
    gallery: np.ndarray
    known: np.ndarray
    absent: np.ndarray


def leave_out_splits(labels, gallery_size: int = GALLERY_SIZE, known_fraction: float = KNOWN_FRACTION,
                     repeats: int = REPEATS, seed: int = 0) -> list[Split]:
    """`repeats` seeded draws (numpy default_rng(seed)): round(known_fraction * models) models
    (at least 1, at most all but one) are known, each with `gallery_size` random gallery images."""
    labels = np.asarray(labels)
    names = np.unique(labels)
    if len(names) < 2:
        raise ValueError(f"the open-set protocol needs at least 2 models; got {len(names)}")
    for name in names:
        if (labels == name).sum() <= gallery_size:
            raise ValueError(f"model {str(name)!r} has {(labels == name).sum()} images; the open-set protocol "
                             f"needs more than gallery_size={gallery_size}")
    n_known = min(len(names) - 1, max(1, round(known_fraction * len(names))))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        known_models = np.sort(rng.permutation(names)[:n_known])
        gallery, known = [], []
        for name in known_models:
            idx = rng.permutation(np.flatnonzero(labels == name))
            gallery.append(np.sort(idx[:gallery_size]))
            known.append(np.sort(idx[gallery_size:]))
        out.append(Split(np.concatenate(gallery), np.concatenate(known),
                         np.flatnonzero(~np.isin(labels, known_models))))
    return out


@dataclass
class Scored:
    """The splits' queries pooled, scored against their draw's gallery: per gallery model (all
    draws, `model` indexes them) the count, mean and sd of its leave-one-out scores; per query its
    best and second-best score, its nearest model, whether that is its own model, whether it is
    known; `draws` and the per-draw query counts."""
    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    best: np.ndarray
    second: np.ndarray
    nearest: np.ndarray
    right: np.ndarray
    known: np.ndarray
    draws: int = 0
    names: list = field(default_factory=list)


def score_splits(emb, labels, splits: list[Split], neighbours: int = 0) -> Scored:
    """Score every split's queries against its gallery (`evaluate.gallery_scores` with `neighbours`)."""
    unit, labels = _unit(emb), np.asarray(labels)
    parts, offset = [], 0
    for s in splits:
        queries = np.r_[s.known, s.absent]
        names, sims = gallery_scores(unit[queries], unit[s.gallery], labels[s.gallery], neighbours)
        own = [unit[s.gallery[labels[s.gallery] == m]] for m in names]
        loo = [loo_scores(prints, prints.sum(0), neighbours) for prints in own]
        order = np.argsort(-sims, axis=1)
        best = sims[np.arange(len(queries)), order[:, 0]]
        second = sims[np.arange(len(queries)), order[:, 1]] if len(names) > 1 else np.full(len(queries), -np.inf)
        right = names[order[:, 0]] == labels[queries]
        parts.append((*_stats(loo), best, second, order[:, 0] + offset, right,
                      np.r_[np.ones(len(s.known), bool), np.zeros(len(s.absent), bool)], list(names)))
        offset += len(names)
    cat = [np.concatenate([p[i] for p in parts]) for i in range(8)]
    return Scored(*cat, draws=len(splits), names=[n for p in parts for n in p[8]])


def outcomes(scored: Scored, rule: OpenSetRule) -> dict:
    """The protocol's numbers for `rule` (fractions): known images named right, absent images called
    unknown, overall (all queries answered right), balanced (the mean of the first two), the
    open-set AUROC of the rule's slack (how far a query clears its acceptance), and the counts."""
    thr = rule.thresholds_of(scored.n, scored.mean, scored.sd)[scored.nearest]
    slack = scored.best - thr                       # the global rule: the best score's AUROC
    if rule.margin > 0:
        slack = np.minimum(slack, scored.best - scored.second - rule.margin)
    accept = slack >= 0
    named = (accept & scored.right)[scored.known]
    unknown = ~accept[~scored.known]
    known_rate = float(named.mean()) if named.size else float("nan")
    absent_rate = float(unknown.mean()) if unknown.size else float("nan")
    from sklearn.metrics import roc_auc_score
    auroc = float(roc_auc_score(scored.known, slack)) if named.size and unknown.size else float("nan")
    return {"known_named": known_rate, "absent_unknown": absent_rate,
            "overall": float((named.sum() + unknown.sum()) / len(accept)),
            "balanced": (known_rate + absent_rate) / 2, "auroc": auroc,
            "n_known": int(named.size), "n_absent": int(unknown.size)}


def _balanced(scored: Scored, rule: OpenSetRule) -> float:
    """`outcomes(...)["balanced"]` without the AUROC (the fit calls it for every grid point)."""
    thr = rule.thresholds_of(scored.n, scored.mean, scored.sd)[scored.nearest]
    accept = (scored.best >= thr) & (scored.best - scored.second >= rule.margin)
    return float(((accept & scored.right)[scored.known].mean() + (~accept[~scored.known]).mean()) / 2)


# ---------------------------------------------------------------------------------------------
# Fitting the constants (the workflow's calibrate step, on the validation set)


@dataclass
class Fit:
    """The fitted rule and what it and the global rule score on the data it was fitted on, and
    that data's draws scored (`scored`: another rule's `outcomes` on the same draws)."""
    rule: OpenSetRule
    fitted: dict
    global_: dict
    gallery_size: int
    known_fraction: float
    repeats: int
    seed: int
    scored: Scored | None = field(default=None, repr=False)

    def record(self, source: str) -> dict:
        """What the extractor file keeps: the constants, the protocol and the in-sample scores."""
        return {**self.rule.constants(), "fitted_on": source, "gallery_size": self.gallery_size,
                "known_fraction": self.known_fraction, "repeats": self.repeats, "seed": self.seed,
                "balanced": self.fitted["balanced"], "balanced_global": self.global_["balanced"]}


def fit(emb, labels, threshold: float, gallery_size: int = GALLERY_SIZE, known_fraction: float = KNOWN_FRACTION,
        repeats: int = REPEATS, seed: int = 0, neighbours: int = 0) -> Fit:
    """The constants (z, prior, margin) of the grid (ZS x PRIORS x MARGINS) that maximise the
    balanced open-set accuracy of the leave-some-models-out protocol on (emb, labels), the global
    threshold `threshold` fixed (the calibrated one, of the same `neighbours`' scores). Called on
    the validation generators only."""
    scored = score_splits(emb, labels, leave_out_splits(labels, gallery_size, known_fraction, repeats, seed),
                          neighbours)
    best, best_value = None, -1.0
    for margin in MARGINS:
        for prior in PRIORS:
            for z in ZS:
                rule = OpenSetRule(float(threshold), z, prior, margin, neighbours)
                value = _balanced(scored, rule)
                if value > best_value + 1e-12:
                    best, best_value = rule, value
    return Fit(best, outcomes(scored, best), outcomes(scored, OpenSetRule(float(threshold), neighbours=neighbours)),
               gallery_size, known_fraction, repeats, seed, scored)


def fit_deployable(emb, labels, gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1,
                   neighbours: int = 0) -> Fit:
    """A whole rule from embeddings alone, its scores `neighbours`' (`evaluate.gallery_scores`): the
    global threshold of the leave-one-model-out protocol (`evaluate.open_set` over `draws` gallery
    draws, as the evaluate step finds it for neighbours 0) and the per-model constants fitted around
    it (`fit`). The calibrate step fits the clean images' rule and the re-saved copies' rules so
    (`modelfp.resaved`)."""
    from .evaluate import open_set
    threshold = open_set(emb, labels, gallery_size, seed, draws, neighbours)["threshold"]
    return fit(emb, labels, threshold, gallery_size=gallery_size, seed=seed, neighbours=neighbours)


def deployed(emb, labels, gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1,
             neighbours: int = 0) -> dict:
    """`identify`'s open-set answers as the workflow would deploy these embeddings (scored with
    `neighbours`, evaluation.tool_neighbours): the global threshold of the leave-one-model-out
    protocol (`evaluate.open_set` over `draws` gallery draws, as the calibrate step finds it), the
    per-model constants fitted on the same embeddings (`fit`, as calibrate fits them), and on its
    draws: known images named right, absent images called unknown, their mean (balanced), in
    percent, the rule, and `_openset_draws` each draw's balanced accuracy (the same draws for the
    same labels: for paired comparisons)."""
    fitted = fit_deployable(emb, labels, gallery_size, seed, draws, neighbours)
    splits = leave_out_splits(labels, fitted.gallery_size, fitted.known_fraction, fitted.repeats, fitted.seed)
    per_draw = [outcomes(score_splits(emb, labels, [d], neighbours), fitted.rule)["balanced"] for d in splits]
    return {"openset_known_named": 100 * fitted.fitted["known_named"],
            "openset_absent_unknown": 100 * fitted.fitted["absent_unknown"],
            "openset_balanced": 100 * fitted.fitted["balanced"], "openset_auroc": fitted.fitted["auroc"],
            "openset_rule": fitted.rule.describe(), "_openset_draws": 100 * np.asarray(per_draw)}


def read_embeddings_folder(folder) -> tuple[np.ndarray, np.ndarray]:
    """Every model's embeddings in an embed-rule folder (`<name>.npz` each), stacked, and labels."""
    from .evaluate import read_embeddings
    names = sorted(p.stem for p in Path(folder).glob("*.npz"))
    if len(names) < 2:
        raise FileNotFoundError(f"{folder}: needs the embeddings of at least 2 models (<name>.npz); found "
                                f"{len(names)}; run the embed rule")
    return read_embeddings(folder, names)


def summary_rows(scored: Scored, rules: dict[str, OpenSetRule]) -> list[dict]:
    """One row per named rule: `outcomes` with the rule's description."""
    return [{"rule": label, "describe": rule.describe(), **outcomes(scored, rule)} for label, rule in rules.items()]

