"""DCGAN (Radford et al., 2016), trained from scratch by the workflow.

Generator: z (B, z_dim) as a 1x1 map -> ConvTranspose2d(4, stride 1) to 4x4 -> one
ConvTranspose2d(4, stride 2, padding 1) + BatchNorm + ReLU block per x2 up to image_size/2 ->
ConvTranspose2d(4, stride 2) to 3 channels -> tanh. Channels halve per block and end at `g_width`
(the paper's ngf) before the RGB layer, so at 64x64 they are 8*ngf, 4*ngf, 2*ngf, ngf.
Discriminator: the mirror image: Conv2d(4, stride 2, padding 1) + LeakyReLU(0.2) blocks, BatchNorm
on all but the first, a 4x4 valid conv to one logit.
Initial weights as in the paper: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02), biases 0.
Training: `gan.train`, non-saturating loss, Adam(lr 2e-4, betas (0.5, 0.999)).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import gan
from .common import resolve

DEFAULTS = {
    "z_dim": 100,
    "g_width": 32,          # ngf: generator channels before the RGB layer (paper: 64; CPU budget)
    "d_width": 32,          # ndf: discriminator channels after the first conv (paper: 64)
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas": (0.5, 0.999),
    "loss": "nonsaturating",
    "n_critic": 1,
    "ema": 0.0,             # > 0: return a moving average of G's weights (see gan.train)
}


# ---------------------------------------------------------------------------------------------
# The models

def _init(module):
    """DCGAN paper init; applied to every submodule."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, image_size: int, z_dim: int, width: int):
        super().__init__()
        self.z_dim, self.image_size = z_dim, image_size
        n = gan.levels(image_size)                       # x2 steps after 4x4; the last makes RGB
        chans = [width * 2 ** (n - 1 - i) for i in range(n)]
        layers = [nn.ConvTranspose2d(z_dim, chans[0], 4, 1, 0, bias=False),
                  nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for a, b in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, z):
        return self.net(z.view(len(z), self.z_dim, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, image_size: int, width: int):
        super().__init__()
        n = gan.levels(image_size)
        chans = [width * 2 ** i for i in range(n)]
        layers = [nn.Conv2d(3, chans[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(chans[-1], 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, x):
        return self.net(x).view(len(x))


# ---------------------------------------------------------------------------------------------
# The family interface

def build(image_size: int, **hp) -> Generator:
    """The untrained generator (PyTorch's RNG decides its weights; `train` seeds it)."""
    hp = resolve("dcgan", DEFAULTS, hp)
    return Generator(image_size, hp["z_dim"], hp["g_width"])


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train G and D from the seed's initial weights; returns (G in eval mode, info)."""
    return gan.train_family("dcgan", DEFAULTS, build, lambda size, hp: Discriminator(size, hp["d_width"]),
                            pool, image_size, steps, batch_size, seed, device, progress, hp)


def sample(model, n, seed, device, batch_size: int = 256) -> torch.Tensor:
    """(n,3,S,S) float in [-1,1] from z ~ N(0, I) drawn by torch.Generator(seed)."""
    return gan.sample(model, n, seed, device, batch_size)
