"""Test-bed family "flow": a multi-scale normalizing flow in the style of RealNVP (Dinh et al. 2017)
and Glow (Kingma & Dhariwal 2018, the paper's [46]), trained by exact maximum likelihood.

A flow is an invertible map f from an image x to a latent z of the same dimension D with a
tractable Jacobian, so log p(x) = log N(f(x); 0, I) + log |det df/dx| (change of variables), and a
sample is f^-1(z) for z ~ N(0, T^2 I) (T < 1, the "temperature", trades variety for cleaner images).

Architecture (Glow's multi-scale design, RealNVP section 3.6): per scale, a squeeze (space-to-depth
x2: (C, H, W) -> (4C, H/2, W/2)), then ``steps_per_scale`` steps of flow, then, except after the
last scale, half of the channels are split off to the prior (they leave the flow early; the rest
goes on to the next, coarser scale). The prior of a split-off half is a diagonal Gaussian whose mean
and log-std are a zero-initialised conv3x3 of the kept half (Glow's split prior: the fine details
depend on the coarse content, instead of being independent noise in the samples); written as the
affine map z -> (z - mean) / std, whose output is N(0, I) like the last scale's. One step of flow
(Glow section 3) is
  - ActNorm: a per-channel affine map whose bias and scale are set on the first batch so that its
    output has zero mean and unit variance per channel (data-dependent initialisation),
  - an invertible 1x1 convolution, parametrised by its LU decomposition W = P L (U + diag(s)) with
    P fixed, so log |det W| = sum log |s| costs nothing (Glow section 3.2); initialised as a
    random rotation,
  - an affine coupling (RealNVP): the second half of the channels is scaled and shifted by
    functions of the first half, y_b = x_b * exp(log_s) + t, y_a = x_a, with (log_s, t) from a
    small CNN (conv3x3-ReLU-conv1x1-ReLU-conv3x3, ``hidden`` channels) whose last conv starts at
    zero. log_s is soft-clamped to (-CLAMP, CLAMP) by CLAMP * tanh(. / CLAMP), RealNVP's tanh
    scale: bounded scales keep training stable (the role of Glow's sigmoid(. + 2)), and unlike
    Glow's sigmoid it is exactly the identity at initialisation.
So before the ActNorm initialisation a fresh flow is an orthogonal linear map (squeezes, splits with
N(0, I) priors, rotations): log |det| = 0 and ||z|| = ||x||, which the tests use as a known value.

Data and bits per dimension: images are uint8 mapped to [-1, 1], one 8-bit level is BIN = 2/255
wide there. Training adds uniform dequantisation noise of one bin (centred on the level), so the
flow models a continuous density p over [-1, 1]-space. The probability of an 8-bit image is the
integral of p over its bin, at least BIN^D exp(E[log p]) (Jensen; Theis et al. 2016), so the
standard bits per dimension on 8-bit data are (bounded above by)
bpd = -log p / (D ln 2) - log2(BIN) = -log p / (D ln 2) + log2(127.5): the second term accounts for
the [-1, 1] scaling (a uniform density over the 256 bins gives exactly 8).

Training: Adam on the mean bpd of a batch, with a linear learning-rate warm-up over ``warmup``
steps and gradient-norm clipping at ``clip`` (without them a flow's first steps can blow up the
log-determinant terms); a step whose loss or gradient is not finite is skipped and counted.

Determinism: the initial weights (and the rotations of the 1x1 convolutions) come from
torch.manual_seed(seed) (the global RNG is restored afterwards); batch indices and the
dequantisation noise come from a CPU torch.Generator seeded with `seed` and are moved to the
device, and sampling draws z on the CPU, so a seed gives the same model and samples on any device up
to floating-point differences of the kernels.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..optim import Adam  # torch's Adam update without the seconds-long torch._dynamo import
from ..synthetic import fit_to_size
from .common import LossLog, check_size, draw_batch, resolve, seeded

DEFAULTS = {
    "scales": 2,             # squeeze + steps (+ split) blocks; needs image_size >= 2**(scales + 1)
    "steps_per_scale": 4,    # ActNorm + 1x1 conv + affine coupling steps per scale
    "hidden": 64,            # channels of the coupling CNNs
    "lr": 1e-3,              # Adam, reached at the end of the warm-up
    "warmup": 100,           # steps of linear learning-rate warm-up from lr / warmup
    "clip": 50.0,            # maximal gradient norm (of the bpd loss)
}
BIN = 2.0 / 255.0            # width of one 8-bit level in [-1, 1]
CLAMP = 2.0                  # bound of the coupling's log-scale (soft clamp)
MIN_SIDE = 8                 # smallest image_size (two scales down to 2x2)
SAMPLE_CHUNK = 256           # images inverted per pass in `sample`
_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------------
# The layers: each maps x -> (y, log |det dy/dx| per image) and has an exact inverse

class ActNorm(nn.Module):
    """y = (x + bias) * exp(logs) per channel; `pending` makes the next forward set bias and logs
    from its input (zero mean, unit variance per channel) before transforming it."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.pending = False

    def forward(self, x):
        if self.pending:
            with torch.no_grad():
                self.bias.copy_(-x.mean(dim=(0, 2, 3), keepdim=True))
                self.logs.copy_(-torch.log(x.std(dim=(0, 2, 3), keepdim=True) + 1e-6))
            self.pending = False
        logdet = x.shape[2] * x.shape[3] * self.logs.sum()
        return (x + self.bias) * torch.exp(self.logs), logdet.expand(x.shape[0])

    def inverse(self, y):
        return y * torch.exp(-self.logs) - self.bias


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution with W = P L (U + diag(sign * exp(log_s))) (Glow section 3.2):
    P a fixed permutation, L unit lower-triangular, U strictly upper-triangular."""

    def __init__(self, channels: int):
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(rotation)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self):
        eye = torch.eye(len(self.mask), dtype=self.mask.dtype, device=self.mask.device)
        lower = self.lower * self.mask + eye
        upper = self.upper * self.mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x):
        w = self.weight()
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return F.conv2d(x, w[:, :, None, None]), logdet.expand(x.shape[0])

    def inverse(self, y):
        w = self.weight()
        w_inv = torch.linalg.inv(w.double()).to(w.dtype)   # float64: the inverse stays exact to ~1e-7
        return F.conv2d(y, w_inv[:, :, None, None])


class AffineCoupling(nn.Module):
    """y_a = x_a, y_b = x_b * exp(log_s(x_a)) + t(x_a) on the two channel halves (RealNVP)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        half = channels // 2
        self.net = nn.Sequential(nn.Conv2d(half, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, 2 * (channels - half), 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)    # starts as the identity (Glow's zero-initialised conv)
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, xa):
        h = self.net(xa)
        log_s = CLAMP * torch.tanh(h[:, 0::2] / CLAMP)
        return log_s, h[:, 1::2]

    def forward(self, x):
        xa, xb = x.chunk(2, dim=1)
        log_s, t = self._scale_shift(xa)
        return torch.cat([xa, xb * torch.exp(log_s) + t], dim=1), log_s.sum(dim=(1, 2, 3))

    def inverse(self, y):
        ya, yb = y.chunk(2, dim=1)
        log_s, t = self._scale_shift(ya)
        return torch.cat([ya, (yb - t) * torch.exp(-log_s)], dim=1)


class FlowStep(nn.Module):
    """One step of flow (Glow figure 2a): ActNorm, invertible 1x1 conv, affine coupling."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels),
                                     AffineCoupling(channels, hidden)])

    def forward(self, x):
        logdet = 0.0
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y):
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


def squeeze(x):
    """Space-to-depth x2: (B, C, H, W) -> (B, 4C, H/2, W/2), a permutation of the entries."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x):
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


# ---------------------------------------------------------------------------------------------
# The model

def _check_size(image_size: int, scales: int) -> None:
    check_size("flow", image_size, MIN_SIDE)
    if scales < 1 or image_size < 2 ** (scales + 1):
        raise ValueError(f"scales={scales} needs 1 <= scales and image_size >= {2 ** (scales + 1)} "
                         f"(a 2x2 coarsest scale), got image_size {image_size}")


class Flow(nn.Module):
    """forward(x) -> (zs, logdet): the N(0, I) latent pieces (one per split, then the last scale's
    output) and log |det dz/dx| per image; inverse(zs) -> x; log_prob(x) -> log density per image."""

    def __init__(self, image_size: int, scales: int, steps_per_scale: int, hidden: int):
        super().__init__()
        _check_size(image_size, scales)
        if steps_per_scale < 1 or hidden < 1:
            raise ValueError(f"steps_per_scale and hidden must be >= 1, got {steps_per_scale}, {hidden}")
        self.image_size = image_size
        self.levels = nn.ModuleList()
        self.latent_shapes = []                        # (C, H, W) of each z piece, in order
        c, side = 3, image_size
        self.priors = nn.ModuleList()                  # split priors: conv3x3 of the kept half
        for i in range(scales):
            c, side = 4 * c, side // 2
            self.levels.append(nn.ModuleList([FlowStep(c, hidden) for _ in range(steps_per_scale)]))
            if i < scales - 1:
                self.latent_shapes.append((c // 2, side, side))
                c //= 2
                self.priors.append(nn.Conv2d(c, 2 * c, 3, padding=1))
                nn.init.zeros_(self.priors[-1].weight)   # starts as N(0, I), like Glow's Conv2dZeros
                nn.init.zeros_(self.priors[-1].bias)
        self.latent_shapes.append((c, side, side))
        self.dims = 3 * image_size * image_size

    def forward(self, x):
        zs, logdet = [], torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i, level in enumerate(self.levels):
            x = squeeze(x)
            for step in level:
                x, ld = step(x)
                logdet = logdet + ld
            if i < len(self.levels) - 1:
                z, x = x.chunk(2, dim=1)               # the first half leaves for the prior
                mean, log_std = self._split_prior(i, x)
                zs.append((z - mean) * torch.exp(-log_std))
                logdet = logdet - log_std.sum(dim=(1, 2, 3))
        return zs + [x], logdet

    def _split_prior(self, i, kept):
        """Mean and log-std of the i-th split-off half given the kept half (Glow's split prior)."""
        h = self.priors[i](kept)
        return h[:, 0::2], CLAMP * torch.tanh(h[:, 1::2] / CLAMP)

    def inverse(self, zs):
        x = zs[-1]
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                mean, log_std = self._split_prior(i, x)
                x = torch.cat([mean + zs[i] * torch.exp(log_std), x], dim=1)
            for step in reversed(self.levels[i]):
                x = step.inverse(x)
            x = unsqueeze(x)
        return x

    def log_prob(self, x):
        """log p(x) per image, a density on [-1, 1]-space (change of variables, N(0, I) prior)."""
        zs, logdet = self(x)
        prior = sum(-0.5 * (z.pow(2).flatten(1).sum(1) + z[0].numel() * _LOG_2PI) for z in zs)
        return prior + logdet

    def unflatten(self, z):
        """(B, dims) -> the list of latent pieces `inverse` takes."""
        sizes = [c * h * w for c, h, w in self.latent_shapes]
        return [p.reshape(-1, *s) for p, s in zip(z.split(sizes, dim=1), self.latent_shapes)]

    @torch.no_grad()
    def initialize(self, x):
        """Data-dependent ActNorm initialisation (Glow section 3.1) on the batch x."""
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.pending = True
        self(x)


def build(image_size: int, **hp) -> Flow:
    """An untrained flow (default init from the current global RNG; ActNorm not yet initialised)."""
    hp = resolve("flow", DEFAULTS, hp)
    return Flow(image_size, int(hp["scales"]), int(hp["steps_per_scale"]), int(hp["hidden"]))


def bits_per_dim(log_density, dims: int):
    """Bits per dimension on 8-bit data of a log density on [-1, 1]-space (see the docstring)."""
    return -log_density / (dims * math.log(2)) - math.log2(BIN)


def dequantize(x, generator: torch.Generator):
    """x in [-1, 1] plus uniform noise over its 8-bit level's bin (noise from the CPU generator)."""
    u = torch.rand(x.shape, generator=generator).to(x.device, x.dtype)
    return x + (u - 0.5) * BIN


def loss(model: Flow, x, generator: torch.Generator):
    """Mean negative log-likelihood in bits per dimension of the batch x in [-1, 1], dequantised."""
    return bits_per_dim(model.log_prob(dequantize(x, generator)), model.dims).mean()


# ---------------------------------------------------------------------------------------------
# Training and sampling

def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train a flow on `pool` (uint8 or [-1, 1] float, (N,3,S,S)) for `steps` Adam steps.

    The ActNorm layers are initialised on the first (dequantised) batch. progress(step, loss) is
    called every common.LOG_EVERY steps and at the last step, with the mean bpd since the previous call.
    Returns (flow in eval mode, info); info's bpd is the mean over the last min(LOG_EVERY, steps)
    steps, bpd_first that of step 0 (after the ActNorm initialisation, before any update), skipped
    the number of steps not taken because the loss or the gradient was not finite.
    """
    hp = resolve("flow", DEFAULTS, hp)
    lr, warmup, clip = float(hp["lr"]), max(int(hp["warmup"]), 1), float(hp["clip"])
    start = time.perf_counter()
    pool = fit_to_size(pool, image_size)   # once, up front
    model = seeded(seed, lambda: build(image_size, **hp)).to(device).train()
    params = list(model.parameters())
    opt = Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    log, skipped = LossLog(steps, progress, ("bpd",)), 0
    for step in range(steps):
        x = draw_batch(pool, batch_size, gen, device)
        if step == 0:
            model.initialize(dequantize(x, gen))
        bpd = loss(model, x, gen)
        opt.zero_grad()
        bpd.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if torch.isfinite(bpd) and torch.isfinite(norm):
            factor = min(1.0, clip / (float(norm) + 1e-6))
            if factor < 1.0:
                for g in grads:
                    g.mul_(factor)
            opt.step(lr=lr * min(1.0, (step + 1) / warmup))
        else:
            skipped += 1
        log.add(bpd.item())
    info = {"family": "flow", "steps": steps, "seconds": time.perf_counter() - start, **log.summary(),
            "skipped": skipped, "pixels": model.dims, **hp}
    return model.eval(), info


@torch.no_grad()
def sample(model: Flow, n: int, seed: int, device, temperature: float = 0.7) -> torch.Tensor:
    """n images f^-1(z), z ~ N(0, temperature^2 I) drawn from torch.Generator(seed) on the CPU as one
    (n, dims) matrix (so the first k images do not depend on n): float (n,3,S,S) in [-1, 1]."""
    z = torch.randn(n, model.dims, generator=torch.Generator().manual_seed(seed)) * temperature
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    out = torch.cat([model.inverse(model.unflatten(z[i:i + SAMPLE_CHUNK].to(device, dtype)))
                     for i in range(0, n, SAMPLE_CHUNK)]) if n else \
        torch.empty(0, 3, model.image_size, model.image_size, device=device, dtype=dtype)
    model.train(was_training)
    return out.clamp(-1.0, 1.0)
