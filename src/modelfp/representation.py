"""Per-model spectrum representations, Step I of FFD (paper Section III-C, Figure 5a).

A model is represented by the spectra of N of its images: each image's noise residual (the
denoiser's estimate, `modelfp.denoise.noise_residual`) is reduced to a 1D power spectrum by
azimuthal integration (`modelfp.spectrum.reduced_spectrum`), and the N spectra are averaged.
Two averages are kept per model: the mean of the per-image log10 spectra (`log`, the FFD
representation, as Durall et al. compare log power) and the mean linear power (`power`, for
high-frequency energy ratios).

For a synthetic model the images are M_k(pool images) (the feed, Eq. 11); for a real or test model
they are its image folder, described by an `ImageSet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .feed import SyntheticZoo
from .spectrum import reduced_spectrum


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


@torch.no_grad()
def spectra_of_images(images: torch.Tensor, residual, batch_size: int = 64) -> dict:
    """images (N,3,H,W) in [-1,1] of one model -> {"log": (d,), "power": (d,)} mean spectra."""
    logs, powers = [], []
    for chunk in images.split(batch_size):
        power = reduced_spectrum(residual(chunk), log=False)
        powers.append(power)
        logs.append(torch.log10(power.clamp_min(1e-12)))
    return {"log": torch.cat(logs).mean(0), "power": torch.cat(powers).mean(0)}


@torch.no_grad()
def synthetic_spectra(zoo: SyntheticZoo, images: torch.Tensor, residual, batch_size: int = 64,
                      progress=None) -> dict:
    """Step I for every model of a zoo on the same N real images: {"log", "power"}: (n_models, d).

    The same pool images go through every model, so differences between models are differences
    of their fingerprints, not of content.
    """
    out = {"log": [], "power": []}
    for k in range(len(zoo)):
        fake = torch.cat([zoo(chunk, torch.full((len(chunk),), k)) for chunk in images.split(batch_size)])
        spec = spectra_of_images(fake, residual, batch_size)
        for key in out:
            out[key].append(spec[key])
        if progress:
            progress(k + 1, len(zoo))
    return {key: torch.stack(v) for key, v in out.items()}
