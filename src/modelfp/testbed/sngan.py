"""SNGAN-style GAN (Miyato et al., 2018, ResNet architecture), trained from scratch by the workflow.

Generator: z -> linear to a 4x4 map -> one residual block per x2 step up to image_size -> BN ->
ReLU -> conv3x3 to RGB -> tanh. A block is BN -> ReLU -> nearest upsample -> conv3x3 -> BN -> ReLU
-> conv3x3, plus a shortcut nearest upsample -> conv1x1; all blocks have `g_width` channels.
Discriminator: residual blocks with spectral normalisation (one power iteration per forward pass in
training, torch.nn.utils.parametrizations.spectral_norm) on every conv and on the linear layer:
an "optimized" first block (conv3x3 -> ReLU -> conv3x3 -> avgpool, shortcut avgpool -> conv1x1),
then ReLU -> conv3x3 -> ReLU -> conv3x3 -> avgpool blocks (shortcut conv1x1 -> avgpool) down to
8x8, two blocks without pooling (identity shortcut), ReLU, sum over pixels, linear: at 32x32 exactly
the paper's CIFAR-10 discriminator, with one more pooled block per doubling of image_size.
Training: `gan.train` with the hinge loss and Adam(lr 2e-4, betas (0, 0.9)) as in the paper.
The paper's D takes 5 steps per G step (n_critic=5); the default here is 1 (also a setting of the
paper, with its own Adam), 5x cheaper on a CPU budget; set n_critic=5 for the paper's recipe.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from . import gan
from .common import resolve

DEFAULTS = {
    "z_dim": 128,
    "g_width": 32,          # channels of every generator block (paper: 256; CPU budget)
    "d_width": 32,          # channels of every discriminator block (paper: 128)
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas": (0.0, 0.9),
    "loss": "hinge",
    "n_critic": 1,
    "ema": 0.0,             # > 0: return a moving average of G's weights (see gan.train)
}


# ---------------------------------------------------------------------------------------------
# The models

def _up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GenBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(_up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_up(x))


class DisBlock(nn.Module):
    """Residual D block; `first`: no ReLU before the first conv and pool-then-conv shortcut."""

    def __init__(self, cin, cout, down=True, first=False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.shortcut = spectral_norm(nn.Conv2d(cin, cout, 1)) if (down or cin != cout) else None

    def _pool(self, x):
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x):
        h = self.conv1(x if self.first else F.relu(x))
        h = self._pool(self.conv2(F.relu(h)))
        if self.shortcut is None:
            return h + x
        s = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + s


class Generator(nn.Module):
    def __init__(self, image_size, z_dim, width):
        super().__init__()
        self.z_dim, self.image_size, self.width = z_dim, image_size, width
        self.linear = nn.Linear(z_dim, 16 * width)
        self.blocks = nn.Sequential(*[GenBlock(width, width) for _ in range(gan.levels(image_size))])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1),
                                 nn.Tanh())

    def forward(self, z):
        return self.out(self.blocks(self.linear(z).view(len(z), self.width, 4, 4)))


class Discriminator(nn.Module):
    def __init__(self, image_size, width):
        super().__init__()
        n = gan.levels(image_size) - 1                 # pooled blocks down to 8x8
        self.blocks = nn.Sequential(DisBlock(3, width, first=True),
                                    *[DisBlock(width, width) for _ in range(n - 1)],
                                    DisBlock(width, width, down=False),
                                    DisBlock(width, width, down=False))
        self.linear = spectral_norm(nn.Linear(width, 1))

    def forward(self, x):
        return self.linear(F.relu(self.blocks(x)).sum(dim=(2, 3))).view(len(x))


# ---------------------------------------------------------------------------------------------
# The family interface

def build(image_size: int, **hp) -> Generator:
    """The untrained generator (PyTorch's RNG decides its weights; `train` seeds it)."""
    hp = resolve("sngan", DEFAULTS, hp)
    return Generator(image_size, hp["z_dim"], hp["g_width"])


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train G and D from the seed's initial weights; returns (G in eval mode, info)."""
    return gan.train_family("sngan", DEFAULTS, build, lambda size, hp: Discriminator(size, hp["d_width"]),
                            pool, image_size, steps, batch_size, seed, device, progress, hp)


def sample(model, n, seed, device, batch_size: int = 256) -> torch.Tensor:
    """(n,3,S,S) float in [-1,1] from z ~ N(0, I) drawn by torch.Generator(seed)."""
    return gan.sample(model, n, seed, device, batch_size)
