"""Test-bed family "vae": a convolutional variational auto-encoder (Kingma & Welling 2014), with the
KL term weighted by ``beta`` (beta-VAE, Higgins et al. 2017; beta = 1 is the vanilla VAE).

Encoder: stride-2 4x4 convolutions + LeakyReLU, from image_size down to 4x4, then one linear layer
to the posterior's mean and log-variance (``z_dim`` each). Decoder: linear z -> (C, 4, 4), then one
x2 upsampling block per encoder block, then a 3x3 conv to RGB and tanh, so the output is already in
[-1, 1] like the images. The upsampling (hyper-parameter ``upsample``) is either "nearest"
(nearest-neighbour x2 then a 3x3 conv: the default, no checkerboard from uneven kernel overlap) or
"transposed" (a 4x4 stride-2 transposed conv). Which one a model uses matters for this project:
the upsampling is one of the architecture traits a fingerprint picks up.

No normalisation layers: a VAE trains well enough without them at these sizes, and without
BatchNorm the model computes the same function in train and eval mode, so sampling needs no batch.

Loss per image (averaged over the batch): the sum over pixels of the squared error in [-1, 1]
(the negative log-likelihood of a Gaussian decoder with fixed variance, up to a constant) plus
beta times KL(q(z|x) || N(0, I)) summed over latent dimensions; Adam. A larger beta pulls the
posterior towards the prior: lower KL, blurrier reconstructions and, usually, samples closer to
the average image.

Determinism: the initial weights come from torch.manual_seed(seed) (the global RNG is restored
afterwards); batch indices and the reparametrisation noise come from a CPU torch.Generator seeded
with `seed` and are moved to the device, so a seed gives the same model on any device up to
floating-point differences of the kernels.
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
    "z_dim": 128,            # latent dimensions
    "width": 32,             # channels of the first encoder block; doubles per block up to 8x
    "beta": 1.0,             # KL weight: 1 = vanilla VAE, > 1 = beta-VAE
    "upsample": "nearest",   # decoder x2 upsampling: nearest (+conv3x3) | transposed (conv 4x4 s2)
    "lr": 1e-3,              # Adam
}
UPSAMPLE_MODES = ("nearest", "transposed")
BOTTOM = 4                   # side of the smallest feature map (encoder output, decoder input)
MAX_WIDTH_FACTOR = 8         # channel count stops doubling at 8 * width
SAMPLE_CHUNK = 256           # images decoded per forward pass in `sample`


# ---------------------------------------------------------------------------------------------
# The model

def _blocks(image_size: int) -> int:
    """Number of x2 down (and up) blocks between image_size and BOTTOM; image_size: a power of 2."""
    return int(math.log2(check_size("vae", image_size, 2 * BOTTOM) // BOTTOM))


def _up(mode: str, cin: int, cout: int) -> nn.Module:
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(cin, cout, 3, padding=1))
    if mode == "transposed":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
    raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, not {mode!r}")


class VAE(nn.Module):
    """encode(x) -> (mu, logvar); decode(z) -> image in [-1, 1]; forward(x) -> (recon, mu, logvar)."""

    def __init__(self, image_size: int, z_dim: int, width: int, upsample: str):
        super().__init__()
        self.image_size, self.z_dim, self.width, self.upsample = image_size, z_dim, width, upsample
        k = _blocks(image_size)
        chans = [min(width * 2**i, MAX_WIDTH_FACTOR * width) for i in range(k)]   # per resolution
        enc, cin = [], 3
        for c in chans:
            enc += [nn.Conv2d(cin, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = c
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(chans[-1] * BOTTOM * BOTTOM, 2 * z_dim)
        self.from_z = nn.Linear(z_dim, chans[-1] * BOTTOM * BOTTOM)
        dec = []
        for cin, cout in zip(reversed(chans), list(reversed(chans))[1:] + [chans[0]]):
            dec += [_up(upsample, cin, cout), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(chans[0], 3, 3, padding=1), nn.Tanh())
        self._top = chans[-1]

    def encode(self, x):
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z):
        h = F.leaky_relu(self.from_z(z), 0.2).view(-1, self._top, BOTTOM, BOTTOM)
        return self.decoder(h)

    def forward(self, x, generator: torch.Generator | None = None):
        """Reconstruction through one posterior sample; the noise comes from `generator` (CPU)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device, mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def vae_loss(x, recon, mu, logvar, beta: float):
    """(total, recon, kl), each a per-image mean over the batch: recon = sum over pixels of the
    squared error, kl = KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions."""
    b = x.shape[0]
    rec = (recon - x).pow(2).reshape(b, -1).sum(1).mean()
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1).mean()
    return rec + beta * kl, rec, kl


def loss(model: VAE, x, generator: torch.Generator, beta: float = DEFAULTS["beta"]):
    """The training objective of `train` on a batch x in [-1, 1]: recon + beta * KL per image,
    through one posterior sample drawn from the CPU `generator` (the family interface that
    `testbed.lora` fine-tunes with; a beta-VAE base wants functools.partial(loss, beta=...))."""
    recon, mu, logvar = model(x, generator=generator)
    return vae_loss(x, recon, mu, logvar, beta)[0]


def build(image_size: int, **hp) -> VAE:
    """An untrained VAE (PyTorch default init from the current global RNG)."""
    hp = resolve("vae", DEFAULTS, hp)
    return VAE(image_size, int(hp["z_dim"]), int(hp["width"]), hp["upsample"])


# ---------------------------------------------------------------------------------------------
# Training and sampling

def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train a VAE on `pool` (uint8 or [-1, 1] float, (N,3,S,S)) for `steps` Adam steps.

    progress(step, loss) is called every common.LOG_EVERY steps and at the last step, with the mean
    per-image loss since the previous call. Returns (vae in eval mode, info); info's loss, recon
    and kl are means over the last min(LOG_EVERY, steps) steps (single steps are noisy),
    loss_first, recon_first and kl_first those of step 0 (before any update); None if steps = 0.
    """
    hp = resolve("vae", DEFAULTS, hp)
    beta = float(hp["beta"])
    start = time.perf_counter()
    pool = fit_to_size(pool, image_size)   # once, up front
    model = seeded(seed, lambda: build(image_size, **hp)).to(device).train()
    opt = Adam(model.parameters(), lr=float(hp["lr"]))
    gen = torch.Generator().manual_seed(seed)
    log = LossLog(steps, progress, ("loss", "recon", "kl"))
    for _ in range(steps):
        x = draw_batch(pool, batch_size, gen, device)
        recon, mu, logvar = model(x, generator=gen)
        loss, rec, kl = vae_loss(x, recon, mu, logvar, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.add(loss.item(), rec.item(), kl.item())
    info = {"family": "vae", "steps": steps, "seconds": time.perf_counter() - start, **log.summary(),
            "pixels": 3 * image_size * image_size, **hp}
    return model.eval(), info


@torch.no_grad()
def sample(model: VAE, n: int, seed: int, device, temperature: float = 1.0) -> torch.Tensor:
    """n images decoded from z ~ N(0, temperature^2 I) drawn from torch.Generator(seed) on the CPU
    (one draw per image, so the first k images do not depend on n): float (n,3,S,S) in [-1, 1], on device."""
    gen = torch.Generator().manual_seed(seed)
    # one draw per image: torch.randn of a whole (n, z_dim) block is not prefix-stable in n (CPU
    # normals come in blocks of 16; a partial last block is redrawn), as in gan.sample
    z = torch.stack([torch.randn(model.z_dim, generator=gen) for _ in range(n)]) if n else None
    was_training = model.training
    model.eval()
    out = torch.cat([model.decode(z[i:i + SAMPLE_CHUNK].to(device) * temperature)
                     for i in range(0, n, SAMPLE_CHUNK)]) if n else \
        torch.empty(0, 3, model.image_size, model.image_size, device=device)
    model.train(was_training)
    return out
