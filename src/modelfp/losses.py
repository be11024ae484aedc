"""The extractor's training objective (paper Eq. 14) and the P x K batches it needs.

L = CE(h_k, y_k) + Triplet(h_a, h_p, h_n): cross-entropy of the classification head over the
synthetic models plus the batch-hard triplet loss of Hermans et al. 2017 ("In defense of the
triplet loss", the paper's [31]) on Euclidean distances of the features, margin 0.3.

Batch-hard needs a positive for every anchor. The authors' trainer drew one model per image
uniformly, so with thousands of models nearly no anchor had a positive and the triplet term did
nothing (official-code-facts.md). `PKSampler` draws P models and K images of each, so every anchor
has K - 1 positives and (P - 1) K negatives.

The synthetic models are (architecture, seed) pairs, and uniform P x K batches almost never hold two
models of one architecture, so the triplet loss never practises telling same-design models apart.
`SameDesignSampler` (config `extractor.sampler: same_design`) draws P // S architectures and S seeds
of each instead, so every batch holds same-design negatives. `batch_hard_triplet` measures Euclidean
distance (the paper's) or, as an option, the cosine distance of L2-normalised features (what the
evaluation compares).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MARGIN = 0.3
SAMPLERS = ("uniform", "same_design")
DISTANCES = ("euclidean", "cosine")


class PKSampler:
    """Model indices for batches of P distinct models x K images each (length P*K, model-major).

    Models are taken from a seeded random permutation, P at a time, and a new permutation starts
    when fewer than P remain unused, so over any ceil(n / P) + 1 consecutive batches every model
    appears, and no model appears twice in a batch.
    """

    def __init__(self, n_models: int, p: int, k: int, seed: int):
        if n_models < 2 or not 2 <= p <= n_models or k < 2:
            raise ValueError(f"P x K sampling needs 2 <= P <= models and K >= 2 (so every anchor has "
                             f"a positive and a negative); got {n_models} models, P={p}, K={k}")
        self.n, self.p, self.k = n_models, p, k
        self.gen = torch.Generator().manual_seed(seed)
        self._queue = torch.empty(0, dtype=torch.long)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if len(self._queue) < self.p:
            fresh = torch.randperm(self.n, generator=self.gen)
            # the leftovers go first, but never twice in one batch
            fresh = fresh[~torch.isin(fresh, self._queue)]
            self._queue = torch.cat([self._queue, fresh])
        models, self._queue = self._queue[:self.p], self._queue[self.p:]
        return models.repeat_interleave(self.k)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "queue": self._queue.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self._queue = state["queue"].clone()


class SameDesignSampler:
    """Model indices for batches of D = P // S designs x S distinct models of each x K images each
    (length D*S*K, model-major, a design's models adjacent), so every batch holds same-design negatives.

    `designs[i]` names model i's design (its architecture id); S is clipped to the smallest design's
    model count (`self.s`; 1 when some design has a single model, e.g. known models each their own
    design: then it is P x K over designs), and D to the number of designs. Designs are taken from a
    seeded random permutation like `PKSampler`'s models (every design within ceil(designs / D) + 1
    consecutive batches); each design keeps its own queue of its models, S at a time, so a design's
    every model is drawn within ceil(models of it / S) + 1 of its draws; no model twice in a batch.
    """

    def __init__(self, designs: list[str], p: int, k: int, s: int, seed: int):
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(designs):
            groups.setdefault(d, []).append(i)
        self.groups = [torch.tensor(g) for g in groups.values()]
        if s < 1 or k < 2:
            raise ValueError(f"same-design sampling needs seeds per design S >= 1 and K >= 2; got S={s}, K={k}")
        self.s = min(s, min(len(g) for g in self.groups))
        self.d = min(p // self.s, len(self.groups))
        if self.d * self.s < 2:
            raise ValueError(f"same-design sampling needs at least 2 models per batch (so every anchor has a "
                             f"negative); got {len(designs)} models of {len(self.groups)} designs, P={p}, S={s}")
        self.k = k
        self.gen = torch.Generator().manual_seed(seed)
        self._queue = torch.empty(0, dtype=torch.long)
        self._members = [torch.empty(0, dtype=torch.long) for _ in self.groups]

    def __iter__(self):
        return self

    @staticmethod
    def _take(queue: torch.Tensor, pool: torch.Tensor, n: int, gen) -> tuple[torch.Tensor, torch.Tensor]:
        """n items from the front of `queue`, refilled with a permutation of `pool` (leftovers first,
        never twice in one take) when fewer than n remain; (taken, rest)."""
        if len(queue) < n:
            fresh = pool[torch.randperm(len(pool), generator=gen)]
            queue = torch.cat([queue, fresh[~torch.isin(fresh, queue)]])
        return queue[:n], queue[n:]

    def __next__(self) -> torch.Tensor:
        chosen, self._queue = self._take(self._queue, torch.arange(len(self.groups)), self.d, self.gen)
        models = []
        for g in chosen.tolist():
            taken, self._members[g] = self._take(self._members[g], self.groups[g], self.s, self.gen)
            models.append(taken)
        return torch.cat(models).repeat_interleave(self.k)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "queue": self._queue.clone(),
                "members": [m.clone() for m in self._members]}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self._queue = state["queue"].clone()
        self._members = [m.clone() for m in state["members"]]


def make_sampler(kind: str, designs: list[str], p: int, k: int, s: int, seed: int):
    """The batch sampler of `extractor.sampler`: "uniform" (`PKSampler`, P of all models, the
    paper's) or "same_design" (`SameDesignSampler`, S models of each of P // S designs)."""
    if kind == "uniform":
        return PKSampler(len(designs), min(p, len(designs)), k, seed)
    if kind == "same_design":
        return SameDesignSampler(designs, p, k, s, seed)
    raise ValueError(f"extractor sampler must be one of {SAMPLERS}, not {kind!r}")


def pairwise_distance(features: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """(N, N) distances: Euclidean, or cosine (1 - cos, of L2-normalised features; in [0, 2])."""
    if distance == "euclidean":
        return torch.cdist(features, features)
    if distance == "cosine":
        f = F.normalize(features, dim=1)
        return (1 - f @ f.T).clamp_min(0)
    raise ValueError(f"triplet distance must be one of {DISTANCES}, not {distance!r}")


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN,
                       distance: str = "euclidean") -> torch.Tensor:
    """mean over anchors of relu(margin + max_positive d(a, p) - min_negative d(a, n)), d Euclidean
    (the paper's) or cosine (`pairwise_distance`).

    Anchors without a positive or without a negative in the batch are left out of the mean (0 when
    none is left).
    """
    d = pairwise_distance(features, distance)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return features.sum() * 0.0
    hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
    return F.relu(margin + hardest_pos - hardest_neg)[valid].mean()


def attribution_loss(features, logits, labels, margin: float = MARGIN, distance: str = "euclidean"):
    """(total, ce, triplet) of Eq. 14."""
    ce = F.cross_entropy(logits, labels)
    tri = batch_hard_triplet(features, labels, margin, distance)
    return ce + tri, ce, tri
