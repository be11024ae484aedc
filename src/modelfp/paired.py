"""Paired tests of Tables VIII and IX (issue 22): is a gap between two methods larger than the noise?

Every method is scored on the same images (modelfp.splits) with the same seeded queries and pairs
(modelfp.evaluate), so two methods can be compared query by query and pair by pair, which is far
more sensitive than comparing two accuracies as if they came from independent samples:

- Identification (Table VIII): McNemar's exact test. A query counts as right for a method when it
  is right in more than half of the gallery draws (its file's `correct_fraction` > 0.5; an odd
  number of draws, as the presets configure, leaves no tie, and a tie counts as wrong). b = queries
  only the anchor gets right, c = queries only the other method gets right; under "no difference"
  b ~ Binomial(b + c, 1/2), so p = scipy.stats.binomtest(b, b + c).pvalue (two-sided, exact). The
  accuracies reported beside it are these majority-correct accuracies, so diff = 100 (b - c) / n.
- Verification (Table IX): a paired bootstrap of the AUC difference on the same pairs. Each of
  RESAMPLES resamples draws the same-model pairs and the different-model pairs with replacement,
  each kind apart (so each keeps its count and the AUC is always defined), and scores both methods
  on the very same resampled pairs (the AUC by ranks, `_rank_auc`, equal to
  sklearn.metrics.roc_auc_score, which gives the AUCs on all pairs). Reported: the difference on all
  pairs, the percentile 95 % interval of the resampled differences and the two-sided bootstrap
  p = 2 min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (RESAMPLES + 1), capped at 1.

Queries and pairs are joined by image, (model, key) of modelfp.splits.image_key, never by position,
so two files whose images differ are an error rather than a silent misalignment. The anchor is Only-
Syn (`all`); each other row of the table (controls, Fine-tune, baselines, the ceiling diagnostic) is
compared with it per group. The workflow verb `paired-tests` (modelfp.steps.attribution) reads the
files and writes the tables.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000      # bootstrap resamples of the AUC difference
BOOTSTRAP_CELLS = 4_000_000     # resampled scores ranked at once (32 MB of float64)
LEVEL = 0.95          # the bootstrap interval's coverage
GROUPS = ("classical", "emerging")      # the groups of Tables VIII and IX
QUERY_KEY = ("group", "model", "key")
PAIR_KEY = ("group", "model_i", "key_i", "model_j", "key_j")


def majority_correct(correct_fraction) -> np.ndarray:
    """Per query: right in more than half of the gallery draws (a tie counts as wrong)."""
    return np.asarray(correct_fraction, dtype=np.float64) > 0.5


def mcnemar(anchor_correct, other_correct) -> dict:
    """McNemar's exact test on paired right/wrong outcomes of the same queries: n, b (only the
    anchor right), c (only the other right), two-sided p (1 when b + c = 0)."""
    from scipy.stats import binomtest
    a, o = np.asarray(anchor_correct, dtype=bool), np.asarray(other_correct, dtype=bool)
    if a.shape != o.shape or a.ndim != 1:
        raise ValueError(f"need two equally long 1-D outcome vectors; got shapes {a.shape} and {o.shape}")
    b, c = int(np.sum(a & ~o)), int(np.sum(~a & o))
    p = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return {"n": int(a.size), "b": b, "c": c, "p": float(p)}


def _rank_auc(scores: np.ndarray, n_pos: int) -> np.ndarray:
    """Row-wise ROC AUC of (resamples, n) scores whose first n_pos columns are the positives: the
    Mann-Whitney statistic from average ranks (ties count a half, as roc_auc_score's trapezoids),
    for all resamples at once (roc_auc_score one by one: minutes at the paper's 10,000 pairs)."""
    from scipy.stats import rankdata
    ranks = rankdata(scores, axis=1)
    n_neg = scores.shape[1] - n_pos
    return (ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_difference(same, anchor_scores, other_scores, resamples: int = RESAMPLES, seed: int = 0,
                   level: float = LEVEL) -> dict:
    """AUC(anchor) - AUC(other) on the same pairs, with a paired stratified bootstrap (module
    docstring): auc_anchor, auc_other, diff, ci_low, ci_high, p, n_pairs (AUCs as fractions).
    Seeded by numpy.random.default_rng(seed)."""
    from sklearn.metrics import roc_auc_score
    same = np.asarray(same, dtype=bool)
    a, o = np.asarray(anchor_scores, dtype=np.float64), np.asarray(other_scores, dtype=np.float64)
    if not (same.shape == a.shape == o.shape) or same.ndim != 1:
        raise ValueError(f"same and both score vectors must be 1-D of one length; got {same.shape}, {a.shape}, {o.shape}")
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    if not len(pos) or not len(neg):
        raise ValueError(f"the AUC needs same and different pairs; got {len(pos)} and {len(neg)}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1; got {resamples}")
    rng = np.random.default_rng(seed)
    diffs = []
    chunk = max(1, BOOTSTRAP_CELLS // len(same))
    for start in range(0, resamples, chunk):
        c = min(chunk, resamples - start)
        k = np.concatenate([rng.choice(pos, (c, len(pos))), rng.choice(neg, (c, len(neg)))], axis=1)
        diffs.append(_rank_auc(a[k], len(pos)) - _rank_auc(o[k], len(pos)))
    diffs = np.concatenate(diffs)
    auc_a, auc_o = float(roc_auc_score(same, a)), float(roc_auc_score(same, o))
    tail = (1 - level) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    p = min(1.0, 2 * (min(np.sum(diffs <= 0), np.sum(diffs >= 0)) + 1) / (resamples + 1))
    return {"auc_anchor": auc_a, "auc_other": auc_o, "diff": auc_a - auc_o, "ci_low": float(low),
            "ci_high": float(high), "p": float(p), "n_pairs": int(len(same))}


def join(anchor_rows: list[dict], other_rows: list[dict], key: tuple[str, ...], what: str) -> list[tuple[dict, dict]]:
    """The rows of two methods' files paired by `key` (image names), in the anchor's order; a
    ValueError naming `what` when the two do not hold the same keys."""
    keys_a = [tuple(r[f] for f in key) for r in anchor_rows]
    if len(set(keys_a)) < len(keys_a):
        # pairs drawn with replacement from few images repeat (the smoke preset): the same seeded draw
        # on the same images gives the same sequence, so pair position by position when it matches
        if keys_a == [tuple(r[f] for f in key) for r in other_rows]:
            return list(zip(anchor_rows, other_rows))
        raise ValueError(f"{what}: the two files repeat keys in different orders (not the same seeded draw); "
                         f"rerun both evaluations")

    def index(rows, whose):
        out = {}
        for row in rows:
            k = tuple(row[f] for f in key)
            if k in out:
                raise ValueError(f"{what}: {whose} file has {k} twice")
            out[k] = row
        return out
    a, o = index(anchor_rows, "the anchor's"), index(other_rows, "its")
    if a.keys() != o.keys():
        only_a, only_o = len(a.keys() - o.keys()), len(o.keys() - a.keys())
        example = next(iter((a.keys() - o.keys()) or (o.keys() - a.keys())))
        raise ValueError(f"{what}: the two files are not on the same images ({only_a} only in the anchor's, "
                         f"{only_o} only in the other's, e.g. {example}); rerun both evaluations")
    return [(row, o[k]) for k, row in a.items()]


def identification_rows(anchor: str, queries: dict[str, list[dict]]) -> list[dict]:
    """Table VIII's paired rows: per other method and group, McNemar against the anchor.
    queries: {method label: its per-query rows (modelfp.evaluate.query_rows plus group)}."""
    out = []
    for method, rows in queries.items():
        if method == anchor:
            continue
        for group in GROUPS:
            mine = [r for r in queries[anchor] if r["group"] == group]
            theirs = [r for r in rows if r["group"] == group]
            if not mine and not theirs:
                continue
            pairs = join(mine, theirs, QUERY_KEY, f"{method} vs {anchor}, {group} queries")
            a = majority_correct([float(x["correct_fraction"]) for x, _ in pairs])
            o = majority_correct([float(y["correct_fraction"]) for _, y in pairs])
            test = mcnemar(a, o)
            out.append({"method": method, "anchor": anchor, "group": group, "queries": test["n"],
                        "anchor acc": round(100 * a.mean(), 2), "method acc": round(100 * o.mean(), 2),
                        "diff (anchor - method)": round(100 * (a.mean() - o.mean()), 2),
                        "b (anchor right only)": test["b"], "c (method right only)": test["c"],
                        "p (McNemar exact)": float(f"{test['p']:.4g}")})
    return out


def verification_rows(anchor: str, pairs: dict[str, list[dict]], resamples: int = RESAMPLES,
                      seed: int = 0) -> list[dict]:
    """Table IX's paired rows: per other method and group, the bootstrap of the AUC difference
    against the anchor on the same pairs. pairs: {method label: its per-pair rows
    (modelfp.evaluate.pair_rows plus group)}."""
    out = []
    pct = round(100 * LEVEL)
    for method, rows in pairs.items():
        if method == anchor:
            continue
        for group in GROUPS:
            mine = [r for r in pairs[anchor] if r["group"] == group]
            theirs = [r for r in rows if r["group"] == group]
            if not mine and not theirs:
                continue
            joined = join(mine, theirs, PAIR_KEY, f"{method} vs {anchor}, {group} pairs")
            same = np.array([int(x["same"]) for x, _ in joined], dtype=bool)
            if any(int(x["same"]) != int(y["same"]) for x, y in joined):
                raise ValueError(f"{method} vs {anchor}, {group} pairs: a pair is 'same' in one file only")
            test = auc_difference(same, [float(x["score"]) for x, _ in joined],
                                  [float(y["score"]) for _, y in joined], resamples, seed)
            out.append({"method": method, "anchor": anchor, "group": group, "pairs": test["n_pairs"],
                        "anchor auc": round(100 * test["auc_anchor"], 2), "method auc": round(100 * test["auc_other"], 2),
                        "diff (anchor - method)": round(100 * test["diff"], 2),
                        f"ci{pct} low": round(100 * test["ci_low"], 2), f"ci{pct} high": round(100 * test["ci_high"], 2),
                        "p (paired bootstrap)": float(f"{test['p']:.4g}"), "resamples": resamples})
    return out
