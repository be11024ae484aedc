"""Figure 12 (paper Appendix A2): a convolution's kernels shape the spectrum of its output.

A convolution's output channel c is y_c = sum_i k_{c,i} * x_i + b_c, so its Fourier transform is
sum_i F(k_{c,i}) F(x_i): each learned kernel acts as a frequency filter (Section III-A2). The paper
shows it on two StyleGAN2 models of one architecture trained on different data: for one output
channel of the last convolution of the final generative block, the summed magnitude spectrum of its
kernels beside the spectrum of that channel's output feature map, which mirrors it.

Here, for each generator (test-bed or validation generators of one design trained on different
pools), `last_convolution` finds the last spatial convolution that runs when the model samples
(kernel larger than 1x1, output the size of its input; transposed convolutions are left out, their
output is not a plain filtering of their input). Then:

- kernel spectrum (`kernel_spectrum`): sum over input channels i of |FFT2(k_{c,i})|, the kernel
  zero-padded to the feature map's size;
- output spectrum (`feature_spectrum`): the root-mean-square |FFT2(y_c - mean y_c)| over the
  sampled images, the per-pixel mean over them removed first (for white-noise input it is the
  kernel's |FFT2| up to scale);
- their match (`spectrum_correlation`): the Pearson correlation of the two log10 spectra over every
  frequency but DC (which holds the bias and the mean activation, not the filter), and as a
  control the correlation with the other model's kernel spectrum of the same channel.

Spectra are fftshifted (DC at the centre), as plotted. Torch is imported inside the functions. The
workflow verb `fig-12` (modelfp.steps.figures) loads the generators and writes the figure.
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------------------------------
# the last convolution of a generator and its output


def _is_filter(module, inputs, output) -> bool:
    """A module that ran as a spatial convolution: a 4-D weight with a kernel larger than 1x1, not
    transposed, whose output keeps its input's size (stride 1, 'same' padding)."""
    import torch.nn as nn

    weight = getattr(module, "weight", None)
    return (weight is not None and getattr(weight, "ndim", 0) == 4 and weight.shape[-1] * weight.shape[-2] > 1
            and not isinstance(module, nn.ConvTranspose2d) and bool(inputs)
            and inputs[0].ndim == 4 and output.ndim == 4 and inputs[0].shape[-2:] == output.shape[-2:])


def last_convolution(model, run) -> tuple[str, object]:
    """(name, module) of the last spatial convolution that ran during run(model)."""
    ran = []
    handles = [m.register_forward_hook(lambda m, i, o, name=name: ran.append(name) if _is_filter(m, i, o) else None)
               for name, m in model.named_modules()]
    try:
        run(model)
    finally:
        for h in handles:
            h.remove()
    if not ran:
        raise ValueError(f"{type(model).__name__}: no spatial convolution ran while sampling")
    return ran[-1], dict(model.named_modules())[ran[-1]]


def channel_maps(model, module, channel: int, run):
    """Output channel `channel` of `module` (N,H,W) over everything run(model) feeds it, on the CPU."""
    import torch

    maps = []
    handle = module.register_forward_hook(lambda m, i, o: maps.append(o[:, channel].detach().float().cpu()))
    try:
        run(model)
    finally:
        handle.remove()
    return torch.cat(maps)


# ---------------------------------------------------------------------------------------------------
# spectra and their match


def kernel_spectrum(weight, channel: int, size: tuple[int, int]) -> np.ndarray:
    """sum_i |FFT2(weight[channel, i])|, each kernel zero-padded to `size`, fftshifted: (H, W)."""
    import torch

    if not 0 <= channel < weight.shape[0]:
        raise ValueError(f"channel {channel} of a convolution with {weight.shape[0]} output channels")
    k = weight[channel].detach().double().cpu()
    spec = torch.fft.fft2(k, s=tuple(size)).abs().sum(0)
    return torch.fft.fftshift(spec).numpy()


def feature_spectrum(maps) -> np.ndarray:
    """Root-mean-square |FFT2| over N of feature maps (N,H,W), less their per-pixel mean over N,
    fftshifted: (H, W). The mean map holds the bias, the average activation and the frame that zero
    padding leaves along the borders (lines through DC), none of them the kernels' filtering."""
    import torch

    maps = maps.double()
    power = torch.fft.fft2(maps - maps.mean(0)).abs().square().mean(0)
    return torch.fft.fftshift(power.sqrt()).numpy()


def _without_dc(spec: np.ndarray) -> np.ndarray:
    h, w = spec.shape
    keep = np.ones(spec.shape, dtype=bool)
    keep[h // 2, w // 2] = False          # DC after fftshift
    return spec[keep]


def spectrum_correlation(a: np.ndarray, b: np.ndarray, log: bool = True) -> float:
    """Pearson correlation of two (H, W) fftshifted magnitude spectra over every frequency but DC,
    of their log10 (log=True, as plotted) or of the magnitudes themselves."""
    if a.shape != b.shape:
        raise ValueError(f"spectra of different sizes: {a.shape} and {b.shape}")
    x, y = _without_dc(a), _without_dc(b)
    if log:
        floor = 1e-12
        x, y = np.log10(np.maximum(x, floor)), np.log10(np.maximum(y, floor))
    return float(np.corrcoef(x, y)[0, 1])


def spectra_of(model, channel: int, run, n_images: int) -> dict:
    """The last convolution of a generator (run(model, n) samples n images) and its channel's two
    spectra over n_images images."""
    name, module = last_convolution(model, lambda m: run(m, 2))
    maps = channel_maps(model, module, channel, lambda m: run(m, n_images))
    kernel = kernel_spectrum(module.weight, channel, maps.shape[-2:])
    output = feature_spectrum(maps)
    return {"layer": name, "kernel_shape": tuple(module.weight.shape), "images": len(maps),
            "kernel": kernel, "output": output}


def csv_rows(names: list[str], spectra: list[dict], channel: int) -> list[dict]:
    """Per model: its layer, the correlations of its output spectrum with its own kernel spectrum
    (log and linear) and, as a control, with the other models' (mean; log)."""
    rows = []
    for i, (name, s) in enumerate(zip(names, spectra)):
        others = [spectrum_correlation(t["kernel"], s["output"]) for j, t in enumerate(spectra)
                  if j != i and t["kernel"].shape == s["output"].shape]
        rows.append({"model": name, "layer": s["layer"], "kernel_shape": "x".join(map(str, s["kernel_shape"])),
                     "channel": channel, "feature_map": "x".join(map(str, s["output"].shape)), "images": s["images"],
                     "correlation": round(spectrum_correlation(s["kernel"], s["output"]), 4),
                     "correlation_linear": round(spectrum_correlation(s["kernel"], s["output"], log=False), 4),
                     "control_other_kernel": round(float(np.mean(others)), 4) if others else ""})
    return rows


def plot_kernel_spectra(names: list[str], spectra: list[dict], rows: list[dict], png, pdf) -> None:
    """Per model one row: the summed kernel spectrum (left) and the output channel's spectrum
    (right), log10, DC left blank."""
    from .figures import _pyplot, save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(len(names), 2, figsize=(5.2, 2.5 * len(names)), squeeze=False)
    for (left, right), name, s, row in zip(axes, names, spectra, rows):
        for ax, key, title in ((left, "kernel", "summed kernel spectrum"), (right, "output", "output feature map")):
            img = np.log10(np.maximum(s[key], 1e-12))
            img[img.shape[0] // 2, img.shape[1] // 2] = np.nan
            ax.imshow(img, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}: {title}", fontsize=7)
        control = row["control_other_kernel"]
        right.set_xlabel(f"correlation {row['correlation']:.2f}"
                         + (f" (other model's kernel: {control:.2f})" if control != "" else ""), fontsize=7)
    fig.suptitle(f"Figure 12: kernel and output spectra, channel {rows[0]['channel']} of the last convolution",
                 fontsize=8)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)
