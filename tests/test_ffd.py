import numpy as np
import pytest
import torch

from modelfp.ffd import ffd, frechet_distance, gaussian_stats, model_representation, pearson


def random_spd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def reference_fd(mu1, s1, mu2, s2):
    """Independent float64 reference: Tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def test_identical_sets_give_zero():
    reps = np.random.default_rng(0).normal(size=(40, 8))
    assert abs(ffd(reps, reps, log=lambda m: None)) < 1e-8


def test_shifted_means_give_squared_shift():
    rng = np.random.default_rng(1)
    s = random_spd(rng, 6)
    mu = rng.normal(size=6)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.25])
    assert frechet_distance(mu, s, mu + shift, s, log=lambda m: None) == pytest.approx(shift @ shift, abs=1e-9)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum() + ((mu1 - mu2) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_symmetric_and_matches_eigendecomposition_reference():
    rng = np.random.default_rng(3)
    for d in (2, 7, 20):
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        quiet = dict(log=lambda m: None)
        fwd, bwd = frechet_distance(mu1, s1, mu2, s2, **quiet), frechet_distance(mu2, s2, mu1, s1, **quiet)
        assert fwd == pytest.approx(bwd, rel=1e-9)
        assert fwd == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-9)


def test_fewer_models_than_dims_is_finite_and_accurate():
    # the normal case: 32 models, 64 spectrum bins -> rank-deficient covariances
    rng = np.random.default_rng(4)
    real, syn = rng.normal(size=(32, 64)), rng.normal(size=(32, 64)) + 0.1
    messages = []
    value = ffd(real, syn, log=messages.append)
    (mu1, s1), (mu2, s2) = gaussian_stats(real), gaussian_stats(syn)
    assert np.isfinite(value) and value >= 0
    assert value == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-6)
    assert 0 <= ffd(real, real, log=messages.append) < 1e-8


def test_singular_product_falls_back_and_reports():
    # 2 and 3 models in 3 dims: exactly rank-deficient, scipy's sqrtm of S1 S2 returns NaN here
    real = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 2.0]])
    syn = np.array([[1.0, 2.0, 1.0], [2.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
    messages = []
    value = ffd(real, syn, log=messages.append)
    assert np.isfinite(value) and value >= 0
    assert any("retrying" in m for m in messages)
    (mu1, s1), (mu2, s2) = gaussian_stats(real), gaussian_stats(syn)
    assert value == pytest.approx(reference_fd(mu1, s1, mu2, s2), abs=1e-2)


def test_negative_roundoff_is_clamped_and_reported():
    rng = np.random.default_rng(5)
    reps = rng.normal(size=(10, 30))   # rank 9 covariance, S^2 has 21 zero eigenvalues
    messages = []
    assert ffd(reps, reps, log=messages.append) >= 0
    assert ffd(reps, reps, log=messages.append) < 1e-8


def test_default_logger_is_used(caplog):
    real = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 2.0]])
    syn = np.array([[1.0, 2.0, 1.0], [2.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
    with caplog.at_level("WARNING", logger="modelfp.ffd"):
        ffd(real, syn)
    assert "retrying" in caplog.text


def test_large_imaginary_part_raises():
    # not a covariance: S1 S2 = -I, whose square root is i * I
    s1 = np.eye(2)
    s2 = np.array([[-1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), s1, np.zeros(2), s2, log=lambda m: None)


def test_wrong_shapes_raise():
    s = np.eye(3)
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), s, np.zeros(4), s)
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), s)
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((3, 1)), s, np.zeros((3, 1)), s)
    with pytest.raises(ValueError):
        ffd(np.zeros((4, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError):
        gaussian_stats(np.zeros(5))
    with pytest.raises(ValueError):
        model_representation(np.zeros((0, 5)))


def test_stats_and_representation():
    spectra = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    np.testing.assert_allclose(model_representation(spectra), [4, 5, 6, 7])
    mu, sigma = gaussian_stats(np.ones((1, 4)))
    assert mu.dtype == np.float64 and np.all(sigma == 0) and sigma.shape == (4, 4)
    reps = np.random.default_rng(6).normal(size=(9, 3))
    np.testing.assert_allclose(gaussian_stats(reps)[1], np.cov(reps, rowvar=False))


def test_pearson_of_linear_data_is_one():
    x = np.arange(8.0)
    assert pearson(x, 3 * x + 2) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
