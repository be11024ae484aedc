"""Transformer GAN with a ViT-style patch decoder (simplified TransGAN / ViTGAN), trained from scratch.

Stands in for the Transformer-based GANs of paper Table III (TransGAN [52], Styleformer [53],
GANsformer [50], StyleSwin [51]), whose generators build the image from a sequence of tokens
rather than by convolutional upsampling.

Generator: z (z_dim) -> one linear layer to (image_size/patch)^2 tokens of width `dim`, plus learned
position embeddings -> `depth` pre-norm transformer blocks (x + MHSA(LN(x)), x + MLP(LN(x)), MLP =
Linear -> GELU -> Linear with `mlp_ratio * dim` hidden units; attention through
F.scaled_dot_product_attention, `heads` heads) -> LayerNorm -> a linear head mapping every token on
its own to a patch x patch x 3 block of pixels -> fold (token k, row-major on the patch grid, fills
patch k) -> tanh. As in ViTGAN's patch decoder there is no convolution and no upsampling layer:
the pixels of one patch are a linear function of one token only, so the image is tiled by a fixed
basis of patch x patch "textures" (the head's weights). That is the architectural trait that makes
this family's fingerprint unlike CNN upsampling (no checkerboard or nearest/bilinear spectrum
replicas; instead a periodic structure at the patch size, i.e. peaks at multiples of
image_size/patch in the spectrum).
Discriminator: the SNGAN ResNet discriminator of `sngan` (spectral norm on every layer) with
`d_width` channels and the hinge loss, which is how ViTGAN-style generators are usually stabilised.
Training: the shared loop `gan.train`, Adam(lr 2e-4, betas (0, 0.99)) as in TransGAN.
Initial weights: ViT's N(0, 0.02) for linear layers and position embeddings, zero biases.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import gan, sngan
from .common import check_size, resolve

DEFAULTS = {
    "z_dim": 128,
    "dim": 64,              # token width
    "depth": 2,             # transformer blocks
    "heads": 4,             # attention heads (must divide dim)
    "mlp_ratio": 2,         # hidden units of a block's MLP per token channel
    "patch": 4,             # side of the pixel patch a token decodes to (must divide image_size)
    "d_width": 32,          # channels of the SNGAN discriminator's blocks
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas": (0.0, 0.99),
    "loss": "hinge",
    "n_critic": 1,
    "ema": 0.0,             # > 0: return a moving average of G's weights (see gan.train)
}


# ---------------------------------------------------------------------------------------------
# The models

def _init(module):
    """ViT init: linear weights N(0, 0.02), zero biases; LayerNorm keeps (1, 0)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Block(nn.Module):
    """Pre-norm transformer block on (B, N, dim) tokens."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)                      # (B, heads, N, d/heads)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class Generator(nn.Module):
    """forward(z) = decode(tokens(z)); `decode` is token-local (one token -> one patch)."""

    def __init__(self, image_size, z_dim, dim, depth, heads, mlp_ratio, patch):
        super().__init__()
        self.z_dim, self.image_size, self.dim, self.patch = z_dim, image_size, dim, patch
        self.grid = image_size // patch                                   # patches per side
        n = self.grid ** 2
        self.embed = nn.Linear(z_dim, n * dim)
        self.pos = nn.Parameter(torch.zeros(1, n, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3 * patch * patch)
        self.apply(_init)
        nn.init.normal_(self.pos, 0.0, 0.02)

    def tokens(self, z):
        """(B, N, dim) tokens after the transformer blocks, N = (image_size/patch)^2."""
        return self.blocks(self.embed(z).view(len(z), -1, self.dim) + self.pos)

    def decode(self, tokens):
        """(B, 3, S, S) in [-1, 1]: token k's patch (channel-major, as F.fold expects) at grid cell
        (k // grid, k % grid); every op here acts on one token at a time."""
        patches = self.head(self.norm(tokens)).transpose(1, 2)          # (B, 3*p*p, N)
        img = F.fold(patches, self.image_size, kernel_size=self.patch, stride=self.patch)
        return torch.tanh(img)

    def forward(self, z):
        return self.decode(self.tokens(z))


# ---------------------------------------------------------------------------------------------
# The family interface

def build(image_size: int, **hp) -> Generator:
    """The untrained generator (PyTorch's RNG decides its weights; `train` seeds it)."""
    hp = resolve("vit", DEFAULTS, hp)
    check_size("vit", image_size, gan.MIN_SIZE)
    patch, dim, heads = int(hp["patch"]), int(hp["dim"]), int(hp["heads"])
    if patch < 1 or image_size % patch:
        raise ValueError(f"patch must be a positive divisor of image_size {image_size}, got {patch}")
    if heads < 1 or dim % heads:
        raise ValueError(f"heads must be a positive divisor of dim {dim}, got {heads}")
    return Generator(image_size, int(hp["z_dim"]), dim, int(hp["depth"]), heads, int(hp["mlp_ratio"]),
                     patch)


def discriminator(image_size: int, hp: dict) -> sngan.Discriminator:
    """SNGAN's spectrally normalised ResNet discriminator (hp: the resolved DEFAULTS)."""
    return sngan.Discriminator(image_size, int(hp["d_width"]))


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train G and D from the seed's initial weights; returns (G in eval mode, info)."""
    return gan.train_family("vit", DEFAULTS, build, discriminator, pool, image_size, steps, batch_size,
                            seed, device, progress, hp)


def sample(model, n, seed, device, batch_size: int = 256) -> torch.Tensor:
    """(n,3,S,S) float in [-1,1] from z ~ N(0, I) drawn by torch.Generator(seed)."""
    return gan.sample(model, n, seed, device, batch_size)
