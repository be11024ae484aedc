"""Marra et al. 2019, "Do GANs leave artificial fingerprints?": training-free PRNU-style
fingerprints.

An image's residual is r = x - denoise(x) (x in [-1, 1]); a model's fingerprint is the mean
residual of its training images; an image is scored against a fingerprint by the normalised
cross-correlation, i.e. the Pearson correlation of the pixels of its residual and the fingerprint.
Marra et al. used a standard image denoiser; we reuse our DnCNN (`modelfp.denoise`), passed to
`build` as `denoiser` (any module with `denoise(x)` on [-1, 1] images: a loaded DnCNN, or a simple
filter in tests). Nothing is learned: `train` only averages residuals, `steps` and the seed are
unused.

Zero-shot use (paper IV-A): `embed` returns each image's residual flattened and standardised
(zero mean, unit norm), so the cosine of two embeddings IS the Pearson correlation of the two
residuals: 1:1 verification correlates two images' residuals, and 1:N identification against the
mean embedding of a gallery is the correlation with that gallery's fingerprint (the mean of
standardised residuals, up to the standardisation of each image).
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn

from ..pools import as_unit_range
from ..testbed.common import resolve
from .common import labelled

DEFAULTS = {
    "batch": 16,   # images per denoiser pass (memory only)
}


class Marra(nn.Module):
    """The denoiser and, after `train`, one fingerprint (mean residual) per class."""

    def __init__(self, image_size: int, classes: int, denoiser: nn.Module, batch: int):
        super().__init__()
        self.image_size, self.classes, self.batch = image_size, classes, batch
        self.denoiser = denoiser
        self.register_buffer("fingerprints", torch.zeros(classes, 3, image_size, image_size))

    @torch.no_grad()
    def residual(self, images: torch.Tensor, device) -> torch.Tensor:
        """x - denoise(x) of uint8 or [-1, 1] images, in [-1, 1] units: float32 on the CPU."""
        was_training = self.denoiser.training
        self.denoiser.eval()
        try:
            parts = []
            for i in range(0, len(images), self.batch):
                x = as_unit_range(images[i:i + self.batch].to(device))
                parts.append((x - self.denoiser.denoise(x)).float().cpu())
        finally:
            self.denoiser.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, 3, self.image_size, self.image_size)


def build(image_size: int, classes: int, seed: int = 0, *, denoiser: nn.Module, **hp) -> Marra:
    """The training-free state: the denoiser (required) and zeroed fingerprints; seed unused."""
    hp = resolve("marra", DEFAULTS, hp)
    if not hasattr(denoiser, "denoise"):
        raise TypeError(f"marra: the denoiser must have a denoise(x) method, got {type(denoiser)}")
    return Marra(image_size, classes, denoiser, int(hp["batch"]))


def train(model: Marra, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, state_path=None, stopping=None, **hp):
    """Each class's fingerprint := the mean residual of its images. Returns (model, info).
    state_path and stopping are accepted and unused: one pass over the images, no steps to resume
    or stop (its history is empty)."""
    hp = resolve("marra", DEFAULTS, hp)
    start = time.perf_counter()
    images, _ = labelled("marra", images_by_class, model.image_size)
    if len(images_by_class) != model.classes:
        raise ValueError(f"marra: built for {model.classes} classes, got {len(images_by_class)}")
    for c, x in enumerate(images_by_class):
        model.fingerprints[c] = model.residual(x, device).mean(0).to(model.fingerprints.device)
        if progress:
            progress(c + 1, 0.0)
    return model, {"method": "marra", "images": len(images), "classes": model.classes,
                   "seconds": time.perf_counter() - start, **hp, "history": []}


def standardise(r: torch.Tensor) -> torch.Tensor:
    """Rows of r flattened, centred and scaled to unit norm: their dot product is Pearson's r."""
    r = r.flatten(1).double()
    r = r - r.mean(1, keepdim=True)
    return (r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)).float()


def embed(model: Marra, images: torch.Tensor, device) -> torch.Tensor:
    """(N, 3*S*S) standardised residuals: cosine of two rows = Pearson correlation of residuals."""
    return standardise(model.residual(images, device))


def correlate(model: Marra, images: torch.Tensor, device) -> torch.Tensor:
    """(N, classes): the Pearson correlation of each image's residual with each fingerprint
    (Marra et al.'s closed-set score)."""
    return embed(model, images, device) @ standardise(model.fingerprints.cpu()).T
