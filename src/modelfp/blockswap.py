"""Figure 3 (paper Section III-A5): the last generative blocks carry a model's fingerprint.

Two generators of one design that differ only in their training seed, M1 and M2 (the paper: two
ProGANs, once with nearest and once with bilinear upsampling, Figure 3(d) and (e)):

- Training: a 2-way classifier learns to tell M1's images from M2's (`train_classifier`).
- Testing I: it attributes held-out images of M1 and M2, drawn from other latents.
- Testing II: composed models (`compose`): CM1 is M1 with the parameters of its last n generative
  blocks taken from M2, CM2 the other way round, for n = 1 .. all blocks; the classifier attributes
  their images, drawn from the same latents as Testing I's.
If the last blocks carry the fingerprint, CM1 is attributed to M2 and CM2 to M1. The *reversal rate*
(`reversal_rate`) is the share of composed images attributed to the model that gave them their last
n blocks; the paper reports 0.9 when the last two blocks are swapped (`PAPER_REVERSAL`). At n = all,
CM1 is M2 exactly, so the reversal rate equals Testing I's accuracy.

Generative blocks (`BLOCK_LAYOUTS`, a registry by test-bed family): for the ProGAN-style family
(`testbed.progan`) the 4x4 block (dense layer and first conv3x3), then each x2 block (upsample, two
conv3x3); the 1x1 toRGB conv belongs to the last block, which it follows at that block's resolution
(in ProGAN it is grown with it). Every parameter and buffer lies in exactly one block, so swapping
all blocks exchanges the two models.

The classifier (`classifier`): its input is the fingerprint extractor's, log(1 + |FFT2|) of the
denoiser's noise residual (`residual_spectra`, as extractor.SpectrumInput with transform log1p),
standardised per frequency position with the training spectra's mean and std; then three
conv3x3-BN-ReLU stages of width, 2 width and 4 width channels, a 2x2 max pool after the first two, a
4x4 adaptive average (it keeps the coarse frequency position, where upsampling artefacts lie) and a
linear layer to the two logits. Adam, cross-entropy, `steps` batches of `batch_size` spectra drawn
with replacement; its initial weights and batches come from `seed`.

Torch is imported inside the functions. The workflow verb `fig-3` (modelfp.steps.figures) loads the
generators and writes the figure.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from .paper_tables import paper_rows

log = logging.getLogger(__name__)

# blocks swapped: the paper's reversal rate (Section III-A5; paper_numbers.yaml)
PAPER_REVERSAL = {int(n): rate for n, (rate,) in paper_rows("fig_3").items()}
STD_FLOOR = 1e-6            # per-position std of the training spectra never divides by less
MODELS = ("M1", "M2")


@dataclass(frozen=True)
class ClassifierConfig:
    steps: int
    batch_size: int
    width: int
    lr: float
    seed: int


# ---------------------------------------------------------------------------------------------------
# generative blocks and composed models


def _progan_blocks(G) -> list[tuple[str, ...]]:
    last = len(G.blocks) - 1
    return [("dense.", "first."), *((f"blocks.{i}.",) for i in range(last)), (f"blocks.{last}.", "to_rgb.")]


BLOCK_LAYOUTS = {"progan": _progan_blocks}    # family: generator -> its blocks' state-dict prefixes


def generative_blocks(family: str, G) -> list[tuple[str, ...]]:
    """The state-dict prefixes of each generative block of G, first to last; every parameter and
    buffer belongs to exactly one block."""
    if family not in BLOCK_LAYOUTS:
        raise ValueError(f"no generative-block layout for family {family!r}; known: {sorted(BLOCK_LAYOUTS)}")
    blocks = BLOCK_LAYOUTS[family](G)
    prefixes = [p for block in blocks for p in block]
    for key in G.state_dict():
        owners = [p for p in prefixes if key.startswith(p)]
        if len(owners) != 1:
            raise ValueError(f"{family}: {key} lies in {len(owners)} generative blocks ({owners}), not one")
    return blocks


def compose(base, donor, n: int, family: str):
    """A copy of generator `base` whose last n generative blocks hold `donor`'s parameters and
    buffers (n = 0: base's own, n = all blocks: donor's); base and donor must be one design."""
    blocks = generative_blocks(family, base)
    if not 0 <= n <= len(blocks):
        raise ValueError(f"can swap 0 to {len(blocks)} generative blocks, not {n}")
    base_sd, donor_sd = base.state_dict(), donor.state_dict()
    if {k: v.shape for k, v in base_sd.items()} != {k: v.shape for k, v in donor_sd.items()}:
        raise ValueError("the two generators are not one design: their parameters differ in names or shapes")
    swapped = tuple(p for block in blocks[len(blocks) - n:] for p in block)
    composed = copy.deepcopy(base)
    composed.load_state_dict({k: donor_sd[k] if k.startswith(swapped) else v for k, v in base_sd.items()})
    return composed.eval()


# ---------------------------------------------------------------------------------------------------
# the 2-way classifier on residual spectra


def residual_spectra(images, denoiser, batch_size: int = 64):
    """log(1 + |FFT2|) of the noise residual (denoiser.noise_estimate) of [-1, 1] images (N,3,S,S)."""
    import torch

    from .spectrum import fft_magnitude

    with torch.no_grad():
        return torch.cat([fft_magnitude(denoiser.noise_estimate(images[i:i + batch_size]), "log1p")
                          for i in range(0, len(images), batch_size)])


def classifier(width: int, classes: int = 2):
    """The CNN of the module docstring (its input already standardised)."""
    import torch.nn as nn

    def stage(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*stage(3, width), nn.MaxPool2d(2), *stage(width, 2 * width), nn.MaxPool2d(2),
                         *stage(2 * width, 4 * width), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(16 * 4 * width, classes))


@dataclass
class Classifier:
    net: object         # `classifier`, eval mode
    mean: object        # (3,S,S) per-position mean and std of the training spectra
    std: object

    def predict(self, spectra, batch_size: int = 256):
        """The predicted class (N,) (CPU long tensor) of each spectrum."""
        import torch

        with torch.no_grad():
            return torch.cat([self.net((spectra[i:i + batch_size] - self.mean) / self.std).argmax(1).cpu()
                              for i in range(0, len(spectra), batch_size)])


def train_classifier(spectra, labels, cfg: ClassifierConfig, device) -> Classifier:
    """Train `classifier` on spectra (N,3,S,S) with labels (N,) in {0, 1}."""
    import torch
    import torch.nn.functional as F

    from .optim import Adam
    from .testbed.common import seeded

    spectra, labels = spectra.to(device), torch.as_tensor(labels).long().to(device)
    mean, std = spectra.mean(0), spectra.std(0).clamp_min(STD_FLOOR)
    x = (spectra - mean) / std
    net = seeded(cfg.seed, lambda: classifier(cfg.width)).to(device).train()
    opt = Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(x), (cfg.batch_size,), generator=gen).to(device)
        loss = F.cross_entropy(net(x[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == cfg.steps:
            log.info("  classifier step %4d  loss %.4f", step, loss.item())
    return Classifier(net.eval(), mean, std)


# ---------------------------------------------------------------------------------------------------
# confusion matrices and the experiment


def confusion(truth, predicted, classes: int = 2) -> np.ndarray:
    """(classes, classes) counts: row = the source, column = the predicted model."""
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    return np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def accuracy(conf: np.ndarray) -> float:
    """Testing I: the share of images attributed to the model that made them."""
    return float(np.trace(conf) / conf.sum())


def reversal_rate(conf: np.ndarray) -> float:
    """Testing II, a 2-way confusion of composed models (row i: the model that keeps model i's first
    blocks): the share attributed to the other model, the one that gave it its last blocks."""
    return float((conf.sum() - np.trace(conf)) / conf.sum())


def block_swap(g1, g2, family: str, sample, spectra_of, cfg: ClassifierConfig, n_train: int, n_test: int,
               seed: int, device) -> dict:
    """Figure 3's training and two tests for one pair of generators.

    sample(model, n, seed) -> n images; spectra_of(images) -> the classifier's input. Training images
    come from latents of `seed`, every test image from those of seed + 1. Returns {"testing_i": (2,2)
    counts, "testing_ii": {n blocks swapped: (2,2) counts}, "blocks": the number of blocks}.
    """
    import torch

    train = torch.cat([spectra_of(sample(g, n_train, seed)) for g in (g1, g2)])
    clf = train_classifier(train, torch.arange(2).repeat_interleave(n_train), cfg, device)
    truth = torch.arange(2).repeat_interleave(n_test)

    def attribute(models):
        return confusion(truth, clf.predict(torch.cat([spectra_of(sample(m, n_test, seed + 1)) for m in models])))

    blocks = len(generative_blocks(family, g1))
    return {"testing_i": attribute((g1, g2)), "blocks": blocks,
            "testing_ii": {n: attribute((compose(g1, g2, n, family), compose(g2, g1, n, family)))
                           for n in range(1, blocks + 1)}}


def csv_rows(pair: tuple[str, str], label: str, result: dict) -> list[dict]:
    """One row for Testing I, one per number of swapped blocks for Testing II; the paper's reversal
    rate beside ours where it reports one."""
    def row(test, n, conf, **score):
        (a, b), (c, d) = conf.tolist()
        return {"pair": label, "model_1": pair[0], "model_2": pair[1], "test": test, "blocks_swapped": n,
                "blocks": result["blocks"], "images_per_model": int(conf[0].sum()),
                "m1_as_m1": a, "m1_as_m2": b, "m2_as_m1": c, "m2_as_m2": d,
                "accuracy": "", "reversal": "", "paper_reversal": "", **score}

    return [row("I", 0, result["testing_i"], accuracy=round(accuracy(result["testing_i"]), 4))] + [
        row("II", n, conf, reversal=round(reversal_rate(conf), 4), paper_reversal=PAPER_REVERSAL.get(n, ""))
        for n, conf in result["testing_ii"].items()]


def plot_block_swap(results: list[tuple[str, dict]], png, pdf) -> None:
    """Per pair (label, block_swap result), one row: Testing I's confusion, Testing II's for each n
    (row-normalised), and the reversal rate against n beside the paper's."""
    from .figures import _pyplot, save_figure

    plt = _pyplot()
    cols = 2 + max(r["blocks"] for _, r in results)
    fig, axes = plt.subplots(len(results), cols, figsize=(1.9 * cols, 2.3 * len(results)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (label, r) in zip(axes, results):
        panels = [("Testing I", r["testing_i"], list(MODELS))] + [
            (f"II: last {n} swapped", conf, ["CM1", "CM2"]) for n, conf in r["testing_ii"].items()]
        for ax, (title, conf, rows) in zip(row, panels):
            share = conf / conf.sum(1, keepdims=True)
            ax.axis("on")
            ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
            for (i, j), v in np.ndenumerate(share):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 else "black")
            ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=list(MODELS), yticklabels=rows)
            ax.tick_params(labelsize=6)
            ax.set_title(title, fontsize=7)
        row[0].set_ylabel(label.replace(" / ", "\n"), fontsize=6)
        ax = row[len(panels)]
        ax.axis("on")
        ns = list(r["testing_ii"])
        ax.plot(ns, [reversal_rate(r["testing_ii"][n]) for n in ns], "o-", label="ours")
        ax.plot(list(PAPER_REVERSAL), list(PAPER_REVERSAL.values()), "r*", markersize=9, label="paper")
        ax.axhline(0.5, color="grey", lw=0.5, ls="--")
        ax.set(ylim=(0, 1.02), xticks=ns)
        ax.set_xlabel("last blocks swapped", fontsize=7)
        ax.set_title("reversal rate", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle("Figure 3: a classifier of two models (Testing I) on composed models (Testing II)", fontsize=9)
    fig.tight_layout()
    for path in (png, pdf):
        save_figure(fig, path, dpi=150)
    plt.close(fig)
