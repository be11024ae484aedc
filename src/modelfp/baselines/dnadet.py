"""DNA-Det (AAAI 2022): deepfake network architecture attribution, in two stages.

Network: 4 stages of [Conv 4x4 stride 2 + BN + LeakyReLU(0.2), Conv 3x3 + BN + LeakyReLU(0.2)],
channels 64 -> 128 -> 256 -> 512 (times `width`: 1 at paper scale, presets shrink it), global
average pooling -> the feature; heads Dropout(0.2) + Linear for the transformation classes (stage
1) and for the sources (stage 2); a projection head feature -> feature -> 128, L2-normalised, for
the contrastive loss.

Stage 1 pre-trains the trunk to tell which image transformation was applied to a real image
(`pretrain_images`, by default all training images): JPEG qualities, double JPEG, Gaussian and
median blur kernels, down-then-up resizing with 5 interpolations x 16 scales, Gaussian noise:
`paper_transforms()`, 162 of them (the facts give the families and ranges, not their exact list).
Stage 2 attributes: class-balanced batches, each image resized by `upscale` (paper: 128 -> 512)
and cut into `crops_per_image` random `crop` x `crop` patches that carry its label; loss = cross-
entropy on the crops' logits + supervised contrastive loss (Khosla et al. 2020, temperature 0.07)
on their projections, combined by learned uncertainty weights (Kendall et al. 2018) that have their
own Adam (lr 0.01). Adam lr 1e-4 with StepLR (x0.9 every 500 steps) for the network. Stage 2 is
early-stopped (`common.Stopping`) on the held-out images' accuracy of the source head (whole image,
as embedded); stage 1 runs its steps and only adds its losses to the learning curve.

Zero-shot use (paper IV-A): the pooled feature of the WHOLE image (resized by `upscale` as in
training), in eval mode. The trunk is fully convolutional, so global pooling over the whole image
averages the local features of every crop position: what a mean over random crops estimates,
without its sampling noise, and in one deterministic forward pass.

Seeding: `build(seed=...)` draws the initial weights from the seeded global generator (restored
afterwards); batches, transformations, noise, crops and dropout masks come from a CPU
torch.Generator(seed) (dropout is applied in the loop with that generator, so training leaves the
global RNG alone).
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter
from torchvision.transforms.functional import gaussian_blur

from ..optim import Adam
from ..pools import as_unit_range
from ..testbed.common import LossLog, resolve, seeded
from .common import (Monitor, Stopping, TrainingState, accuracy, balanced_batch, embed_batches,
                     fit_and_heldout, random_crops, step_lr, training_state)

# ---------------------------------------------------------------------------------------------
# Image transformations of stage 1: specs "kind:arg[:arg]" on uint8 (3,H,W) tensors

INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                  "bicubic": Image.Resampling.BICUBIC, "box": Image.Resampling.BOX,
                  "lanczos": Image.Resampling.LANCZOS}   # PIL's box is cv2's "area"
KINDS = ("jpeg", "djpeg", "gblur", "mblur", "resize", "noise")


def paper_transforms() -> tuple[str, ...]:
    """The 162 transformations of the paper preset: JPEG quality 30, 32, ..., 98 (35); double JPEG
    (q1, q2) in {50, 70, 90} x {60, 80, 95} (9); Gaussian and median blur, kernels 3, 5, ..., 29
    (14 + 14); down-then-up resizing, 5 interpolations x scales 0.20, 0.25, ..., 0.95 (80); Gaussian
    noise, std 2 ... 40 on the 0-255 scale (10)."""
    out = [f"jpeg:{q}" for q in range(30, 100, 2)]
    out += [f"djpeg:{a}:{b}" for a in (50, 70, 90) for b in (60, 80, 95)]
    out += [f"{k}:{s}" for k in ("gblur", "mblur") for s in range(3, 30, 2)]
    out += [f"resize:{m}:{s / 100:.2f}" for m in INTERPOLATIONS for s in range(20, 100, 5)]
    out += [f"noise:{s}" for s in (2, 4, 6, 8, 10, 15, 20, 25, 30, 40)]
    return tuple(out)


def parse_transform(spec: str) -> tuple:
    """("jpeg", q) | ("djpeg", q1, q2) | ("gblur", k) | ("mblur", k) | ("resize", mode, scale) |
    ("noise", std); a clear error for anything else."""
    kind, *args = str(spec).split(":")
    try:
        if kind == "jpeg" and len(args) == 1 and 1 <= int(args[0]) <= 100:
            return kind, int(args[0])
        if kind == "djpeg" and len(args) == 2 and all(1 <= int(a) <= 100 for a in args):
            return kind, int(args[0]), int(args[1])
        if kind in ("gblur", "mblur") and len(args) == 1 and int(args[0]) >= 3 and int(args[0]) % 2:
            return kind, int(args[0])
        if kind == "resize" and len(args) == 2 and args[0] in INTERPOLATIONS and 0 < float(args[1]) < 1:
            return kind, args[0], float(args[1])
        if kind == "noise" and len(args) == 1 and float(args[0]) > 0:
            return kind, float(args[0])
    except ValueError:
        pass
    raise ValueError(f"dnadet: bad transformation {spec!r}: expected jpeg:Q, djpeg:Q1:Q2, gblur:K, "
                     f"mblur:K (odd K >= 3), resize:MODE:SCALE (MODE in {sorted(INTERPOLATIONS)}, "
                     f"0 < SCALE < 1) or noise:STD")


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def apply_transform(spec, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One transformation of a uint8 (3,H,W) CPU image -> uint8 (3,H,W) (noise drawn from gen)."""
    t = parse_transform(spec) if isinstance(spec, str) else spec
    kind = t[0]
    if kind == "gblur":   # cv2's default sigma for kernel k (sigma=0)
        k = t[1]
        return gaussian_blur(x.float()[None], [k, k], [0.3 * ((k - 1) * 0.5 - 1) + 0.8] * 2)[0] \
            .round().clamp(0, 255).to(torch.uint8)
    if kind == "noise":
        return (x.float() + t[1] * torch.randn(x.shape, generator=gen)).round().clamp(0, 255) \
            .to(torch.uint8)
    im = Image.fromarray(x.permute(1, 2, 0).numpy())
    if kind == "jpeg":
        im = _jpeg(im, t[1])
    elif kind == "djpeg":
        im = _jpeg(_jpeg(im, t[1]), t[2])
    elif kind == "mblur":
        im = im.filter(ImageFilter.MedianFilter(t[1]))
    else:   # resize: down by the scale, back up, with the same interpolation
        w, h = im.size
        mode = INTERPOLATIONS[t[1]]
        small = im.resize((max(1, round(w * t[2])), max(1, round(h * t[2]))), mode)
        im = small.resize((w, h), mode)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# Losses

def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out) of L2-normalised z (N, d): for each
    anchor i with positives P(i) (same label, j != i) among A(i) (all j != i),
    -1/|P(i)| sum_p log(exp(z_i.z_p/t) / sum_a exp(z_i.z_a/t)), averaged over anchors with |P| > 0."""
    n = len(z)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    count = pos.sum(1)
    has = count > 0
    if not has.any():
        return z.sum() * 0.0
    mean_pos = log_prob.masked_fill(~pos, 0.0).sum(1)[has] / count[has]
    return -mean_pos.mean()


def uncertainty_weighted(losses: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """Kendall et al. 2018 (eq. 7 form): sum_i exp(-s_i) / 2 * L_i + s_i / 2, with s_i = log sigma_i^2
    learned: sum_i L_i / (2 sigma_i^2) + log sigma_i."""
    return (0.5 * torch.exp(-log_vars) * losses + 0.5 * log_vars).sum()


# ---------------------------------------------------------------------------------------------
# The model

DEFAULTS = {
    "width": 1.0,                        # channel multiplier of 64-128-256-512
    "transforms": paper_transforms(),    # stage-1 classes (specs, see parse_transform)
    "pretrain_steps": 10000,             # stage 1 (paper: 50 epochs of its real-image pool)
    "pretrain_batch": 128,
    "pretrain_lr": 1e-4,
    "pretrain_crop": 128,                # stage-1 random crop side (<= image size)
    "lr": 1e-4,                          # stage 2, network
    "lr_step": 500,                      # StepLR period (steps) and factor, both stages
    "lr_gamma": 0.9,
    "weight_lr": 0.01,                   # the uncertainty weights' own Adam
    "upscale": 4,                        # stage-2 resize factor (paper: 128 -> 512)
    "crop": 64,                          # stage-2 random crop side
    "crops_per_image": 16,
    "temperature": 0.07,
    "projection": 128,                   # projection head output size
    "dropout": 0.2,
}
SLOPE = 0.2


class DNANet(nn.Module):
    def __init__(self, image_size: int, classes: int, transforms: int, width: float,
                 projection: int, dropout: float, upscale: float):
        super().__init__()
        self.image_size, self.classes, self.dropout = image_size, classes, dropout
        # the stage-2 resize factor, kept in the state dict so embed resizes as training did
        self.register_buffer("upscale", torch.tensor(float(upscale)))
        layers, cin = [], 3
        for c in (max(1, round(width * c)) for c in (64, 128, 256, 512)):
            layers += [nn.Conv2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(SLOPE),
                       nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(SLOPE)]
            cin = c
        self.trunk = nn.Sequential(*layers)
        self.dim = cin
        self.head = nn.Linear(cin, classes)              # stage 2 (Dropout applied in `logits`)
        self.pretrain_head = nn.Linear(cin, transforms)  # stage 1
        self.projection = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(), nn.Linear(cin, projection))
        self.log_vars = nn.Parameter(torch.zeros(2))     # uncertainty weights of (CE, SupCon)

    def features(self, x):
        """The globally average-pooled trunk output: the zero-shot embedding."""
        return self.trunk(x).mean((2, 3))

    def logits(self, head: nn.Linear, f: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """head(Dropout(f)); the dropout mask drawn from the CPU gen (None: no dropout, eval)."""
        if gen is not None and self.dropout > 0:
            keep = (torch.rand(f.shape, generator=gen) >= self.dropout).to(f.device, f.dtype)
            f = f * keep / (1 - self.dropout)
        return head(f)

    def forward(self, x):
        return self.logits(self.head, self.features(x), None)


def build(image_size: int, classes: int, seed: int = 0, **hp) -> DNANet:
    hp = resolve("dnadet", DEFAULTS, hp)
    transforms = [parse_transform(t) for t in hp["transforms"]]
    if len(transforms) < 2:
        raise ValueError("dnadet: stage 1 needs at least 2 transformations")
    return seeded(seed, lambda: DNANet(image_size, classes, len(transforms), float(hp["width"]),
                                       int(hp["projection"]), float(hp["dropout"]),
                                       float(hp["upscale"])))


def _upscale(x: torch.Tensor, factor) -> torch.Tensor:
    factor = float(factor)
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)


def pretrain(model: DNANet, images: torch.Tensor, gen: torch.Generator, device, progress=None,
             state: TrainingState | None = None, monitor: Monitor | None = None, **hp) -> dict:
    """Stage 1: pretrain_steps of cross-entropy on which transformation (uniform over
    hp["transforms"]) was applied to images drawn uniformly from `images` (uint8 (n,3,S,S)).
    Returns the loss/accuracy summary (keys prefixed "pretrain_"). state: resumable, phase
    "pretrain"; monitor: its losses join the learning curve (phase "pretrain")."""
    transforms = [parse_transform(t) for t in hp["transforms"]]
    steps, crop = int(hp["pretrain_steps"]), int(hp["pretrain_crop"])
    params = [*model.trunk.parameters(), *model.pretrain_head.parameters()]
    opt = Adam(params, lr=float(hp["pretrain_lr"]))
    log = LossLog(steps, progress, ("loss", "accuracy"))
    model.train()
    state, monitor = state or TrainingState(), monitor or Monitor()
    monitor.start("pretrain", steps)
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, _ = state.resume("pretrain", resumable)
    for step in range(done, steps):
        idx = torch.randint(len(images), (int(hp["pretrain_batch"]),), generator=gen)
        y = torch.randint(len(transforms), (len(idx),), generator=gen)
        x = torch.stack([apply_transform(transforms[t], images[i], gen)
                         for i, t in zip(idx.tolist(), y.tolist())])
        x = random_crops(as_unit_range(x), crop, 1, gen).to(device)
        y = y.to(device)
        logits = model.logits(model.pretrain_head, model.features(x), gen)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step(step_lr(float(hp["pretrain_lr"]), step, int(hp["lr_step"]), float(hp["lr_gamma"])))
        log.add(loss.item(), (logits.argmax(1) == y).float().mean().item())
        monitor.after(step + 1, loss.item())
        state.checkpoint("pretrain", step + 1, steps, resumable)
    return {f"pretrain_{k}": v for k, v in log.summary().items()}


def heldout_accuracy(model: DNANet, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    """Closed-set accuracy of the source head on the whole uint8 images resized by `upscale` (the
    pooled feature `embed` returns), eval mode."""
    return accuracy(embed_batches(model, images, device, lambda x: model(_upscale(x, model.upscale))), labels)


def train(model: DNANet, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, pretrain_images: torch.Tensor | None = None, state_path=None,
          stopping: Stopping | None = None, **hp):
    """Stage 1 (`pretrain`, on pretrain_images: real images; default the fit part's images), then at
    most `steps` stage-2 steps on class-balanced batches of batch_size images of the fit part,
    early-stopped on the held-out part (`stopping`, common.Stopping). Returns (model in eval mode,
    the best evaluation's weights; info): the means over the last min(LOG_EVERY, steps) steps run of
    loss (the weighted sum), ce, supcon, accuracy (on crops), the final weights exp(-s_i)/2, the
    stopping (steps_run, best_step, heldout_acc) and the learning curve (history). state_path:
    resumable state (common.TrainingState; phases "pretrain", then "main"), resumed from when
    present."""
    hp = resolve("dnadet", DEFAULTS, hp)
    stopping = stopping or Stopping()
    start = time.perf_counter()
    images, labels, held, held_labels = fit_and_heldout("dnadet", images_by_class, model.image_size,
                                                        stopping.fraction, seed)
    if len(images_by_class) != model.classes:
        raise ValueError(f"dnadet: built for {model.classes} classes, got {len(images_by_class)}")
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device)
    model.upscale.fill_(float(hp["upscale"]))   # train's hp win over build's; embed follows
    state = training_state(state_path, "dnadet", hp, images_by_class, steps, batch_size, seed, stopping)
    monitor = Monitor(stopping)
    info = state.phase("pretrain", lambda: pretrain(
        model, images if pretrain_images is None else pretrain_images, gen, device, None, state, monitor, **hp))
    net = [*model.trunk.parameters(), *model.head.parameters(), *model.projection.parameters()]
    opt = Adam(net, lr=float(hp["lr"]))
    opt_w = Adam([model.log_vars], lr=float(hp["weight_lr"]))
    per, crop = int(hp["crops_per_image"]), int(hp["crop"])
    log = LossLog(steps, progress, ("loss", "ce", "supcon", "accuracy"))
    model.train()
    monitor.start("train", steps, model, lambda: heldout_accuracy(model, held, held_labels, device))
    resumable = {"model": model, "opt": opt, "opt_w": opt_w, "gen": gen, "log": log, "monitor": monitor}
    done, _ = state.resume("main", resumable)
    for step in range(done, steps):
        idx = balanced_batch(labels, batch_size, gen)
        x = _upscale(as_unit_range(images[idx].to(device)), hp["upscale"])
        x = random_crops(x, crop, per, gen)
        y = labels[idx].repeat_interleave(per).to(device)
        f = model.features(x)
        # cross-entropy on the LOGITS: DNA-Det's code applies softmax first, so CE sees a softmax
        # of probabilities (a bug that flattens its gradients); we do the correct thing
        logits = model.logits(model.head, f, gen)
        ce = F.cross_entropy(logits, y)
        sc = supcon_loss(F.normalize(model.projection(f), dim=1), y, float(hp["temperature"]))
        loss = uncertainty_weighted(torch.stack([ce, sc]), model.log_vars)
        opt.zero_grad()
        opt_w.zero_grad()
        loss.backward()
        opt.step(step_lr(float(hp["lr"]), step, int(hp["lr_step"]), float(hp["lr_gamma"])))
        opt_w.step()
        log.add(loss.item(), ce.item(), sc.item(), (logits.argmax(1) == y).float().mean().item())
        if monitor.after(step + 1, loss.item()):
            break
        state.checkpoint("main", step + 1, steps, resumable)
    stopped = monitor.finish()
    weights = (0.5 * torch.exp(-model.log_vars.detach())).tolist()
    info = {"method": "dnadet", "steps": steps, "images": len(images), "heldout_images": len(held),
            "classes": model.classes, **stopped, "seconds": time.perf_counter() - start, **info, **log.summary(),
            "weight_ce": weights[0], "weight_supcon": weights[1],
            **{k: v for k, v in hp.items() if k != "transforms"}, "transforms": len(hp["transforms"]),
            "history": monitor.rows}
    return model.eval(), info


def embed(model: DNANet, images: torch.Tensor, device) -> torch.Tensor:
    """(N, 512 * width) pooled features of the whole image resized by the model's `upscale` (the
    factor it was trained with), eval mode."""
    return embed_batches(model, images, device, lambda x: model.features(_upscale(x, model.upscale)))
