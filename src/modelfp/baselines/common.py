"""What the baseline modules share: the labelled training set built from images_by_class, class-
balanced and uniform batches drawn from a CPU torch.Generator, random crops, the step learning-rate
schedule, batched, deterministic embedding, and the resumable training state (`TrainingState`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from .. import checkpoints
from ..pools import as_unit_range

EMBED_BATCH = 64   # images per forward pass in embed (memory only: results do not depend on it)
STATE_FORMAT = "modelfp.baseline-state/1"
STATE_SAVES = 10   # states written per phase: every max(1, steps // STATE_SAVES) steps


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
                   seed: int) -> TrainingState:
    """The state file of a baseline's run, its fingerprint what makes the run: the method, hp,
    steps, batch size, seed and the shape of each class's images (classes, counts, image size)."""
    return TrainingState(path, {"method": method, "hp": hp, "steps": steps, "batch_size": batch_size,
                                "seed": seed, "images": [list(x.shape) for x in images_by_class]})
