"""Per-model spectrum representations, Step I of FFD (paper Section III-C, Figure 5a).

A model is represented by the spectra of N of its images: each image's noise residual (the
denoiser's estimate, `modelfp.denoise.noise_residual`) is reduced to a 1D power spectrum by
azimuthal integration (`modelfp.spectrum.reduced_spectrum`), and the N spectra are averaged.
Per model we keep:
- `log`: the mean of the per-image log10 spectra over the first N images, for every N of a sweep
  (Table XI asks how FFD depends on N; prefix means of one pass give all of them);
- `power`: the mean linear power over all images (high-frequency energy ratios, Appendix A);
- `spec2d`: the centred mean 2D log-magnitude spectrum of the residuals (Figure 10).

For a synthetic model the images are M_k(pool images) (the feed, Eq. 11); for a real or test model
they are its image folder, described by an `ImageSet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .feed import SyntheticZoo
from .pools import list_images, load_image, to_unit_range
from .spectrum import mean_spectrum_2d, reduced_spectrum

LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class ImageSet:
    """The images of one model to attribute: a folder, the model's name and its group.

    group: "classical" or "emerging" (Table III); family: GAN, VAE, flow, diffusion, ...
    """
    name: str
    path: str
    group: str
    family: str = ""
    note: str = ""


def load_image_set(image_set: ImageSet, n: int, size: int) -> torch.Tensor:
    """The first n images (sorted by path) of a model's folder as float (n,3,size,size) in [-1,1].

    Spectra compare at one size, and resizing would filter away the fingerprint, so an image at
    least `size` on both sides is centre-cropped; a smaller one is resized up (the paper's policy
    for small test images).
    """
    paths = list_images(image_set.path)
    if len(paths) < n:
        raise ValueError(f"test model {image_set.name!r}: {image_set.path} holds {len(paths)} "
                         f"images, {n} are needed; add images or lower spectra.n_images")
    out = torch.empty(n, 3, size, size)
    for i, path in enumerate(paths[:n]):
        img = load_image(path, None)
        h, w = img.shape[1:]
        if h >= size and w >= size:
            top, left = (h - size) // 2, (w - size) // 2
            img = img[:, top:top + size, left:left + size]
        else:
            img = load_image(path, size)
        out[i] = to_unit_range(img)
    return out


@torch.no_grad()
def spectra_of_images(images: torch.Tensor, residual, ns=None, batch_size: int = 64) -> dict:
    """images (N,3,H,W) in [-1,1] of one model -> {"log": (len(ns), d), "power": (d,), "spec2d": (H,W)}.

    ns: the image counts whose prefix means are returned in "log" (default: [N]); each must be <= N.
    """
    ns = list(ns or [len(images)])
    if max(ns) > len(images) or min(ns) < 1:
        raise ValueError(f"need 1 <= N <= {len(images)} images for the sweep {ns}")
    logs, powers, spec2d = [], [], 0.0
    for chunk in images.split(batch_size):
        r = residual(chunk)
        power = reduced_spectrum(r, log=False)
        powers.append(power)
        logs.append(torch.log10(power.clamp_min(LOG_FLOOR)))
        spec2d = spec2d + mean_spectrum_2d(r) * len(chunk)
    logs = torch.cat(logs)
    prefix = torch.cumsum(logs, 0)
    return {"log": torch.stack([prefix[n - 1] / n for n in ns]),
            "power": torch.cat(powers).mean(0), "spec2d": spec2d / len(images)}


@torch.no_grad()
def synthetic_spectra(zoo: SyntheticZoo, images: torch.Tensor, residual, ns=None,
                      batch_size: int = 64, progress=None) -> dict:
    """Step I for every model of a zoo on the same real images: the keys of `spectra_of_images`,
    each stacked over models (dim 1 for "log", dim 0 otherwise).

    The same pool images go through every model, so differences between models are differences
    of their fingerprints, not of content.
    """
    per_model = []
    for k in range(len(zoo)):
        fake = torch.cat([zoo(chunk, torch.full((len(chunk),), k))
                          for chunk in images.split(batch_size)])
        per_model.append(spectra_of_images(fake, residual, ns, batch_size))
        if progress:
            progress(k + 1, len(zoo))
    return stack_models(per_model)


def stack_models(per_model: list[dict]) -> dict:
    """`spectra_of_images` results of several models -> "log" (len(ns), n_models, d), "power"
    (n_models, d), "spec2d" (n_models, H, W)."""
    return {"log": torch.stack([s["log"] for s in per_model], dim=1),
            "power": torch.stack([s["power"] for s in per_model]),
            "spec2d": torch.stack([s["spec2d"] for s in per_model])}
