"""The extractor's training objective (paper Eq. 14) and the P x K batches it needs.

L = CE(h_k, y_k) + Triplet(h_a, h_p, h_n): cross-entropy of the classification head over the
synthetic models plus the batch-hard triplet loss of Hermans et al. 2017 ("In defense of the
triplet loss", the paper's [31]) on Euclidean distances of the features, margin 0.3.

Batch-hard needs a positive for every anchor. The authors' trainer drew one model per image
uniformly, so with thousands of models nearly no anchor had a positive and the triplet term did
nothing (official-code-facts.md). `PKSampler` draws P models and K images of each, so every anchor
has K - 1 positives and (P - 1) K negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MARGIN = 0.3


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


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """mean over anchors of relu(margin + max_positive d(a, p) - min_negative d(a, n)), Euclidean d.

    Anchors without a positive or without a negative in the batch are left out of the mean (0 when
    none is left).
    """
    d = torch.cdist(features, features)
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


def attribution_loss(features, logits, labels, margin: float = MARGIN):
    """(total, ce, triplet) of Eq. 14."""
    ce = F.cross_entropy(logits, labels)
    tri = batch_hard_triplet(features, labels, margin)
    return ce + tri, ce, tri
