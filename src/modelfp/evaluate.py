"""Zero-shot attribution metrics: embeddings + model labels -> the rows of Tables VIII, IX and X.

The fingerprint extractor maps every image of a test model to an embedding; attribution never
trains on the test models, it only compares embeddings by cosine similarity (paper Sec. IV-A,
"Testing Scenarios", Figure 7):

- 1:1 model verification (Table IX): 5,000 pairs of images of the same model and 5,000 pairs of
  images of different models; the score of a pair is the cosine of its embeddings; reported are the
  best accuracy over all thresholds and the ROC AUC (`verification_pairs`, `best_threshold_accuracy`,
  `verification`).
- 1:N model identification (Table VIII): per model, 10 images form its gallery fingerprint (the mean
  feature); every other image is a query, assigned to the gallery entry of highest cosine; reported
  are accuracy and macro-F1 over the queries (`gallery_fingerprints`, `identification`).
  Repeated gallery draws (issue 22, `evaluation.gallery_draws`): per model a seeded gallery pool is
  held out (`pool_size`) and each draw takes its gallery from the pool, so the queries (every image
  outside the pool) are the same in every draw; reported are the mean over draws, their spread
  (sd) and the accuracy's binomial standard error, and per query its majority prediction and the
  fraction of draws it was right (`query_rows`, read by modelfp.paired). One draw is the paper's
  protocol exactly: the pool is the gallery.
- Open-set rejection (not in the paper; the "unknown" answer of `modelfp identify`): leave one
  model out of the gallery at a time; its queries' best gallery scores should fall below the other
  models' queries' best scores. Reported are the AUROC of that separation (as POSE reports open-set
  detection) and the threshold that best separates them (`open_set`).
- Fingerprint representation (Table X): silhouette score and Davies-Bouldin index of the embeddings
  with the models as clusters (`cluster_scores`).
- t-SNE plots of the embeddings (Figures 9 and 15: base vs LoRA models, fixed vs varied generation
  configurations) (`plot_tsne`).

The protocol details not in the paper (fingerprint = mean of L2-normalised features, the pair counts)
follow the authors' evaluation code, /work/shared/paper/official-code-facts.md. `evaluate_group` gives
one table row for one group of test models ("classical" or "emerging"); `evaluate_groups` scores
every group of an embeddings folder (the verb `evaluate`), by the seeded protocol or on the
authors' lists (modelfp.protocol_lists), with a method's own pair verifier beside the cosine.
Everything else here is a pure function of numpy arrays (torch tensors are accepted), seeded by
numpy's default_rng; only `plot_tsne` writes a file. scikit-learn is imported by the functions
that use it (0.8 s): a verb that only reads this module's constants, or embeds, does not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import protocol_lists

log = logging.getLogger(__name__)

N_SAME_PAIRS = 5000     # Sec. IV-A: 5,000 positive verification pairs ...
N_DIFF_PAIRS = 5000     # ... and 5,000 negative ones
GALLERY_SIZE = 10       # Sec. IV-A: images per model that form its gallery fingerprint
# With several gallery draws, a model's gallery pool holds POOL_FACTOR galleries' worth of images,
# so the draws differ, but at most half its images, so at least half stay queries (the query set
# sets the accuracy's standard error; the paper's 500 evaluated images per model keep 450)
POOL_FACTOR = 5
DRAW_STREAM = 1         # the gallery draws' random stream, default_rng((seed, 1)): apart from the pool's
TSNE_PERPLEXITY = 30.0  # scikit-learn's default, lowered for small sets (must stay below n / 3)
MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")


def read_embeddings(folder, names) -> tuple[np.ndarray, np.ndarray]:
    """(stacked embeddings, per-image model names) of `names` in an embeddings folder of the embed
    rule (one `<name>.npz` per model)."""
    embs, labels = [], []
    for name in names:
        path = Path(folder) / f"{name}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no embeddings of model {name!r}; run the embed rule")
        e = np.load(path)["embeddings"]
        embs.append(e)
        labels += [name] * len(e)
    return np.concatenate(embs), np.array(labels)


def embeddings_views(folder) -> int:
    """The test-time views (`modelfp.extractor.VIEWS`) an embed-rule folder was made with: the
    same in every `<name>.npz` (1 for folders written before views were stored), or ValueError."""
    found = set()
    for path in sorted(Path(folder).glob("*.npz")):
        with np.load(path) as npz:
            found.add(int(npz["views"]) if "views" in npz.files else 1)
    if len(found) > 1:
        raise ValueError(f"{folder}: embeddings of several test-time view counts {sorted(found)}; run the embed rule again")
    return found.pop() if found else 1


def _embeddings(emb, labels) -> tuple[np.ndarray, np.ndarray]:
    """float64 (n, d) embeddings and (n,) labels, checked for shape and finiteness."""
    if hasattr(emb, "detach"):
        emb = emb.detach().cpu().numpy()
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    if emb.ndim != 2 or emb.shape[0] < 1:
        raise ValueError(f"emb must be (n images, d) with n >= 1; got shape {emb.shape}")
    if labels.shape != (emb.shape[0],):
        raise ValueError(f"labels must be ({emb.shape[0]},) like emb's rows; got shape {labels.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("emb contains NaN or inf")
    return emb, labels


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero (so their cosine with anything is 0, not NaN)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def cosine_matrix(a, b) -> np.ndarray:
    """(len(a), len(b)) cosine similarities of the rows of a and b; a zero row has cosine 0 with all."""
    a, _ = _embeddings(a, np.zeros(len(a)))
    b, _ = _embeddings(b, np.zeros(len(b)))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need the same dimension; got {a.shape[1]} and {b.shape[1]}")
    return _l2_normalise(a) @ _l2_normalise(b).T


# ---------------------------------------------------------------------------------------------------
# Verification (Table IX)


@dataclass
class _PairSpace:
    """All unordered image pairs of one model (within=True: x is y) or of one pair of models (x, y).

    A pair is coded as a * len(y) + b for positions a in x, b in y (a < b when within)."""
    x: np.ndarray
    y: np.ndarray
    within: bool
    used: set = field(default_factory=set)
    remaining: list | None = None   # explicit list of unused codes, built once half are used

    @property
    def size(self) -> int:
        m = len(self.x)
        return m * (m - 1) // 2 if self.within else len(self.x) * len(self.y)

    def draw(self, rng) -> int:
        """A uniformly random pair of the space (used or not)."""
        if self.within:
            a, b = int(rng.integers(len(self.x))), int(rng.integers(len(self.x) - 1))
            b += b >= a   # uniform over ordered pairs of distinct positions, sorted below
            a, b = min(a, b), max(a, b)
        else:
            a, b = int(rng.integers(len(self.x))), int(rng.integers(len(self.y)))
        return a * len(self.y) + b

    def draw_unused(self, rng) -> int:
        """A uniformly random pair not drawn before, which is then marked used."""
        if self.remaining is None and 2 * len(self.used) < self.size:
            code = self.draw(rng)
            while code in self.used:   # accepted with probability >= 1/2
                code = self.draw(rng)
        else:
            if self.remaining is None:
                if self.within:
                    a, b = np.triu_indices(len(self.x), 1)
                    codes = a * len(self.y) + b
                else:
                    codes = np.arange(self.size)
                self.remaining = [int(c) for c in codes if int(c) not in self.used]
            k = int(rng.integers(len(self.remaining)))
            self.remaining[k], self.remaining[-1] = self.remaining[-1], self.remaining[k]
            code = self.remaining.pop()
        self.used.add(code)
        return code

    def decode(self, code: int) -> tuple[int, int]:
        a, b = divmod(code, len(self.y))
        i, j = int(self.x[a]), int(self.y[b])
        return min(i, j), max(i, j)


def _sample_pairs(spaces: list[_PairSpace], n: int, rng, what: str) -> list[tuple[int, int]]:
    """n pairs: a space chosen uniformly among those not exhausted, then a pair uniformly within it;
    without replacement when the spaces hold at least n pairs, else with replacement."""
    spaces = [s for s in spaces if s.size > 0]
    total = sum(s.size for s in spaces)
    if n > 0 and total == 0:
        raise ValueError(f"no {what} pair exists for these labels, but n_{what}={n} were asked for")
    replace = n > total
    pairs = []
    while len(pairs) < n:
        k = int(rng.integers(len(spaces)))
        space = spaces[k]
        if replace:
            code = space.draw(rng)
        else:
            code = space.draw_unused(rng)
            if len(space.used) == space.size:
                spaces.pop(k)
        pairs.append(space.decode(code))
    return pairs


def verification_pairs(labels, n_same: int = N_SAME_PAIRS, n_diff: int = N_DIFF_PAIRS,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random verification pairs (Sec. IV-A: 5,000 same-model + 5,000 different-model pairs).

    Returns index arrays (i, j) and a boolean array `same`, the n_same same-model pairs first, then the
    n_diff different-model pairs; always i < j (so never i == j).
    - Same-model pair: a model drawn uniformly among the models with >= 2 images, then a pair of its
      distinct images drawn uniformly.
    - Different-model pair: an unordered pair of models drawn uniformly, then one image of each drawn
      uniformly. (With equal image counts per model, as in the paper, both rules are the same as
      drawing uniformly over all eligible image pairs; with unequal counts every model weighs the same.)
    Pairs are drawn without replacement whenever the number of possible pairs of that kind is at least
    the number asked for; a model (or model pair) whose pairs are used up drops out of the draw, so
    asking for every possible pair returns each exactly once. When more pairs are asked for than
    exist, that kind is drawn WITH replacement (duplicates then occur). Seeded by
    numpy.random.default_rng(seed).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}")
    if n_same < 0 or n_diff < 0:
        raise ValueError(f"n_same and n_diff must be >= 0; got n_same={n_same}, n_diff={n_diff}")
    _, inverse = np.unique(labels, return_inverse=True)
    groups = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)] if len(labels) else []
    rng = np.random.default_rng(seed)
    same_spaces = [_PairSpace(g, g, True) for g in groups]
    diff_spaces = [_PairSpace(groups[a], groups[b], False)
                   for a in range(len(groups)) for b in range(a + 1, len(groups))]
    pairs = _sample_pairs(same_spaces, n_same, rng, "same") + _sample_pairs(diff_spaces, n_diff, rng, "diff")
    ij = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    same = np.r_[np.ones(n_same, dtype=bool), np.zeros(n_diff, dtype=bool)]
    return ij[:, 0], ij[:, 1], same


def best_threshold_accuracy(scores, same, balanced: bool = False) -> tuple[float, float]:
    """Best verification accuracy over all thresholds (Sec. IV-A) and the threshold that achieves it.

    balanced: maximise the mean of the two classes' accuracies instead (the same as accuracy when
    the classes are equally many, as the verification pairs are; the open-set scores are not).
    A pair is predicted "same model" when score >= threshold. Only cuts between distinct score values
    are possible (equal scores always get the same prediction), which roc_curve enumerates. The
    returned threshold is the midpoint between the lowest score predicted "same" and the next lower
    distinct score, so it carries over to new pairs; if the best is to predict every pair "same" it
    is the minimum score, and if it is to predict none "same" it is the next float above the maximum.
    On equal accuracies the highest threshold wins. Needs both classes present.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    same = np.asarray(same).ravel().astype(bool)
    if scores.shape != same.shape or scores.size == 0:
        raise ValueError(f"scores and same must be non-empty and of equal length; "
                         f"got {scores.size}, {same.size}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    n_pos = int(same.sum())
    n_neg = same.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"same must contain both classes; got {n_pos} same and {n_neg} different pairs")
    # thresholds[0] is +inf (nothing predicted same), then each distinct score in decreasing order
    from sklearn.metrics import roc_curve
    fpr, tpr, thresholds = roc_curve(same, scores, drop_intermediate=False)
    correct = tpr * n_pos + (1.0 - fpr) * n_neg if not balanced else (tpr + 1.0 - fpr) / 2
    k = int(np.argmax(correct))
    accuracy = float(correct[k] / same.size) if not balanced else float(correct[k])
    if k == 0:
        return accuracy, float(np.nextafter(thresholds[1], np.inf))
    if k == len(thresholds) - 1:
        return accuracy, float(thresholds[k])
    lo, hi = thresholds[k + 1], thresholds[k]
    mid = lo + (hi - lo) / 2
    return accuracy, float(mid if mid > lo else hi)   # adjacent floats: hi is the only valid cut


def verification(emb, labels, n_same: int = N_SAME_PAIRS, n_diff: int = N_DIFF_PAIRS,
                 seed: int = 0, pair_score=None) -> dict:
    """1:1 model verification (Table IX): cosine scores of random pairs (`verification_pairs`), or
    pair_score(emb_i, emb_j) -> scores when given (a method's own verifier, e.g. Abady's siamese
    network), on the very same pairs.

    Returns accuracy (best over thresholds) and AUC as fractions in [0, 1], the threshold, n_pairs,
    and for inspection (and the paired tests, modelfp.paired) the pairs i, j, same and their scores.
    """
    emb, labels = _embeddings(emb, labels)
    if n_same < 1 or n_diff < 1:
        raise ValueError(f"verification needs n_same >= 1 and n_diff >= 1; got {n_same}, {n_diff}")
    i, j, same = verification_pairs(labels, n_same, n_diff, seed)
    return verification_of_pairs(emb, i, j, same, pair_score)


def verification_of_pairs(emb, i, j, same, pair_score=None) -> dict:
    """`verification` on given pairs: rows i[k], j[k] of emb, `same[k]` true for a same-model pair
    (the seeded pairs, or a published pair list: modelfp.protocol_lists)."""
    emb, _ = _embeddings(emb, np.zeros(len(emb)))
    i, j, same = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), np.asarray(same, dtype=bool)
    if pair_score is not None:
        scores = np.asarray(pair_score(emb[i], emb[j]), dtype=np.float64)
    else:
        unit = _l2_normalise(emb)
        scores = np.einsum("nd,nd->n", unit[i], unit[j])
    accuracy, threshold = best_threshold_accuracy(scores, same)
    from sklearn.metrics import roc_auc_score
    return {"accuracy": accuracy, "auc": float(roc_auc_score(same, scores)), "threshold": threshold,
            "n_pairs": int(len(same)), "i": i, "j": j, "same": same, "scores": scores}


# ---------------------------------------------------------------------------------------------------
# Identification (Table VIII)


def gallery_fingerprints(emb, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per model (label, sorted): the mean of its L2-normalised embeddings, L2-normalised again.

    Returns (names (k,), fingerprints (k, d)). Normalising before averaging keeps every image's vote
    equal; the final normalisation makes no difference to cosine, only to printed values."""
    emb, labels = _embeddings(emb, labels)
    names, inverse = np.unique(labels, return_inverse=True)
    unit = _l2_normalise(emb)
    sums = np.zeros((len(names), emb.shape[1]))
    np.add.at(sums, inverse, unit)
    return names, _l2_normalise(sums / np.bincount(inverse)[:, None])


def gallery_scores(queries, gallery, labels, neighbours: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each query's score against each gallery model: (names (k,), scores (queries, k)).
    neighbours 0: the cosine with the model's fingerprint (`gallery_fingerprints`, the paper's);
    n >= 1: the mean of the query's n highest cosines with the model's gallery images (all of them
    when it holds fewer), which follows a model whose images spread in several directions (the
    people's tool's open-set answers, `modelfp.openset`, chose 2 on the validation generators)."""
    gallery, labels = _embeddings(gallery, labels)
    if neighbours == 0:
        names, fingerprints = gallery_fingerprints(gallery, labels)
        return names, _l2_normalise(np.asarray(queries, dtype=np.float64)) @ fingerprints.T
    names = np.unique(labels)
    sims = _l2_normalise(np.asarray(queries, dtype=np.float64)) @ _l2_normalise(gallery).T
    return names, np.stack([top_mean(sims[:, labels == m], neighbours) for m in names], axis=1)


def top_mean(sims, n: int) -> np.ndarray:
    """Per row of `sims` (rows, k) the mean of its n highest values (all k when k < n)."""
    sims = np.asarray(sims)
    n = min(n, sims.shape[1])
    return np.sort(sims, axis=1)[:, sims.shape[1] - n:].mean(axis=1)


def pool_size(n_images: int, gallery_size: int, draws: int = 1) -> int:
    """Images of a model held out as its gallery pool: the gallery itself with one draw (the paper's
    protocol); with several, POOL_FACTOR galleries' worth, capped at half the model's images, and
    never fewer than gallery_size."""
    if draws <= 1:
        return gallery_size
    return max(gallery_size, min(POOL_FACTOR * gallery_size, n_images // 2))


def gallery_pool(labels, gallery_size: int, seed: int, draws: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(pool, query) image indices: per model in sorted label order, `pool_size` of its images drawn
    at random (numpy.random.default_rng(seed)) form its gallery pool, all others are queries (the
    same queries whatever gallery is then drawn from the pool)."""
    if gallery_size < 1:
        raise ValueError(f"gallery_size must be >= 1; got {gallery_size}")
    if draws < 1:
        raise ValueError(f"gallery draws must be >= 1; got {draws}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pool, queries = [], []
    for name in np.unique(labels):
        idx = np.flatnonzero(labels == name)
        if len(idx) <= gallery_size:
            raise ValueError(f"model {name.item()!r} has {len(idx)} images; identification needs more than "
                             f"gallery_size={gallery_size}")
        chosen = rng.permutation(idx)
        k = pool_size(len(idx), gallery_size, draws)
        pool.append(np.sort(chosen[:k]))
        queries.append(np.sort(chosen[k:]))
    return np.concatenate(pool), np.concatenate(queries)


def gallery_draws(labels, pool, gallery_size: int, draws: int, seed: int) -> list[np.ndarray]:
    """`draws` galleries (image indices): per model in sorted label order, gallery_size of its pool
    images drawn without replacement (numpy.random.default_rng((seed, DRAW_STREAM))). A pool of
    exactly gallery_size images per model gives that pool in every draw."""
    labels, pool = np.asarray(labels), np.asarray(pool, dtype=np.int64)
    rng = np.random.default_rng((seed, DRAW_STREAM))
    names = np.unique(labels[pool])
    out = []
    for _ in range(draws):
        out.append(np.concatenate([np.sort(rng.choice(pool[labels[pool] == name], gallery_size, replace=False))
                                   for name in names]))
    return out


def binomial_se(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy (a fraction) measured on n independent queries."""
    return float(np.sqrt(accuracy * (1 - accuracy) / n)) if n > 0 else float("nan")


def identification(emb, labels, gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1) -> dict:
    """1:N model identification (Table VIII), averaged over `draws` seeded gallery draws.

    For every model (in sorted label order) a gallery pool of its images is drawn at random
    (`gallery_pool`, numpy.random.default_rng(seed)); all its other images are queries, the same in
    every draw. Each draw takes `gallery_size` pool images per model as the gallery fingerprints
    (`gallery_draws`, `gallery_fingerprints`); a query is assigned to the fingerprint of highest
    cosine. With one draw the pool is the gallery: the paper's protocol. Returns the mean accuracy
    and macro-F1 over draws (scikit-learn, fractions), `identification_of_draws`'s spread and
    per-query entries, and pool_index.
    Raises ValueError if a model has <= gallery_size images (it would have no query).
    """
    emb, labels = _embeddings(emb, labels)
    pool, queries = gallery_pool(labels, gallery_size, seed, draws)
    galleries = gallery_draws(labels, pool, gallery_size, draws, seed)
    return {**identification_of_draws(emb, labels, galleries, queries), "pool_index": pool}


def _majority(predictions: np.ndarray) -> np.ndarray:
    """(draws, n) predicted labels -> (n,) the most frequent per column; a tie goes to the label
    predicted first (in the earliest draw) among the tied."""
    out = predictions[0].copy()
    for k in range(predictions.shape[1]):
        col = predictions[:, k].tolist()
        out[k] = max(dict.fromkeys(col), key=col.count)      # dict keeps first-seen order; max keeps the first
    return out


def identification_of_draws(emb, labels, galleries, queries) -> dict:
    """`identification_of_split` for each gallery of `galleries` with the same queries.

    Returns accuracy and macro_f1 (means over draws), accuracy_sd and macro_f1_sd (sample standard
    deviation over draws; NaN for one draw), accuracy_se (`binomial_se` of the mean accuracy on the
    queries), n_queries, draws, and per query (query_index order): truth, predictions (the majority
    over draws, `_majority`), draw_predictions (draws, n_queries), correct_fraction (share of draws
    right); gallery_index (every image in some draw's gallery), galleries, names."""
    runs = [identification_of_split(emb, labels, g, queries) for g in galleries]
    if not runs:
        raise ValueError("identification needs at least one gallery draw")
    acc = np.array([r["accuracy"] for r in runs])
    f1 = np.array([r["macro_f1"] for r in runs])
    truth = runs[0]["truth"]
    draw_predictions = np.stack([r["predictions"] for r in runs])

    def sd(x):
        return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")
    return {"accuracy": float(acc.mean()), "macro_f1": float(f1.mean()), "accuracy_sd": sd(acc),
            "macro_f1_sd": sd(f1), "accuracy_se": binomial_se(float(acc.mean()), len(truth)),
            "n_queries": runs[0]["n_queries"], "draws": len(runs), "query_index": runs[0]["query_index"],
            "truth": truth, "predictions": _majority(draw_predictions), "draw_predictions": draw_predictions,
            "correct_fraction": (draw_predictions == truth).mean(axis=0),
            "gallery_index": np.unique(np.concatenate([np.asarray(g, dtype=np.int64) for g in galleries])),
            "galleries": [np.asarray(g, dtype=np.int64) for g in galleries], "names": runs[0]["names"]}


def identification_of_split(emb, labels, gallery, queries) -> dict:
    """`identification` with given gallery and query row indices (the seeded split, or a published
    support/test list: modelfp.protocol_lists). Every model with a query needs a gallery image."""
    emb, labels = _embeddings(emb, labels)
    gallery, queries = np.asarray(gallery, dtype=np.int64), np.asarray(queries, dtype=np.int64)
    names = np.unique(labels[np.r_[gallery, queries]])
    lacking = sorted(set(labels[queries].tolist()) - set(labels[gallery].tolist()))
    if lacking:
        raise ValueError(f"model(s) {lacking} have queries but no gallery image")
    fp_names, fingerprints = gallery_fingerprints(emb[gallery], labels[gallery])
    predictions = fp_names[np.argmax(_l2_normalise(emb[queries]) @ fingerprints.T, axis=1)]
    truth = labels[queries]
    from sklearn.metrics import accuracy_score, f1_score
    return {"accuracy": float(accuracy_score(truth, predictions)),
            "macro_f1": float(f1_score(truth, predictions, labels=names, average="macro", zero_division=0)),
            "n_queries": int(len(queries)), "query_index": queries, "truth": truth,
            "predictions": predictions, "gallery_index": gallery, "names": names}


# ---------------------------------------------------------------------------------------------------
# Open-set rejection (the "unknown" of identification)


def open_set(emb, labels, gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1,
             neighbours: int = 0) -> dict:
    """Leave-one-model-out open-set rejection.

    Galleries and queries are split as `identification` splits them (same seed: same split), so a
    query never counts in any gallery fingerprint. For each model m in turn, m is removed from the
    gallery: the best cosine of each of m's queries over the other models' fingerprints is an
    "unknown" score; the best cosine of each other model's query over the same gallery (which holds
    its own model) is a "known" score. Pooled over all m (every query is unknown once and known
    len(models) - 1 times), returns the AUROC of known vs unknown (a fraction), the threshold that
    best separates them (`best_threshold_accuracy` with balanced classes: "known" at or above it)
    and its balanced accuracy, the score counts, and for inspection known_scores and unknown_scores.
    A score is `gallery_scores`' with `neighbours` (0: the cosine with the fingerprint, the tables').
    Needs at least 2 models. With several gallery draws (as `identification`: same pool, same
    queries) auroc, threshold and balanced_accuracy are means over the draws; the counts and
    scores are the first draw's.
    """
    emb, labels = _embeddings(emb, labels)
    pool, queries = gallery_pool(labels, gallery_size, seed, draws)
    runs = [open_set_of_split(emb, labels, g, queries, neighbours)
            for g in gallery_draws(labels, pool, gallery_size, draws, seed)]
    return {**runs[0], **{k: float(np.mean([r[k] for r in runs])) for k in ("auroc", "threshold", "balanced_accuracy")}}


def open_set_of_split(emb, labels, gallery, queries, neighbours: int = 0) -> dict:
    """`open_set` with given gallery and query row indices (as `identification_of_split`)."""
    emb, labels = _embeddings(emb, labels)
    gallery, queries = np.asarray(gallery, dtype=np.int64), np.asarray(queries, dtype=np.int64)
    names = np.unique(labels[gallery])
    if len(names) < 2:
        raise ValueError(f"open-set rejection needs at least 2 models; got {len(names)}")
    lacking = sorted(set(labels[queries].tolist()) - set(names.tolist()))
    if lacking:
        raise ValueError(f"model(s) {lacking} have queries but no gallery image")
    sims = gallery_scores(emb[queries], emb[gallery], labels[gallery], neighbours)[1]   # (queries, models)
    own = np.searchsorted(names, labels[queries])                          # each query's model column
    known, unknown = [], []
    for m in range(len(names)):
        best = np.delete(sims, m, axis=1).max(axis=1)                      # m left out of the gallery
        unknown.append(best[own == m])
        known.append(best[own != m])
    known, unknown = np.concatenate(known), np.concatenate(unknown)
    scores = np.r_[known, unknown]
    is_known = np.r_[np.ones(len(known), bool), np.zeros(len(unknown), bool)]
    accuracy, threshold = best_threshold_accuracy(scores, is_known, balanced=True)
    from sklearn.metrics import roc_auc_score
    return {"auroc": float(roc_auc_score(is_known, scores)), "threshold": threshold,
            "balanced_accuracy": accuracy, "n_known": int(len(known)), "n_unknown": int(len(unknown)),
            "known_scores": known, "unknown_scores": unknown}


# ---------------------------------------------------------------------------------------------------
# Fingerprint representation (Table X) and the table row


def cluster_scores(emb, labels) -> dict:
    """Silhouette score [56] and Davies-Bouldin index [57] of the embeddings, models as clusters.

    The paper does not name the distance. Both are computed with the Euclidean distance on
    L2-normalised embeddings: for unit vectors ||u - v||^2 = 2 - 2 cos(u, v), so distances rank exactly
    as cosine does (the attribution metric), and the DBI's centroids stay meaningful (silhouette with
    metric="cosine" would have no DBI counterpart). Needs 2 <= number of models <= n - 1.
    """
    emb, labels = _embeddings(emb, labels)
    unit = _l2_normalise(emb)
    from sklearn.metrics import davies_bouldin_score, silhouette_score
    return {"silhouette": float(silhouette_score(unit, labels, metric="euclidean")),
            "dbi": float(davies_bouldin_score(unit, labels))}


def evaluate_group(emb, labels, *, n_same: int = N_SAME_PAIRS, n_diff: int = N_DIFF_PAIRS,
                   gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1) -> dict:
    """One group's row of Tables VIII-X: accuracies, AUC and F1 in percent (x100, as the tables),
    the verification threshold as a cosine, silhouette and DBI raw; plus the open-set AUROC (percent)
    and threshold (a cosine); identification over `draws` gallery draws (`identification`)."""
    return evaluate_group_details(emb, labels, n_same=n_same, n_diff=n_diff, gallery_size=gallery_size,
                                  seed=seed, draws=draws)[0]


def evaluate_group_details(emb, labels, *, n_same: int = N_SAME_PAIRS, n_diff: int = N_DIFF_PAIRS,
                           gallery_size: int = GALLERY_SIZE, seed: int = 0, draws: int = 1) -> tuple[dict, dict, dict]:
    """(`evaluate_group`'s row, the verification, the identification): the last two for the
    per-pair and per-query files (`pair_rows`, `query_rows`)."""
    ver = verification(emb, labels, n_same, n_diff, seed)
    ide = identification(emb, labels, gallery_size, seed, draws)
    row = group_row(ver, ide, open_set(emb, labels, gallery_size, seed, draws), cluster_scores(emb, labels))
    return row, ver, ide


def group_row(ver: dict, ide: dict, ope: dict, clu: dict) -> dict:
    """The table row of `evaluate_group` from the four results (also used with published lists):
    the identification's spread over gallery draws (sd, NaN for one draw) and its binomial standard
    error (se, `binomial_se`) in percent beside it, and how many queries and draws it had."""
    return {"verification_acc": 100 * ver["accuracy"], "verification_auc": 100 * ver["auc"],
            "verification_threshold": ver["threshold"],
            "identification_acc": 100 * ide["accuracy"], "identification_f1": 100 * ide["macro_f1"],
            "identification_acc_sd": 100 * ide.get("accuracy_sd", float("nan")),
            "identification_acc_se": 100 * binomial_se(ide["accuracy"], ide["n_queries"]),
            "identification_f1_sd": 100 * ide.get("macro_f1_sd", float("nan")),
            "identification_queries": ide["n_queries"], "gallery_draws": ide.get("draws", 1),
            "openset_auroc": 100 * ope["auroc"], "openset_threshold": ope["threshold"],
            "silhouette": clu["silhouette"], "dbi": clu["dbi"]}


def query_rows(ide: dict, keys) -> list[dict]:
    """One row per query of an identification (`identification` or `identification_of_split`):
    model (its true model), key (modelfp.splits.image_key), the majority prediction, the share of
    draws it was right and each draw's prediction (pred_0, ...). keys: (model, key) of every
    embedding row, as modelfp.protocol_lists.embedded_keys gives them; (model, key) joins two
    methods' files."""
    draws = ide.get("draw_predictions", np.asarray(ide["predictions"])[None])
    correct = ide.get("correct_fraction", (draws == ide["truth"]).mean(axis=0))
    rows = []
    for k, q in enumerate(ide["query_index"]):
        model, key = keys[int(q)]
        if model != ide["truth"][k]:
            raise ValueError(f"query row {int(q)}: key {model}/{key} but label {ide['truth'][k]!r}")
        rows.append({"model": model, "key": key, "predicted": str(ide["predictions"][k]),
                     "correct_fraction": float(correct[k]), **{f"pred_{d}": str(p) for d, p in enumerate(draws[:, k])}})
    return rows


def pair_rows(ver: dict, keys) -> list[dict]:
    """One row per verification pair (`verification_of_pairs`'s i, j, same, scores): model_i, key_i,
    model_j, key_j, same (0/1), score; keys as `query_rows`."""
    return [{"model_i": keys[int(a)][0], "key_i": keys[int(a)][1], "model_j": keys[int(b)][0],
             "key_j": keys[int(b)][1], "same": int(t), "score": float(x)}
            for a, b, t, x in zip(ver["i"], ver["j"], ver["same"], ver["scores"])]


def evaluate_split_details(emb, labels, support, test, pairs, pair_score=None) -> tuple[dict, dict | None, dict, dict]:
    """One group's row (as `evaluate_group`) on given rows, as the authors' lists name them
    (modelfp.protocol_lists.locate): gallery = `support`, queries = `test`, verification on `pairs`
    (i, j, same); cluster scores on the support and test images. Verification needs both kinds of
    pair among the group's; without them its entries are NaN. Returns (row, the verification by
    `pair_score` or None, the identification, the verification), the last two for `query_rows`
    and `pair_rows`."""
    emb, labels = np.asarray(emb, dtype=np.float64), np.asarray(labels)
    i, j, same = pairs
    if same.any() and (~same).any():
        ver = verification_of_pairs(emb, i, j, same)
        own = verification_of_pairs(emb, i, j, same, pair_score) if pair_score is not None else None
    else:
        ver = {"accuracy": np.nan, "auc": np.nan, "threshold": np.nan}
        own = {"accuracy": np.nan, "auc": np.nan} if pair_score is not None else None
    ide = identification_of_split(emb, labels, support, test)
    ope = open_set_of_split(emb, labels, support, test)
    rows = np.unique(np.r_[support, test])
    clu = cluster_scores(emb[rows], labels[rows])
    return group_row(ver, ide, ope, clu), own, ide, ver


# ---------------------------------------------------------------------------------------------------
# Every group of an embeddings folder (the verb `evaluate`)

GROUPS = ("classical", "emerging")      # Table III's groups; Tables VIII-X score each and "all"


def model_groups(models) -> dict[str, list[str]]:
    """[(name, group)] -> {"classical": names, "emerging": names, "all": every name}, in the order
    given: the groups each scored on its own. Another group is an error naming the model."""
    groups = {g: [] for g in GROUPS}
    for name, group in models:
        if group not in groups:
            raise ValueError(f"test model {name}: group must be classical or emerging, not {group!r}")
        groups[group].append(name)
    groups["all"] = [n for n, _ in models]
    return groups


@dataclass
class GroupResult:
    """One group's scores: its csv row (group, models, images, then `group_row`'s columns and, with
    a pair verifier, verifier_verification_*), its per-query and per-pair rows (`query_rows`,
    `pair_rows`, each with its group; empty unless asked for), and the embeddings they came from."""
    group: str
    names: list[str]
    emb: np.ndarray
    labels: np.ndarray
    row: dict
    queries: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)


def evaluate_groups(folder, groups: dict[str, list[str]], *, n_same: int, n_diff: int, gallery_size: int,
                    seed: int, draws: int, pair_score=None, lists=None,
                    per_image: bool = False) -> Iterator[GroupResult]:
    """Score each group of `model_groups` on the embeddings folder of the embed rule, one after the
    other (yielded as scored, so a caller can plot and drop each; a group of fewer than 2 models is
    skipped with a warning). The seeded protocol (`evaluate_group_details`: n_same, n_diff,
    gallery_size, draws, seed), or with `lists` (modelfp.protocol_lists.Lists) exactly the listed
    support, test and pairs (`evaluate_split_details`); every list line is located before any group
    is scored, so a missing image stops the run whatever the groups. `pair_score` (a method's own
    verifier: modelfp.baselines.pair_verifier) also scores the same pairs. `per_image`: also the
    per-query and per-pair rows, named by image (model, key), so two methods' files join."""
    if lists is not None:
        protocol_lists.check_models(lists, groups["all"])
        keys = protocol_lists.embedded_keys(folder, groups["all"])     # read once, for every group
        protocol_lists.locate(lists, keys, groups["all"])
        log.info("evaluation lists: %d support, %d test images, %d pairs (not the seeded protocol)",
                 len(lists.support), len(lists.test), len(lists.pairs))
    for group, names in groups.items():
        if len(names) < 2:
            log.warning("group %s has %d test model(s): no metrics (need 2)", group, len(names))
            continue
        emb, labels = read_embeddings(folder, names)
        if lists is not None:
            # the rows of these models' embeddings: read_embeddings stacks them in `names` order
            group_keys = [k for k in keys if k[0] in names]
            support, test, pairs = protocol_lists.locate(lists, group_keys, names)
            row, own, ide, ver = evaluate_split_details(emb, labels, support, test, pairs, pair_score)
        else:
            row, ver, ide = evaluate_group_details(emb, labels, n_same=n_same, n_diff=n_diff,
                                                   gallery_size=gallery_size, seed=seed, draws=draws)
            own = None if pair_score is None else verification(emb, labels, n_same, n_diff, seed,
                                                                pair_score=pair_score)
            group_keys = None
        result = GroupResult(group, names, emb, labels, row)
        if per_image:
            group_keys = group_keys or protocol_lists.embedded_keys(folder, names)
            result.queries = [{"group": group, **r} for r in query_rows(ide, group_keys)]
            if "scores" in ver:
                result.pairs = [{"group": group, **r} for r in pair_rows(ver, group_keys)]
        if own is not None:
            row.update(verifier_verification_acc=100 * own["accuracy"], verifier_verification_auc=100 * own["auc"])
        result.row = {"group": group, "models": len(names), "images": len(labels), **row}
        yield result


# ---------------------------------------------------------------------------------------------------
# t-SNE plot (Figures 9 and 15)


def plot_tsne(emb, labels, path, title: str = "", seed: int = 0, perplexity: float | None = None,
              markers=None) -> np.ndarray:
    """t-SNE (scikit-learn, init="pca") of the L2-normalised embeddings, one colour per model.

    perplexity None: min(30, (n - 1) / 3), scikit-learn's default made valid for small sets.
    markers: optional per-point group names (e.g. "fixed"/"varied" generation configurations, Fig. 15,
    or base model/LoRA variant, Fig. 9), drawn as marker shapes with their own legend.
    Saves a png at `path`; if `path` ends in .pdf, saves the pdf there and a png beside it.
    Returns the (n, 2) t-SNE coordinates.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from .figures import save_figure

    emb, labels = _embeddings(emb, labels)
    n = len(emb)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points; got {n}")
    if perplexity is None:
        perplexity = min(TSNE_PERPLEXITY, (n - 1) / 3)
    if not 0 < perplexity < n:
        raise ValueError(f"perplexity must be in (0, n={n}); got perplexity={perplexity}")
    groups = np.asarray(markers) if markers is not None else np.full(n, "", dtype=object)
    if groups.shape != (n,):
        raise ValueError(f"markers must have one entry per point ({n}); got shape {groups.shape}")

    from sklearn.manifold import TSNE

    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        _l2_normalise(emb))

    names, group_names = np.unique(labels), list(dict.fromkeys(groups.tolist()))
    if len(group_names) > len(MARKERS):
        raise ValueError(f"at most {len(MARKERS)} marker groups; got {len(group_names)}")
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "turbo")
    colours = [cmap(k if len(names) <= 20 else k / max(len(names) - 1, 1)) for k in range(len(names))]
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for colour, name in zip(colours, names):
        for marker, group in zip(MARKERS, group_names):
            sel = (labels == name) & (groups == group)
            if sel.any():
                ax.scatter(coords[sel, 0], coords[sel, 1], s=12, color=colour, marker=marker, alpha=0.8,
                           linewidths=0)
    handles = [Line2D([], [], ls="", marker="o", color=c, label=str(name)) for c, name in zip(colours, names)]
    legend = ax.legend(handles=handles, title="model", fontsize=6, title_fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.01, 1.0), ncol=1 + len(names) // 25)
    if markers is not None:
        ax.add_artist(legend)   # keep the model legend when adding the marker legend
        ax.legend(handles=[Line2D([], [], ls="", marker=m, color="0.3", label=str(g))
                           for m, g in zip(MARKERS, group_names)], fontsize=7, loc="lower left",
                  bbox_to_anchor=(1.01, 0.0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        save_figure(fig, path)
        save_figure(fig, path.with_suffix(".png"), dpi=150)
    else:
        save_figure(fig, path, dpi=150)
    plt.close(fig)
    return coords
