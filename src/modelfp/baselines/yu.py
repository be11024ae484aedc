"""Yu et al. ICCV 2019, "Attributing fake images to GANs": the image attribution network.

A ProGAN-discriminator-style classifier with equalized learning rate (weights drawn N(0, 1) and
scaled at run time by He's constant sqrt(2 / fan_in); the last dense layer with gain 1, as in
ProGAN): fromRGB (1x1 conv), then per resolution S, S/2, ..., 8 two 3x3 convolutions with
LeakyReLU(0.2) and a 2x average pooling; at 4x4 a 3x3 conv and two dense layers. The channels at
level l are min(1024 / 2^l, 512) (l = log2(resolution) - 1 for a block's first conv, one level
less for its second), times `width` (1 at paper scale; presets shrink it). ProGAN's minibatch-
stddev layer is left out: it serves a discriminator judging a batch, not a per-image classifier.

Training: softmax cross-entropy over the training sources (one class per entry of
images_by_class), Adam with betas (0, 0.99), minibatches drawn uniformly from all images, random
horizontal flips; early stopping (`common.Stopping`) on the held-out images' accuracy of the
classifier. Zero-shot use (paper IV-A): the output of the first dense layer (after its
LeakyReLU, what feeds the classifier), compared by cosine.

Seeding: `build(seed=...)` draws the initial weights from the seeded global generator (restored
afterwards, `testbed.common.seeded`); batches and flips come from a CPU torch.Generator(seed).
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..optim import Adam
from ..pools import as_unit_range
from ..testbed.common import LossLog, check_size, resolve, seeded
from ..testbed.progan import EqualizedConv2d, EqualizedLinear
from .common import (Monitor, Stopping, accuracy, embed_batches, fit_and_heldout, random_flip, training_state,
                     uniform_batch)

DEFAULTS = {
    "width": 1.0,     # channel multiplier (paper: 1, i.e. min(1024 / 2^level, 512))
    "lr": 1e-3,       # Adam lr (ProGAN's; Yu et al. train its discriminator as a classifier)
    "flip": True,     # random horizontal flips
}
BETAS = (0.0, 0.99)
SLOPE = 0.2


def channels(level: int, width: float) -> int:
    """min(1024 / 2^level, 512) channels, times width (at least 1)."""
    return max(1, round(width * min(1024 / 2 ** level, 512)))


class YuNet(nn.Module):
    def __init__(self, image_size: int, classes: int, width: float):
        super().__init__()
        self.image_size, self.classes = image_size, classes
        top = image_size.bit_length() - 1   # log2(S)
        self.from_rgb = EqualizedConv2d(3, channels(top - 1, width), 1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(channels(res - 1, width), channels(res - 1, width), 3, 1),
                           EqualizedConv2d(channels(res - 1, width), channels(res - 2, width), 3, 1)])
            for res in range(top, 2, -1))
        c4 = channels(1, width)
        self.conv4 = EqualizedConv2d(c4, c4, 3, 1)
        self.dense = EqualizedLinear(c4 * 16, channels(0, width))
        self.out = EqualizedLinear(channels(0, width), classes, gain=1.0)
        self.dim = channels(0, width)

    def features(self, x):
        """The first dense layer's output (after LeakyReLU): the zero-shot embedding."""
        h = F.leaky_relu(self.from_rgb(x), SLOPE)
        for a, b in self.blocks:
            h = F.leaky_relu(b(F.leaky_relu(a(h), SLOPE)), SLOPE)
            h = F.avg_pool2d(h, 2)
        h = F.leaky_relu(self.conv4(h), SLOPE)
        return F.leaky_relu(self.dense(h.flatten(1)), SLOPE)

    def forward(self, x):
        return self.out(self.features(x))


def build(image_size: int, classes: int, seed: int = 0, **hp) -> YuNet:
    hp = resolve("yu", DEFAULTS, hp)
    check_size("yu", image_size, 4)
    return seeded(seed, lambda: YuNet(image_size, classes, float(hp["width"])))


def heldout_accuracy(model: YuNet, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    """Closed-set accuracy of the classifier on uint8 images, eval mode."""
    return accuracy(embed_batches(model, images, device, model), labels)


def train(model: YuNet, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, state_path=None, stopping: Stopping | None = None, **hp):
    """At most `steps` Adam steps of cross-entropy on uniform minibatches of the fit part, early-
    stopped on the held-out part (`stopping`, common.Stopping). Returns (model in eval mode, the
    best evaluation's weights; info); info's loss and accuracy are means over the last
    min(LOG_EVERY, steps) steps run, with the stopping (steps_run, best_step, heldout_acc) and the
    learning curve (history). state_path: resumable state (common.TrainingState), resumed from
    when present."""
    hp = resolve("yu", DEFAULTS, hp)
    stopping = stopping or Stopping()
    start = time.perf_counter()
    images, labels, held, held_labels = fit_and_heldout("yu", images_by_class, model.image_size,
                                                        stopping.fraction, seed)
    if len(images_by_class) != model.classes:
        raise ValueError(f"yu: built for {model.classes} classes, got {len(images_by_class)}")
    model = model.to(device).train()
    opt = Adam(model.parameters(), lr=float(hp["lr"]), betas=BETAS)
    gen = torch.Generator().manual_seed(seed)
    log = LossLog(steps, progress, ("loss", "accuracy"))
    state = training_state(state_path, "yu", hp, images_by_class, steps, batch_size, seed, stopping)
    monitor = Monitor(stopping)
    monitor.start("train", steps, model, lambda: heldout_accuracy(model, held, held_labels, device))
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, _ = state.resume("train", resumable)
    for step in range(done, steps):
        idx = uniform_batch(labels, batch_size, gen)
        x = as_unit_range(images[idx].to(device))
        if hp["flip"]:
            x = random_flip(x, gen)
        y = labels[idx].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.add(loss.item(), (logits.argmax(1) == y).float().mean().item())
        if monitor.after(step + 1, loss.item()):
            break
        state.checkpoint("train", step + 1, steps, resumable)
    info = {"method": "yu", "steps": steps, "images": len(images), "heldout_images": len(held),
            "classes": model.classes, **monitor.finish(), "seconds": time.perf_counter() - start,
            **log.summary(), **hp, "history": monitor.rows}
    return model.eval(), info


def embed(model: YuNet, images: torch.Tensor, device) -> torch.Tensor:
    """(N, 512 * width) first-dense-layer features, eval mode."""
    return embed_batches(model, images, device, model.features)
