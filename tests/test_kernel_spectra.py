"""Figure 12's kernel spectra: a convolution's output spectrum follows its kernels'."""
import pytest
import torch
import torch.nn.functional as F

from modelfp import kernel_spectra
from modelfp.testbed import vae
from modelfp.testbed.common import seeded

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_linear_convolution_of_white_noise_has_its_kernels_spectrum_up_to_scale():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 1, 3, 3, generator=gen)
    noise = torch.randn(512, 1, 32, 32, generator=gen)
    circular = F.conv2d(F.pad(noise, (1, 1, 1, 1), mode="circular"), weight)   # the convolution theorem's
    for channel in (0, 1):
        kernel = kernel_spectra.kernel_spectrum(weight, channel, (32, 32))
        output = kernel_spectra.feature_spectrum(circular[:, channel])
        assert kernel_spectra.spectrum_correlation(kernel, output) > 0.99
        assert kernel_spectra.spectrum_correlation(kernel, output, log=False) > 0.99
    # zero padding, as in a generator: the borders blur the kernel's dips a little
    zeros = F.conv2d(noise, weight, padding=1)
    kernel, output = kernel_spectra.kernel_spectrum(weight, 0, (32, 32)), kernel_spectra.feature_spectrum(zeros[:, 0])
    assert kernel_spectra.spectrum_correlation(kernel, output, log=False) > 0.99
    assert kernel_spectra.spectrum_correlation(kernel, output) > 0.95
    # and it is this channel's kernel, not another's
    other = kernel_spectra.kernel_spectrum(weight, 1, (32, 32))
    assert kernel_spectra.spectrum_correlation(other, output) < 0.9


def test_the_vaes_last_convolution_is_its_conv3x3_to_rgb():
    model = seeded(0, lambda: vae.build(16, width=4, z_dim=8)).eval()
    name, module = kernel_spectra.last_convolution(model, lambda m: vae.sample(m, 2, 0, "cpu"))
    assert module is model.decoder[-2] and module.kernel_size == (3, 3)
    s = kernel_spectra.spectra_of(model, 1, lambda m, n: vae.sample(m, n, 0, "cpu"), 6)
    assert s["images"] == 6 and s["kernel"].shape == s["output"].shape == (16, 16)
    with pytest.raises(ValueError, match="channel 3"):
        kernel_spectra.kernel_spectrum(module.weight, 3, (16, 16))
