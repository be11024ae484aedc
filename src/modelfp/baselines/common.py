"""What the baseline modules share: the labelled training set built from images_by_class and its
held-out part (`fit_and_heldout`), class-balanced and uniform batches drawn from a CPU
torch.Generator, random crops, the step learning-rate schedule, batched, deterministic embedding,
the resumable training state (`TrainingState`) and held-out early stopping with the learning curve
(`Stopping`, `Monitor`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import checkpoints
from ..pools import as_unit_range

log = logging.getLogger(__name__)

EMBED_BATCH = 64   # images per forward pass in embed (memory only: results do not depend on it)
STATE_FORMAT = "modelfp.baseline-state/1"
STATE_SAVES = 10   # states written per phase: every max(1, steps // STATE_SAVES) steps
HOLDOUT_SEED = 7_000_003   # offset of the held-out split's generators from the training seed


def labelled(name: str, images_by_class, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """images_by_class (one uint8 (n_c,3,S,S) tensor per class, in label order) as one image tensor
    and its int64 labels; a clear error for an empty class, a wrong dtype or a wrong size."""
    if len(images_by_class) < 2:
        raise ValueError(f"{name}: needs at least 2 classes, got {len(images_by_class)}")
    for c, x in enumerate(images_by_class):
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3 or len(x) == 0:
            raise ValueError(f"{name}: class {c} must be a non-empty uint8 (n,3,S,S) tensor, got "
                             f"{x.dtype} {tuple(x.shape)}")
        if tuple(x.shape[2:]) != (image_size, image_size):
            raise ValueError(f"{name}: class {c} has {tuple(x.shape[2:])} images, the model "
                             f"takes {image_size}x{image_size} (resize before training)")
    labels = torch.cat([torch.full((len(x),), c, dtype=torch.long)
                        for c, x in enumerate(images_by_class)])
    return torch.cat(list(images_by_class)), labels


def hold_out(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit, heldout) index tensors, both sorted, disjoint, together all of labels (sorted by class):
    round(fraction * n_c) images of each class c, drawn by its own generator (seed, c), at least 2
    and leaving at least 2 (so each part has same-class pairs), go to the held-out part; classes of
    fewer than 4 images, or fraction 0, lend none."""
    if not 0 <= fraction < 1:
        raise ValueError(f"baselines.holdout must be in [0, 1), got {fraction}")
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    held = []
    for c, n in enumerate(counts.tolist()):
        k = min(max(2, round(fraction * n)), n - 2) if fraction > 0 else 0
        if k >= 2:
            gen = torch.Generator().manual_seed(seed + HOLDOUT_SEED + c)
            held.append(int(starts[c]) + torch.randperm(n, generator=gen)[:k])
    held = torch.sort(torch.cat(held)).values if held else torch.empty(0, dtype=torch.long)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[held] = False
    return keep.nonzero().flatten(), held


def fit_and_heldout(name: str, images_by_class, image_size: int, holdout: float, seed: int):
    """`labelled` images split by `hold_out`: (fit images, fit labels, held-out images, held-out
    labels), labels sorted by class in both. Only the fit part is trained on; the held-out part
    (of the same training side, never the evaluation side) only chooses when to stop."""
    images, labels = labelled(name, images_by_class, image_size)
    fit, held = hold_out(labels, holdout, seed)
    return images[fit], labels[fit], images[held], labels[held]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Closed-set accuracy of the argmax of logits (N, C) against labels (N,), in [0, 1]; None
    for no images (nothing held out)."""
    if len(labels) == 0:
        return None
    return (logits.argmax(1) == labels.to(logits.device)).float().mean().item()


def nearest_centroid_accuracy(reference: torch.Tensor, ref_labels: torch.Tensor, queries: torch.Tensor,
                              labels: torch.Tensor) -> float | None:
    """Accuracy of the nearest class centroid (cosine) of the reference embeddings for each query
    embedding: the closed-set score of a metric-learning method (no classifier of its own); None
    for no queries."""
    if len(labels) == 0:
        return None
    ref = F.normalize(reference.float(), dim=1)
    centroids = F.normalize(torch.stack([ref[ref_labels == c].mean(0) for c in range(int(ref_labels.max()) + 1)]),
                            dim=1)
    return accuracy(F.normalize(queries.float(), dim=1) @ centroids.T, labels)


def uniform_batch(labels: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """batch_size indices drawn uniformly (with replacement) from all training images."""
    return torch.randint(len(labels), (batch_size,), generator=gen)


def balanced_batch(labels: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """batch_size indices, classes taking turns (0, 1, ..., C-1, 0, ...), each image drawn uniformly
    (with replacement) within its class: class-balanced batches."""
    classes = int(labels.max()) + 1
    starts = torch.searchsorted(labels, torch.arange(classes))   # labels are sorted by class
    counts = torch.bincount(labels, minlength=classes)
    want = torch.arange(batch_size) % classes
    offset = (torch.rand(batch_size, generator=gen) * counts[want]).long()
    return starts[want] + offset.clamp(max=counts[want] - 1)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2 (decided on the CPU generator)."""
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crops(x: torch.Tensor, size: int, per_image: int, gen: torch.Generator) -> torch.Tensor:
    """per_image random size x size crops of each image of x (B,C,H,W): (B * per_image, C, size,
    size), the crops of image b at rows b*per_image ... (b+1)*per_image - 1."""
    b, _, h, w = x.shape
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the {h}x{w} images")
    top = torch.randint(h - size + 1, (b * per_image,), generator=gen).tolist()
    left = torch.randint(w - size + 1, (b * per_image,), generator=gen).tolist()
    return torch.stack([x[i // per_image, :, t:t + size, l:l + size]
                        for i, (t, l) in enumerate(zip(top, left))])


def resize_images(x: torch.Tensor, side: int) -> torch.Tensor:
    """Float images (B,3,H,W) resized to side x side (bilinear, antialiased when shrinking); the
    same tensor when they already have that size."""
    if tuple(x.shape[-2:]) == (side, side):
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def step_lr(lr: float, step: int, every: int, gamma: float) -> float:
    """StepLR: lr * gamma^(step // every)."""
    return lr * gamma ** (step // every)


@torch.no_grad()
def embed_batches(model: torch.nn.Module, images: torch.Tensor, device,
                  features: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """features(x) of uint8 images in [-1, 1] units, in eval mode (restored after), in batches of
    EMBED_BATCH: float32 (N, D) on the CPU."""
    was_training = model.training
    model.eval()
    try:
        parts = [features(as_unit_range(images[i:i + EMBED_BATCH].to(device))).float().cpu()
                 for i in range(0, len(images), EMBED_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, 0)


# ---------------------------------------------------------------------------------------------
# Resumable training state (train-baseline --state)

class TrainingState:
    """A trainer's resumable state file, written atomically (checkpoints.save) every
    max(1, steps // STATE_SAVES) steps of each phase: the phase and its steps done, the state of
    its `parts` (modules, optimizers, LossLogs, the CPU torch.Generator), plain `extra` values of
    its loop, the results of the phases finished before it, and the run's fingerprint. A file of
    the same run resumes it bit-identically (same machine); one of another run is refused. Without
    a path nothing is read or written. The caller deletes the file once the trained file is out."""

    def __init__(self, path=None, config: dict | None = None):
        self.path = Path(path) if path else None
        self.fingerprint = json.dumps(config, sort_keys=True, default=str)
        self.saved, self.results = None, {}
        if self.path and self.path.exists():
            self.saved = checkpoints.load(self.path, STATE_FORMAT, "baseline training state")
            if self.saved["fingerprint"] != self.fingerprint:
                mine, theirs = json.loads(self.fingerprint), json.loads(self.saved["fingerprint"])
                differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
                raise ValueError(f"{self.path}: training state of another configuration (its "
                                 f"{', '.join(differ)} differ); delete it to start over")
            self.results = self.saved["results"]

    def phase(self, name: str, run: Callable[[], dict], **parts) -> dict:
        """The result of phase `name`: run()'s, or, when the saved state was written after the
        phase, its recorded result, with `parts` loaded from that state (what the phase made)."""
        if name in self.results:
            _load(parts, self.saved["parts"])
        else:
            self.results[name] = run()
        return self.results[name]

    def resume(self, phase: str, parts: dict, **extra) -> tuple[int, list]:
        """(steps of `phase` done, the values of `extra`): the saved ones, with `parts` loaded, when
        the saved state is of this phase; else 0 and the defaults given."""
        if self.saved is None or self.saved["phase"] != phase:
            return 0, list(extra.values())
        _load(parts, self.saved["parts"])
        return self.saved["step"], [self.saved["extra"][k] for k in extra]

    def checkpoint(self, phase: str, done: int, steps: int, parts: dict, **extra) -> None:
        """After `done` of the phase's `steps` steps: the state written, when one is due."""
        if self.path and done % max(1, steps // STATE_SAVES) == 0:
            checkpoints.save({"format": STATE_FORMAT, "fingerprint": self.fingerprint, "phase": phase,
                              "step": done, "results": self.results, "extra": extra,
                              "parts": {k: p.get_state() if isinstance(p, torch.Generator) else p.state_dict()
                                        for k, p in parts.items()}}, self.path)


def _load(parts: dict, states: dict) -> None:
    for key, part in parts.items():
        (part.set_state if isinstance(part, torch.Generator) else part.load_state_dict)(states[key])


def training_state(path, method: str, hp: dict, images_by_class, steps: int, batch_size: int,
                   seed: int, stopping: Stopping | None = None) -> TrainingState:
    """The state file of a baseline's run, its fingerprint what makes the run: the method, hp,
    steps, batch size, seed, the early stopping and the shape of each class's images (classes,
    counts, image size)."""
    return TrainingState(path, {"method": method, "hp": hp, "steps": steps, "batch_size": batch_size,
                                "seed": seed, "stopping": asdict(stopping or Stopping()),
                                "images": [list(x.shape) for x in images_by_class]})


# ---------------------------------------------------------------------------------------------
# Held-out early stopping and the learning curve (train-baseline --history)

@dataclass(frozen=True)
class Stopping:
    """Held-out early stopping (baselines.holdout, a recipe's eval_every and patience): `holdout`
    of each class's training images are held out of the fit (`hold_out`); every `eval_every` steps
    of the phase that learns the attribution task, and at its last step, their closed-set accuracy
    is measured; the weights of the best evaluation are kept, and training stops after `patience`
    evaluations without improvement, else at the recipe's steps (the maximum). eval_every None
    (the default): nothing held out, no evaluation, every step runs."""
    holdout: float = 0.0
    eval_every: int | None = None
    patience: int | None = None

    def __post_init__(self):
        if (self.eval_every is None) != (self.patience is None):
            raise ValueError("early stopping needs both eval_every and patience (or neither)")
        if self.eval_every is not None and (int(self.eval_every) < 1 or int(self.patience) < 1):
            raise ValueError(f"eval_every and patience must be >= 1, got {self.eval_every} and {self.patience}")
        if not 0 <= float(self.holdout) < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")

    @property
    def fraction(self) -> float:
        """The share of each class held out: none without evaluations."""
        return 0.0 if self.eval_every is None else float(self.holdout)


class Monitor:
    """A training's learning curve and its early stopping. `rows`: one every eval_every steps of
    each phase and at its last step (step, mean training loss since the previous row, held-out
    accuracy or None, phase). A phase `start`ed with a score (() -> held-out accuracy) is early-
    stopped: `after` says when to stop, `finish` loads the best evaluation's weights. Resumable as
    a part of a TrainingState (state_dict / load_state_dict): a killed and resumed run has the
    same rows and stops where one run does."""

    def __init__(self, stopping: Stopping | None = None):
        stopping = stopping or Stopping()
        self.every, self.patience = stopping.eval_every, stopping.patience
        self.rows = []
        self.start("", 0)

    def start(self, phase: str, steps: int, model: torch.nn.Module | None = None,
              score: Callable[[], float] | None = None) -> None:
        """A new phase of (at most) `steps` steps; with score, early-stopped on it (model: whose
        weights are kept). The score must not touch the training's generator or its modes."""
        self.phase, self.steps, self.model, self.score = phase, steps, model, score
        self.best = self.best_step = self.best_weights = None
        self.since, self.losses, self.done = 0, [], 0

    def after(self, done: int, loss: float) -> bool:
        """Step `done` of the phase ran with training loss `loss`: True when training should stop."""
        self.done = done
        self.losses.append(float(loss))
        if self.every is None or (done % self.every and done != self.steps):
            return False
        acc = None if self.score is None else self.score()   # None: nothing held out
        self.rows.append({"step": done, "loss": sum(self.losses) / len(self.losses), "heldout_acc": acc,
                          "phase": self.phase})
        self.losses = []
        if acc is None:
            return False
        if self.best is None or acc > self.best:
            self.best, self.best_step, self.since = acc, done, 0
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.since += 1
        log.info("  %s step %d: held-out accuracy %.4f (best %.4f at step %d)", self.phase, done, acc,
                 self.best, self.best_step)
        return self.since >= self.patience

    def finish(self) -> dict:
        """The phase's stopping info (steps_run, best_step, heldout_acc, stopped_early); the best
        evaluation's weights loaded into the model."""
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            self.best_weights = None
        return {"steps_run": self.done, "best_step": self.best_step, "heldout_acc": self.best,
                "stopped_early": self.done < self.steps}

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("rows", "best", "best_step", "best_weights", "since", "losses", "done")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self.rows, self.losses = list(self.rows), list(self.losses)
