"""Frechet Frequency Distance, FFD (paper Sec. III-C, Eq. 10).

Step I: a model is represented by the mean reduced spectrum of N of its (noise-residual) images
(`model_representation`, spectra from `modelfp.spectrum.reduced_spectrum`). Step II: the
representations of the real models and of the synthetic models are each summarised by a Gaussian
(`gaussian_stats`), and FFD is the Frechet distance between the two (`frechet_distance`, `ffd`):

    FFD = ||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2))                    (Eq. 10)

Everything is float64 numpy; torch tensors are accepted and converted. The usual case is
rank-deficient covariances (e.g. 32 real models vs 65 spectrum bins), so `frechet_distance` checks
the matrix square root and falls back to regularised covariances when it fails, as FID code does.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.linalg
import scipy.stats

SQRTM_RTOL = 1e-6       # ||X @ X - A||_F / ||A||_F above this: sqrtm failed, regularise and retry
IMAG_RTOL = 1e-3        # max |imag| of the square root relative to Tr(S1) + Tr(S2): above this is an error
NEGATIVE_RTOL = 1e-6    # negative results down to -NEGATIVE_RTOL * scale are round-off, clamped to 0

_logger = logging.getLogger(__name__)


def _as_float64(a, name: str) -> np.ndarray:
    """numpy float64 copy of an array or (any-device) torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def model_representation(spectra) -> np.ndarray:
    """Step I: (N images, n_bins) reduced spectra of one model -> (n_bins,) their mean."""
    spectra = _as_float64(spectra, "spectra")
    if spectra.ndim != 2 or spectra.shape[0] < 1:
        raise ValueError(f"spectra must be (N images, n_bins) with N >= 1; got shape {spectra.shape}")
    return spectra.mean(axis=0)


def gaussian_stats(reps) -> tuple[np.ndarray, np.ndarray]:
    """Step II: (n_models, d) model representations -> (mu (d,), sigma (d, d)), float64.

    Unbiased covariance (np.cov, rowvar=False), as FID; a single model gives a zero covariance
    (np.cov would return NaN).
    """
    reps = _as_float64(reps, "reps")
    if reps.ndim != 2 or reps.shape[0] < 1 or reps.shape[1] < 1:
        raise ValueError(f"reps must be (n_models, d) with n_models, d >= 1; got shape {reps.shape}")
    mu = reps.mean(axis=0)
    if reps.shape[0] == 1:
        return mu, np.zeros((reps.shape[1], reps.shape[1]))
    return mu, np.atleast_2d(np.cov(reps, rowvar=False))


def _sqrtm_checked(a: np.ndarray) -> tuple[np.ndarray, float]:
    """scipy's sqrtm of a plus its relative residual (inf if not finite); scipy's singular warning is
    replaced by this residual, which is what decides the fallback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        with np.errstate(all="ignore"):
            root = scipy.linalg.sqrtm(a)
            if not np.all(np.isfinite(root)):
                return root, float("inf")
            residual = np.linalg.norm(root @ root - a) / max(np.linalg.norm(a), np.finfo(np.float64).tiny)
    return root, float(residual)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, log=None) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Eq. 10), float64, scipy sqrtm.

    Numerical care (FID-style), each reported through `log` (a callable taking one string;
    default: this module's logger at WARNING):
    - if sqrtm(S1 S2) is not finite or does not square back to S1 S2 (rel. residual > 1e-6; the
      near-singular products of rank-deficient covariances), retry with eps * I added to BOTH
      covariances and use them in the trace terms too, so the result is the exact distance between
      the regularised Gaussians (never negative; pytorch-fid regularises only inside the root, which
      shifts the result by about -2 * eps * d);
    - a small imaginary part of the root is dropped (its size is reported); one above 1e-3 of
      Tr(S1) + Tr(S2) raises ValueError;
    - a tiny negative result (round-off, |.| <= 1e-6 of ||dmu||^2 + Tr(S1) + Tr(S2)) is clamped
      to 0 and reported; a larger one raises ValueError.
    """
    report = log if log is not None else _logger.warning
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    sigma1, sigma2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length; got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (d, d):
            raise ValueError(f"{name} must be ({d}, {d}) to match the means; got {sigma.shape}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0; got {eps}")

    root, residual = _sqrtm_checked(sigma1 @ sigma2)
    if residual > SQRTM_RTOL:
        report(f"frechet_distance: sqrtm(S1 S2) failed (relative residual {residual:.3g}); "
               f"retrying with {eps:g} * I added to both covariances")
        sigma1, sigma2 = sigma1 + eps * np.eye(d), sigma2 + eps * np.eye(d)
        root, residual = _sqrtm_checked(sigma1 @ sigma2)
        if residual > SQRTM_RTOL:
            raise ValueError(f"sqrtm(S1 S2) failed even with eps={eps:g} (relative residual {residual:.3g}); "
                             f"try a larger eps")

    trace_sum = float(np.trace(sigma1) + np.trace(sigma2))
    if np.iscomplexobj(root):
        imag = float(np.max(np.abs(root.imag)))
        if imag > IMAG_RTOL * max(trace_sum, np.finfo(np.float64).tiny):
            raise ValueError(f"sqrtm(S1 S2) has a large imaginary part (max |imag| = {imag:.3g}, "
                             f"Tr(S1) + Tr(S2) = {trace_sum:.3g}): are the covariances PSD?")
        if imag > 0:
            report(f"frechet_distance: dropped imaginary part of sqrtm(S1 S2), max |imag| = {imag:.3g}")
        root = root.real

    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    value = mean_term + trace_sum - 2.0 * float(np.trace(root))
    if value < 0:
        scale = mean_term + trace_sum
        if value < -NEGATIVE_RTOL * scale - 1e-12:
            raise ValueError(f"Frechet distance came out negative ({value:.6g}, scale {scale:.6g}): "
                             f"the covariances are probably not PSD")
        report(f"frechet_distance: clamped round-off negative result {value:.3g} to 0")
        value = 0.0
    return value


def ffd(real_reps, synthetic_reps, **kw) -> float:
    """FFD (Eq. 10) between two sets of model representations, (n_r, d) and (n_s, d).

    Keyword arguments (eps, log) go to `frechet_distance`.
    """
    mu_r, sigma_r = gaussian_stats(real_reps)
    mu_s, sigma_s = gaussian_stats(synthetic_reps)
    if mu_r.shape != mu_s.shape:
        raise ValueError(f"real and synthetic representations differ in length: "
                         f"{mu_r.shape[0]} vs {mu_s.shape[0]}")
    return frechet_distance(mu_r, sigma_r, mu_s, sigma_s, **kw)


def pearson(x, y) -> float:
    """Pearson correlation coefficient of two 1-D samples (scipy.stats.pearsonr), as in Table XI."""
    x, y = _as_float64(x, "x").ravel(), _as_float64(y, "y").ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"pearson needs two samples of the same length >= 2; got {x.size} and {y.size}")
    return float(scipy.stats.pearsonr(x, y).statistic)
