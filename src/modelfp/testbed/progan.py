"""ProGAN-style GAN (Karras et al., 2018), trained from scratch by the workflow at full resolution.

NOT progressive: there is no growing and no fade-in; the full-resolution networks train from step 0
(growing would cost a schedule and most of a short CPU budget). What is kept is ProGAN's design:

Generator: z -> pixel norm -> dense to a 4x4 map -> LeakyReLU(0.2) -> pixel norm -> conv3x3 ->
LeakyReLU -> pixel norm; then per x2 step: upsample (`upsample`: "nearest" as in ProGAN, or
"bilinear") -> conv3x3 -> LeakyReLU -> PN -> conv3x3 -> LeakyReLU -> PN; then toRGB, a 1x1 conv.
ProGAN's output is linear; ours ends in tanh, like every family of the test bed, so samples lie in
[-1, 1]. Channels: `width` at 4x4 and 8x8, halving per step after that (ProGAN keeps 512 up to
32x32; halving keeps the CPU cost low), never below 8.
Discriminator: fromRGB 1x1 -> LeakyReLU; per x2 step: conv3x3 -> LReLU -> conv3x3 -> LReLU ->
2x2 average pool; at 4x4: minibatch standard deviation (one extra channel), conv3x3, 4x4 conv to
a vector, dense to one logit. No normalisation in D.
Equalized learning rate (`equalized_lr`, on by default): weights are stored N(0, 1) and scaled by
He's constant sqrt(2 / fan_in) at every forward pass; off, the same constant is folded into the
initial weights instead (plain He init).
Training: `gan.train` with the non-saturating loss (ProGAN used WGAN-GP: its gradient penalty
would double the cost of a D step) and ProGAN's Adam(lr 1e-3, betas (0, 0.99)). As in ProGAN, the
returned generator is an exponential moving average of the trained one (`ema`, 0.99 per step here
instead of ProGAN's 0.999, for runs of hundreds rather than hundreds of thousands of steps); without
it, 500-step samples swing between colour casts from one step to the next.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import gan
from .common import resolve

DEFAULTS = {
    "z_dim": 128,
    "width": 64,                 # channels at 4x4 and 8x8, halving per x2 step after that
    "d_width": 64,               # same rule for the discriminator
    "upsample": "nearest",       # nearest | bilinear
    "equalized_lr": True,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    "betas": (0.0, 0.99),
    "loss": "nonsaturating",
    "n_critic": 1,
    "ema": 0.99,                 # samples come from a moving average of G (ProGAN's "Gs")
}
UPSAMPLING = ("nearest", "bilinear")
MIN_WIDTH = 8


# ---------------------------------------------------------------------------------------------
# Layers

class EqualizedConv2d(nn.Module):
    """Conv2d with He's constant either applied at run time (equalized lr) or folded into the init."""

    def __init__(self, cin, cout, kernel, padding=0, gain=math.sqrt(2), equalized=True):
        super().__init__()
        scale = gain / math.sqrt(cin * kernel * kernel)
        self.runtime_scale = scale if equalized else 1.0
        init = torch.randn(cout, cin, kernel, kernel)
        self.weight = nn.Parameter(init if equalized else init * scale)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.padding = padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.runtime_scale, self.bias, padding=self.padding)


class EqualizedLinear(EqualizedConv2d):
    """A dense layer as a 1x1 conv's weights, applied to (B, cin) inputs."""

    def __init__(self, cin, cout, gain=math.sqrt(2), equalized=True):
        super().__init__(cin, cout, 1, 0, gain, equalized)

    def forward(self, x):
        return F.linear(x, self.weight[:, :, 0, 0] * self.runtime_scale, self.bias)


class PixelNorm(nn.Module):
    """Each pixel's feature vector (dim 1) scaled to unit mean square."""

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    def __init__(self, mode):
        super().__init__()
        if mode not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {mode!r}")
        self.mode = mode

    def forward(self, x):
        if self.mode == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=2, mode="nearest")


class MinibatchStd(nn.Module):
    """ProGAN's extra feature map: the std over the batch, averaged over features and pixels."""

    def forward(self, x):
        std = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean() if len(x) > 1 else x.new_zeros(())
        return torch.cat([x, std.expand(len(x), 1, *x.shape[2:])], dim=1)


def channels(width: int, image_size: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., image_size."""
    return [max(width >> max(i - 1, 0), MIN_WIDTH) for i in range(gan.levels(image_size) + 1)]


# ---------------------------------------------------------------------------------------------
# The models

class Generator(nn.Module):
    def __init__(self, image_size, z_dim, width, upsample, equalized_lr):
        super().__init__()
        self.z_dim, self.image_size = z_dim, image_size
        ch = channels(width, image_size)
        eq = equalized_lr
        # ProGAN's official dense gain sqrt(2)/4: each of the 16 pixels gets a He-scaled share
        self.dense = EqualizedLinear(z_dim, ch[0] * 16, gain=math.sqrt(2) / 4, equalized=eq)
        self.first = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(),
                                   EqualizedConv2d(ch[0], ch[0], 3, 1, equalized=eq),
                                   nn.LeakyReLU(0.2), PixelNorm())
        self.blocks = nn.Sequential(*[nn.Sequential(
            Upsample(upsample),
            EqualizedConv2d(a, b, 3, 1, equalized=eq), nn.LeakyReLU(0.2), PixelNorm(),
            EqualizedConv2d(b, b, 3, 1, equalized=eq), nn.LeakyReLU(0.2), PixelNorm())
            for a, b in zip(ch, ch[1:])])
        self.to_rgb = EqualizedConv2d(ch[-1], 3, 1, gain=1.0, equalized=eq)

    def forward(self, z):
        x = self.dense(PixelNorm()(z))
        x = self.first(x.view(len(z), -1, 4, 4))
        return torch.tanh(self.to_rgb(self.blocks(x)))


class Discriminator(nn.Module):
    def __init__(self, image_size, width, equalized_lr):
        super().__init__()
        ch = channels(width, image_size)
        eq = equalized_lr
        self.from_rgb = nn.Sequential(EqualizedConv2d(3, ch[-1], 1, equalized=eq), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[nn.Sequential(
            EqualizedConv2d(b, b, 3, 1, equalized=eq), nn.LeakyReLU(0.2),
            EqualizedConv2d(b, a, 3, 1, equalized=eq), nn.LeakyReLU(0.2), nn.AvgPool2d(2))
            for a, b in reversed(list(zip(ch, ch[1:])))])
        self.last = nn.Sequential(MinibatchStd(),
                                  EqualizedConv2d(ch[0] + 1, ch[0], 3, 1, equalized=eq),
                                  nn.LeakyReLU(0.2),
                                  EqualizedConv2d(ch[0], ch[0], 4, 0, equalized=eq),
                                  nn.LeakyReLU(0.2))
        self.out = EqualizedLinear(ch[0], 1, gain=1.0, equalized=eq)

    def forward(self, x):
        return self.out(self.last(self.blocks(self.from_rgb(x))).flatten(1)).view(len(x))


# ---------------------------------------------------------------------------------------------
# The family interface

def build(image_size: int, **hp) -> Generator:
    """The untrained generator (PyTorch's RNG decides its weights; `train` seeds it)."""
    hp = resolve("progan", DEFAULTS, hp)
    return Generator(image_size, hp["z_dim"], hp["width"], hp["upsample"], hp["equalized_lr"])


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train G and D from the seed's initial weights; returns (G in eval mode, info)."""
    return gan.train_family("progan", DEFAULTS, build,
                            lambda size, hp: Discriminator(size, hp["d_width"], hp["equalized_lr"]),
                            pool, image_size, steps, batch_size, seed, device, progress, hp)


def sample(model, n, seed, device, batch_size: int = 256) -> torch.Tensor:
    """(n,3,S,S) float in [-1,1] from z ~ N(0, I) drawn by torch.Generator(seed)."""
    return gan.sample(model, n, seed, device, batch_size)
