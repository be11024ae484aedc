import math

import pytest
import torch

from modelfp.spectrum import (azimuthal_average, fft_magnitude, high_frequency_ratio, mean_spectrum_2d,
                              power_spectrum_2d, radial_bins, reduced_spectrum)

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def grid(h, w):
    y = torch.arange(h, dtype=torch.float64, device=DEVICE)[:, None]
    x = torch.arange(w, dtype=torch.float64, device=DEVICE)[None, :]
    return y, x


def peak_bin(img):
    """Radial bin holding the most (linear) power of a single (H, W) image."""
    spec = reduced_spectrum(img[None, None], log=False)[0]
    return int(spec.argmax())


def test_sinusoid_along_x_lands_in_its_bin():
    y, x = grid(64, 64)
    for k in (3, 10, 25):   # f = k / 64 cycles/pixel -> bin floor(f / 0.5 * 32) = k
        img = torch.cos(2 * math.pi * k / 64 * x).expand(64, 64)
        assert peak_bin(img) == k


def test_sinusoid_along_diagonal_lands_in_its_bin():
    y, x = grid(64, 64)
    for k in (4, 10, 20):   # fy = fx = k / 64 -> r = sqrt(2) k / 64 -> bin floor(sqrt(2) k)
        img = torch.cos(2 * math.pi * k / 64 * (x + y))
        assert peak_bin(img) == math.floor(math.sqrt(2) * k)


def test_bins_are_size_independent_and_keep_beyond_nyquist_in_extra_bin():
    index, n_bins = radial_bins(64, 64)
    assert n_bins == 32 and int(index.max()) == 32
    assert index[32, 32] == 0                       # DC at (H//2, W//2) after the shift
    assert index[32, 0] == 32 and index[0, 0] == 32  # axis Nyquist and corner -> extra bin
    # the same frequency (0.25 cycles/pixel along x) lands in the same bin at another size
    idx2, _ = radial_bins(32, 48, n_bins=32)
    assert idx2[16, 24 + 12] == index[32, 32 + 16] == 16


def test_white_noise_gives_flat_spectrum():
    g = torch.Generator(device="cpu").manual_seed(0)
    noise = torch.randn(64, 3, 32, 32, generator=g, dtype=torch.float64).to(DEVICE)
    spec = reduced_spectrum(noise, log=False).mean(0)[1:]   # skip DC (bin 0)
    assert (spec.std() / spec.mean()).item() < 0.05
    # and the level is E|F|^2 = H * W * var
    assert abs(spec.mean().item() / (32 * 32) - 1) < 0.05
    ratio = high_frequency_ratio(reduced_spectrum(noise, log=False)).mean().item()
    assert abs(ratio - 9 / 17) < 0.03           # rings 8..15 + the extra bin of 17 entries, equal power each


def test_constant_image_has_all_power_at_dc():
    img = torch.full((2, 3, 16, 20), 0.7, dtype=torch.float64, device=DEVICE)
    spec = reduced_spectrum(img, log=False)
    assert torch.all(spec[:, 1:].abs() < 1e-20)
    assert torch.all(spec[:, 0] > 0)
    logspec = reduced_spectrum(img)               # log10 stays finite on exact zeros
    assert torch.isfinite(logspec).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_magnitude_odd_sizes_shape_dtype_and_abs(dtype):
    x = torch.randn(2, 3, 15, 17, dtype=dtype, device=DEVICE)
    for transform in ("abs", "log1p", "log"):
        out = fft_magnitude(x, transform)
        assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out).all()
    assert torch.equal(fft_magnitude(x), torch.fft.fft2(x).abs())
    assert torch.allclose(fft_magnitude(x, "log1p"), torch.log1p(torch.fft.fft2(x).abs()))
    with pytest.raises(ValueError):
        fft_magnitude(x, "sqrt")


def test_odd_sizes_through_the_whole_pipeline():
    x = torch.randn(2, 3, 15, 17, dtype=torch.float64, device=DEVICE)
    spec = reduced_spectrum(x)
    assert spec.shape == (2, 15 // 2 + 1) and torch.isfinite(spec).all()
    assert mean_spectrum_2d(x).shape == (15, 17)


def test_parseval():
    x = torch.randn(2, 3, 15, 16, dtype=torch.float64, device=DEVICE)
    power = power_spectrum_2d(x)
    assert torch.allclose(power.sum(dim=(-2, -1)), 15 * 16 * x.square().sum(dim=(-2, -1)))
    # azimuthal means weighted by ring sizes give back the total power
    index, n_bins = radial_bins(15, 16, device=DEVICE)
    counts = torch.bincount(index.flatten(), minlength=n_bins + 1).to(torch.float64)
    assert torch.allclose((azimuthal_average(power) * counts).sum(-1), power.sum(dim=(-2, -1)))


def test_low_pass_noise_has_less_high_frequency_power():
    g = torch.Generator(device="cpu").manual_seed(1)
    noise = torch.randn(8, 1, 32, 32, generator=g, dtype=torch.float64).to(DEVICE)
    kernel = torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64, device=DEVICE)   # box blur
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(noise, (1, 1, 1, 1), mode="circular"), kernel)
    hf_white = high_frequency_ratio(reduced_spectrum(noise, log=False))
    hf_blur = high_frequency_ratio(reduced_spectrum(blurred, log=False))
    assert torch.all(hf_blur < 0.5 * hf_white)
    with pytest.raises(ValueError):           # negative entries: a log spectrum was passed
        high_frequency_ratio(torch.tensor([1.0, -0.5, 0.2]))


def test_batched_equals_per_image():
    x = torch.randn(4, 3, 12, 14, device=DEVICE)
    batched = reduced_spectrum(x)
    single = torch.cat([reduced_spectrum(x[i:i + 1]) for i in range(4)])
    # FFT of another batch shape may round differently (by CPU and device): errors ~1e-7 of the
    # spectrum's scale (|FFT| ~ 13 here), so atol 1e-4 even at near-zero bins; a wrong image or
    # axis differs by ~1
    assert torch.allclose(batched, single, atol=1e-4, rtol=1e-5)
    assert torch.allclose(fft_magnitude(x), torch.cat([fft_magnitude(x[i:i + 1]) for i in range(4)]),
                          atol=1e-4, rtol=1e-5)


def test_results_stay_on_the_input_device_and_float32_matches_float64():
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, device=DEVICE)
    s64 = reduced_spectrum(x)
    s32 = reduced_spectrum(x.float())
    assert s32.device == x.device and s32.dtype == torch.float32 and s64.dtype == torch.float64
    assert torch.allclose(s32.double(), s64, atol=1e-4)


def test_empty_bins_and_bad_shapes_raise():
    with pytest.raises(ValueError, match="hold no pixel"):
        azimuthal_average(torch.rand(16, 16), n_bins=64)
    with pytest.raises(ValueError):
        reduced_spectrum(torch.rand(3, 16, 16))
    with pytest.raises(ValueError):
        radial_bins(1, 16)
