"""Fourier views of images and noise residuals: the extractor's input and the spectra of Section III-C.

Everything here is a batched torch transform over the last two dims (H, W) that runs on whatever
device its input lives on.

- `fft_magnitude`: the extractor input, per-channel |FFT2| (the authors' code: no log, no shift).
- `reduced_spectrum`: the reduced 1D power spectrum of FFD Step I (paper Sec. III-C, following
  Durall et al. 2020): power spectrum of the noise residual, averaged over colour channels, then
  azimuthally averaged over rings of equal radial frequency, then log10.
- `mean_spectrum_2d`, `high_frequency_ratio`: for Figure 10-style plots and for checking the claims
  of Appendix A1/A3 (nearest/bilinear upsampling and sigmoid/tanh remove high frequencies).

Radial binning (`radial_bins`). Frequencies are in cycles per pixel, so bins mean the same thing at
every image size. Bin k (k < n_bins) holds radii r in [k, k+1) * 0.5 / n_bins: DC is in bin 0 and
the Nyquist frequency along an axis (0.5 cycles/pixel) starts bin n_bins. Everything at or beyond
Nyquist (the Nyquist row/column of even sizes and the corners up to r = sqrt(2)/2) is kept in ONE
extra bin, index n_bins, so a reduced spectrum has n_bins + 1 entries. It is kept rather than
dropped because the period-2 checkerboard of stride-2 transposed convolutions, the upsampling
fingerprint of Appendix A1, lives exactly at (0.5, 0), (0, 0.5) and (0.5, 0.5).
"""

from __future__ import annotations

import math

import torch

TRANSFORMS = ("abs", "log1p", "log")
LOG_EPS = 1e-8           # fft_magnitude(transform="log"): log(|F| + LOG_EPS)
POWER_FLOOR = 1e-12      # reduced_spectrum(log=True): log10(max(P, POWER_FLOOR)) keeps exact zeros finite
BIN_SLACK = 1e-9         # radii that are exact bin edges (r * 2 * n_bins integer) must not round down a bin


def _real_float(x: torch.Tensor) -> torch.Tensor:
    """float32/float64 stay as they are; ints and half precision go to float32 (torch.fft has no half on CPU)."""
    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.to(torch.float32)


def _check_image_dims(x: torch.Tensor, name: str = "x") -> None:
    if x.ndim < 2:
        raise ValueError(f"{name} needs at least 2 dims (..., H, W); got shape {tuple(x.shape)}")


def fft_magnitude(x: torch.Tensor, transform: str = "abs") -> torch.Tensor:
    """Extractor input: per-channel |FFT2| of x (B,C,H,W) (any (..., H, W) works) -> same shape, real.

    transform: "abs" (the authors': no log, no shift, no normalisation), "log1p" (log(1+|F|)),
    "log" (log(|F| + 1e-8)). Odd sizes are fine. float64 in -> float64 out, float32 in -> float32 out,
    anything else -> float32.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}; got {transform!r}")
    _check_image_dims(x)
    mag = torch.fft.fft2(_real_float(x)).abs()
    if transform == "log1p":
        return torch.log1p(mag)
    if transform == "log":
        return torch.log(mag + LOG_EPS)
    return mag


def power_spectrum_2d(x: torch.Tensor, shift: bool = True) -> torch.Tensor:
    """|FFT2(x)|^2 per channel over the last two dims, unnormalised (Parseval: sum = H*W*sum(x^2)).

    shift=True fftshifts so DC sits at index (H//2, W//2), the layout `radial_bins` indexes.
    """
    _check_image_dims(x)
    spec = torch.fft.fft2(_real_float(x))
    power = spec.real.square() + spec.imag.square()
    return torch.fft.fftshift(power, dim=(-2, -1)) if shift else power


def radial_bins(h: int, w: int, n_bins: int | None = None, device=None) -> tuple[torch.Tensor, int]:
    """Radial bin of every pixel of a SHIFTED (h, w) spectrum, for azimuthal integration (Durall et al. 2020).

    r = sqrt(fy^2 + fx^2) with fy, fx in cycles per pixel; bin = floor(r / 0.5 * n_bins) for r < 0.5
    (DC in bin 0), and every r >= 0.5 (Nyquist lines, corners) goes to the extra bin n_bins (see the
    module docstring for why). Default n_bins = min(h, w) // 2: then a bin is at least as wide as the
    frequency step of the shorter side, so no bin below Nyquist is empty.

    Returns (index (h, w) long tensor on `device` with values in 0..n_bins, n_bins); the number of
    output bins of `azimuthal_average` is n_bins + 1.
    """
    if h < 2 or w < 2:
        raise ValueError(f"need an image of at least 2x2 for a radial spectrum; got {h}x{w}")
    n_bins = min(h, w) // 2 if n_bins is None else int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    # float64 on CPU so bin edges are decided identically on every device
    fy = torch.fft.fftshift(torch.fft.fftfreq(h, dtype=torch.float64))
    fx = torch.fft.fftshift(torch.fft.fftfreq(w, dtype=torch.float64))
    r = torch.sqrt(fy[:, None].square() + fx[None, :].square())
    index = torch.floor(r / 0.5 * n_bins + BIN_SLACK).long().clamp_(max=n_bins)
    return index.to(device), n_bins


def _ring_weights(h: int, w: int, n_bins: int | None, device, dtype) -> tuple[torch.Tensor, int]:
    """(h*w, n_bins+1) matrix averaging pixels into radial bins: a matmul is one deterministic kernel on GPU."""
    index, n_bins = radial_bins(h, w, n_bins)
    flat = index.flatten()
    counts = torch.bincount(flat, minlength=n_bins + 1)
    if (counts == 0).any():
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"radial bins {empty} of a {h}x{w} spectrum hold no pixel with n_bins={n_bins}; "
                         f"use fewer bins (default min(h, w) // 2) or a larger image")
    onehot = torch.zeros(flat.numel(), n_bins + 1, dtype=torch.float64)
    onehot[torch.arange(flat.numel()), flat] = 1.0
    return (onehot / counts.to(torch.float64)).to(device=device, dtype=dtype), n_bins


def azimuthal_average(power: torch.Tensor, n_bins: int | None = None) -> torch.Tensor:
    """Azimuthal integration: (..., H, W) SHIFTED power -> (..., n_bins + 1) mean power per radial bin.

    Mean, not sum, per ring (as Durall et al.'s radial profile): outer rings hold more pixels and
    would otherwise dominate by area alone; white noise then gives a flat profile. Bins are those of
    `radial_bins`; a bin without pixels (only possible with a non-default n_bins, or a tiny odd
    image's extra bin) raises ValueError.
    """
    _check_image_dims(power, "power")
    if power.is_complex():
        raise ValueError("azimuthal_average takes a real power spectrum, not a complex FFT")
    power = _real_float(power)
    h, w = power.shape[-2:]
    weights, n_bins = _ring_weights(h, w, n_bins, power.device, power.dtype)
    return power.flatten(-2) @ weights


def reduced_spectrum(residual: torch.Tensor, n_bins: int | None = None, log: bool = True) -> torch.Tensor:
    """The reduced 1D power spectrum of FFD Step I (paper Sec. III-C): (B,C,H,W) -> (B, n_bins + 1).

    Per image: power spectrum of the noise residual, averaged over colour channels, azimuthally
    averaged (`azimuthal_average`). log=True returns log10 of that mean power (floored at 1e-12):
    Durall et al. plot and compare log power, and residual power spans orders of magnitude from
    low to high frequency, so on a linear scale a distance (FFD, Eq. 10) would see only the few
    largest bins. Log of the ring mean (not mean of the log) keeps it a power spectrum that
    `high_frequency_ratio` can use with log=False.
    """
    if residual.ndim != 4:
        raise ValueError(f"residual must be (B, C, H, W); got shape {tuple(residual.shape)}")
    power = power_spectrum_2d(residual, shift=True).mean(dim=1)
    spec = azimuthal_average(power, n_bins)
    return torch.log10(spec.clamp_min(POWER_FLOOR)) if log else spec


def mean_spectrum_2d(x: torch.Tensor, log: bool = True) -> torch.Tensor:
    """Centred (DC at (H//2, W//2)) mean spectrum over the batch and channels of x (B,C,H,W) -> (H, W).

    log=True: mean of log(1 + |F|), the usual picture of spectral artefacts (Figure 10); log=False:
    mean power |F|^2.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (B, C, H, W); got shape {tuple(x.shape)}")
    if log:
        spec = torch.fft.fftshift(fft_magnitude(x, "log1p"), dim=(-2, -1))
    else:
        spec = power_spectrum_2d(x, shift=True)
    return spec.mean(dim=(0, 1))


def high_frequency_ratio(spec1d: torch.Tensor, cutoff: float = 0.5) -> torch.Tensor:
    """Share of a LINEAR reduced spectrum's power in bins above cutoff * Nyquist: (..., n_bins + 1) -> (...).

    spec1d is a `reduced_spectrum(..., log=False)` (last entry = the beyond-Nyquist bin). Bin k counts
    as high when its lower edge k * 0.5 / n_bins is >= cutoff * 0.5; the beyond-Nyquist bin is always
    high. Ring means are summed, so each radial frequency weighs the same (white noise with
    cutoff=0.5 gives about one half). Used to test Appendix A1/A3: nearest/bilinear upsampling vs
    transposed conv, ReLU vs sigmoid/tanh.
    """
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"cutoff is a fraction of Nyquist in [0, 1]; got {cutoff}")
    if spec1d.ndim < 1 or spec1d.shape[-1] < 2:
        raise ValueError(f"spec1d must be (..., n_bins + 1) with n_bins >= 1; got shape {tuple(spec1d.shape)}")
    if (spec1d < 0).any():
        raise ValueError("high_frequency_ratio needs a linear (non-negative) power spectrum: use log=False")
    n_bins = spec1d.shape[-1] - 1
    first_high = math.ceil(cutoff * n_bins - BIN_SLACK)
    return spec1d[..., first_high:].sum(-1) / spec1d.sum(-1)
