"""The one GAN training loop of the test bed, shared by every GAN family (dcgan, progan, sngan, vit).

A family module builds its generator G and discriminator D (under `common.seeded`, so the seed fixes
the initial weights) and hands them to `train` with its training hyper-parameters (`TRAIN_KEYS`).

One *step* is one generator update, preceded by ``n_critic`` discriminator updates, each on a fresh
batch of real images and a fresh batch of noise; the generator step reuses the fake batch of the
last discriminator update (as in the DCGAN reference code), scored by the updated D.
Losses: "nonsaturating" (Goodfellow et al.: D minimises softplus(-D(x)) + softplus(D(G(z))), G
minimises softplus(-D(G(z)))) or "hinge" (SNGAN: D minimises relu(1-D(x)) + relu(1+D(G(z))),
G minimises -D(G(z))). Optimiser: Adam for both nets, learning rates and betas from the family.

Randomness: ``seed`` seeds the initial weights (torch.manual_seed inside `common.seeded`, which
restores the global generator afterwards) and two CPU torch.Generators, one for the noise and one
for the batch indices, so a run is reproducible for a seed and draws the same numbers on every device.
Sampling (`sample`) draws the noise from torch.Generator(seed) on the CPU, one image after the
other, so the first k images' noise does not depend on n, on the batch size or on the device.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..synthetic import fit_to_size
from .common import LOG_EVERY, check_size, draw_batch, resolve, seeded

LOSSES = ("nonsaturating", "hinge")
TRAIN_KEYS = ("lr_g", "lr_d", "betas", "loss", "n_critic", "ema")
MIN_SIZE = 16    # 4x4 and at least two x2 steps


# ---------------------------------------------------------------------------------------------
# Helpers for the family modules

def split(hp: dict) -> tuple[dict, dict]:
    """(model hyper-parameters, training hyper-parameters) of a resolved hp dict."""
    return ({k: v for k, v in hp.items() if k not in TRAIN_KEYS},
            {k: v for k, v in hp.items() if k in TRAIN_KEYS})


def levels(image_size: int) -> int:
    """Number of x2 resolution steps between 4x4 and image_size (3 for 32, 4 for 64)."""
    return int(math.log2(check_size("GAN", image_size, MIN_SIZE))) - 2


# ---------------------------------------------------------------------------------------------
# Training

def _d_loss(kind, real, fake):
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _g_loss(kind, fake):
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


@torch.no_grad()
def _update_average(avg, model, decay):
    for a, p in zip(avg.parameters(), model.parameters()):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(avg.buffers(), model.buffers()):
        a.copy_(b)


def train(G: nn.Module, D: nn.Module, pool: torch.Tensor, image_size: int, steps: int,
          batch_size: int, seed: int, device, progress=None, *, lr_g: float, lr_d: float,
          betas=(0.5, 0.999), loss: str = "nonsaturating", n_critic: int = 1, ema: float = 0.0,
          channels_last: bool | None = None):
    """Train G against D on `pool` (uint8 or [-1,1] float (N,3,S,S); resized once if S differs).

    G must have attributes z_dim and image_size and map (B, z_dim) noise to (B, 3, image_size,
    image_size) images; D maps images to (B,) or (B,1) scores. progress(step, d_loss, g_loss) is
    called every LOG_EVERY steps and after the last. Returns (G in eval mode on `device`, info dict
    of plain values).
    ema > 0: the returned G is instead an exponential moving average of G's weights with that decay
    per step (ProGAN's "Gs"; buffers are copied), which smooths the step-to-step oscillation.
    channels_last: memory format while training; default (None) is channels_last on CPU, where
    oneDNN's NHWC convolutions made a step 1.2-1.3x faster for these nets, contiguous elsewhere.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if steps < 0 or batch_size < 1 or n_critic < 1:
        raise ValueError(f"need steps >= 0, batch_size >= 1, n_critic >= 1; got {steps}, "
                         f"{batch_size}, {n_critic}")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema must be in [0, 1), got {ema!r}")
    pool = fit_to_size(pool, check_size("GAN", image_size, MIN_SIZE))
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt).train(), D.to(device, memory_format=fmt).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=tuple(betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=tuple(betas))
    G_avg = copy.deepcopy(G).eval().requires_grad_(False) if ema else None
    z_gen = torch.Generator().manual_seed(seed)
    # a different stream for the data: same seed, offset so z and indices are not the same numbers
    idx_gen = torch.Generator().manual_seed(seed + 0x9E3779B9)
    # (d_loss, g_loss) of the last LOG_EVERY steps, kept as tensors: no device sync per step
    recent = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        for _ in range(n_critic):
            real = draw_batch(pool, batch_size, idx_gen, device).contiguous(memory_format=fmt)
            z = torch.randn(batch_size, G.z_dim, generator=z_gen).to(device)
            fake = G(z)
            d_loss = _d_loss(loss, D(real), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        D.requires_grad_(False)                       # G's step needs no gradients of D's weights
        g_loss = _g_loss(loss, D(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        if G_avg is not None:
            _update_average(G_avg, G, ema)
        recent = (recent + [torch.stack([d_loss.detach(), g_loss.detach()])])[-LOG_EVERY:]
        if progress and (step % LOG_EVERY == 0 or step == steps):
            progress(step, *recent[-1].tolist())
    last = recent[-1].tolist() if recent else [float("nan")] * 2
    mean = torch.stack(recent).mean(0).tolist() if recent else last
    seconds = time.perf_counter() - start
    d_val, g_val = last
    info = {"steps": steps, "d_steps": steps * n_critic, "seconds": seconds,
            "seconds_per_step": seconds / steps if steps else 0.0,
            "d_loss": d_val, "g_loss": g_val, "d_loss_mean": mean[0], "g_loss_mean": mean[1],
            "loss": loss, "batch_size": batch_size, "image_size": image_size, "seed": seed}
    G = G if G_avg is None else G_avg
    return G.to(memory_format=torch.contiguous_format).eval(), info


def train_family(family: str, defaults: dict, build: Callable, discriminator: Callable, pool,
                 image_size, steps, batch_size, seed, device, progress, hp: dict):
    """A GAN family's `train`: G (from `build`) and D (`discriminator(image_size, hp)`) made from
    the seed's initial weights, trained by the shared loop; returns (G in eval mode, info)."""
    hp = resolve(family, defaults, hp)
    model_hp, train_hp = split(hp)
    G, D = seeded(seed, lambda: (build(image_size, **model_hp), discriminator(image_size, hp)))
    G, info = train(G, D, pool, image_size, steps, batch_size, seed, device, progress, **train_hp)
    return G, {**info, "family": family}


# ---------------------------------------------------------------------------------------------
# Sampling

@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int, device, batch_size: int = 256) -> torch.Tensor:
    """(n,3,S,S) float images in [-1,1] from noise of torch.Generator(seed), G in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    # one draw per image: torch.randn of a whole (n, z_dim) block is not prefix-stable in n
    z = torch.stack([torch.randn(G.z_dim, generator=gen) for _ in range(n)]) if n else None
    was_training = G.training
    G.eval()
    try:
        out = [G(z[i:i + batch_size].to(device)).float() for i in range(0, n, batch_size)]
    finally:
        G.train(was_training)
    if not out:
        return torch.empty(0, 3, G.image_size, G.image_size, device=device)
    return torch.cat(out)
