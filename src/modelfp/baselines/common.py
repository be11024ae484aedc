"""What the baseline modules share: the labelled training set built from images_by_class, class-
balanced and uniform batches drawn from a CPU torch.Generator, random crops, the step learning-rate
schedule, and batched, deterministic embedding."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..pools import as_unit_range

EMBED_BATCH = 64   # images per forward pass in embed (memory only: results do not depend on it)


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
