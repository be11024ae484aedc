"""Test-bed family "ddpm": a denoising diffusion probabilistic model (Ho et al. 2020, the paper's
reference [48]) with a small U-Net, sampled by ancestral DDPM steps or by DDIM (Song et al. 2021,
[60]) over a subsequence of the timesteps.

Forward process: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t} (1 - beta_s),
t = 0 .. T-1. Betas: "linear" from 1e-4 to 0.02 at T = 1000 (Ho et al.; for another T both ends are
scaled by 1000/T, as in Nichol & Dhariwal 2021, so the chain still ends near pure noise) or
"cosine" (Nichol & Dhariwal 2021, eq. 17). Training: uniform t, the network predicts the noise,
loss = MSE between true and predicted noise (Ho et al.'s L_simple, Algorithm 1); Adam; the model
returned is an exponential moving average of the weights, as Ho et al. sample from.

U-Net (the network eps(x_t, t)): sinusoidal timestep embedding + 2-layer MLP; per resolution level
`blocks` residual blocks (GroupNorm, SiLU, conv3x3, the time embedding added after the first conv),
channels width * mults[level]; a stride-2 conv3x3 down between levels; at the lowest level residual
block, one single-head self-attention block, residual block; the way up mirrors it with nearest x2 +
conv3x3 upsampling and one skip connection per level (concatenated before the level's first block).
The last conv of each block and the output conv start at zero, as in Ho et al.'s code, so each
block starts as the identity and the untrained model predicts zero noise. No layer depends on the
image side, so a model trained at one size samples at any multiple of 2**(len(mults) - 1) (the
"varied generation configurations" experiment). The defaults are sized for a CPU demo (Ho et al.:
width 128, 2 blocks per level, 35.7M parameters on CIFAR-10); width 16, mults (1, 2, 2) has 0.19M
parameters and 38M multiply-adds per 32x32 image (measured: 0.13 s of CPU per training step at
32x32, batch 32, one thread; after 1000 steps on a photo pool, samples are blurry colour fields and
textures in the pool's palette, not noise).

The schedule is a function of the hyper-parameters (T, schedule): `build` recomputes it and the
state_dict holds only the network's weights, so a saved model rebuilt from its hp samples with the
schedule it was trained with.

Sampling, over timesteps tau_1 < ... < tau_S evenly spaced in [0, T-1] (S = T: all of them):
- "ddpm": ancestral sampling (Ho et al. Algorithm 2) on the respaced chain of Nichol & Dhariwal
  (betas 1 - abar_{tau_k} / abar_{tau_{k-1}}), with the posterior variance beta-tilde, x_0 predicted
  from the noise and clipped to [-1, 1] before the posterior mean (as Ho et al.'s code does);
- "ddim": x_{prev} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z, sigma from eta
  (Song et al. eq. 16), with x0 clipped as above and eps recomputed from it: eta = 0 is
  deterministic given x_T, eta = 1 is the DDPM step exactly.

Determinism: initial weights from torch.manual_seed(seed) (the global RNG is restored afterwards),
batch indices, t and the noise from a CPU torch.Generator(seed). In `sample` every image has its own
CPU generator, seeded by the image's draw from torch.Generator(seed), which gives its x_T and the
noise of every step: image i is the same whatever n and batch_size.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..optim import Adam  # torch's Adam update without the seconds-long torch._dynamo import
from ..synthetic import fit_to_size
from .common import LossLog, check_size, draw_batch, resolve, seeded

DEFAULTS = {
    "width": 16,             # channels at full resolution (times mults[level] below)
    "mults": (1, 2, 2),      # channel multiplier per resolution level; len - 1 x2 downsamplings
    "blocks": 1,             # residual blocks per level, each way
    "attention": True,       # one self-attention block at the lowest resolution
    "T": 1000,               # diffusion timesteps
    "schedule": "linear",    # betas: linear (Ho et al.) | cosine (Nichol & Dhariwal)
    "lr": 2e-3,              # Adam (Ho et al.: 2e-4 for 800k steps; 2e-3 beat 1e-3 at 1000 steps)
    "ema": 0.995,            # decay of the weight average that `train` returns
}
SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")
DDIM_STEPS = 50              # default DDIM sampling steps (Song et al. show 50 is close to 1000)
GROUPS = 8                   # GroupNorm groups (Ho et al.: 32, for 128+ channels; fewer if a layer has fewer)
MAX_BETA = 0.999             # Nichol & Dhariwal's clip: beta = 1 would make abar 0 (x_0 unrecoverable)
MIN_SIZE = 8                 # smallest training side


# ---------------------------------------------------------------------------------------------
# Noise schedule

def betas(T: int, kind: str) -> torch.Tensor:
    """float64 (T,) betas of the forward process."""
    if kind == "linear":
        scale = 1000.0 / T       # Ho et al.'s ends are for T = 1000
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=MAX_BETA)
    if kind == "cosine":
        s = 0.008                # Nichol & Dhariwal eq. 17: abar(t) = f(t) / f(0)
        f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    raise ValueError(f"schedule must be one of {SCHEDULES}, not {kind!r}")


def timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps evenly spaced over [0, T-1], both ends included, ascending."""
    if not 1 <= steps <= T:
        raise ValueError(f"sampling steps must be in [1, T={T}], got {steps}")
    if steps == 1:
        return [T - 1]
    return [round(i * (T - 1) / (steps - 1)) for i in range(steps)]


def posterior(abar: float, abar_prev: float, x0, xt):
    """Mean and variance of q(x_prev | x_t, x_0) on a chain whose step from prev to t has
    beta = 1 - abar / abar_prev (Ho et al. eq. 6-7; respaced: Nichol & Dhariwal sec. 4)."""
    beta = 1 - abar / abar_prev
    mean = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + \
        (math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)) * xt
    return mean, (1 - abar_prev) / (1 - abar) * beta


# ---------------------------------------------------------------------------------------------
# The model

def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(GROUPS, c), c)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, dim) sinusoidal embedding of integer timesteps (Vaswani et al. 2017, as in Ho et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = _norm(cout), _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a feature map, residual."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.qkv, self.proj = _norm(c), nn.Conv2d(c, 3 * c, 1), _zero(nn.Conv2d(c, c, 1))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps(x_t, t): (B,3,H,W) noisy images and (B,) integer timesteps -> (B,3,H,W) noise."""

    def __init__(self, width: int, mults: tuple[int, ...], blocks: int, attention: bool):
        super().__init__()
        chans, tdim = [width * m for m in mults], 4 * width
        self.edim = width + width % 2          # sin and cos halves
        self.time = nn.Sequential(nn.Linear(self.edim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inc = nn.Conv2d(3, chans[0], 3, padding=1)
        self.down, self.downsample, cin = nn.ModuleList(), nn.ModuleList(), chans[0]
        for i, c in enumerate(chans):
            self.down.append(nn.ModuleList(ResBlock(cin if j == 0 else c, c, tdim) for j in range(blocks)))
            cin = c
            if i < len(chans) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1, self.mid2 = ResBlock(cin, cin, tdim), ResBlock(cin, cin, tdim)
        self.attn = Attention(cin) if attention else nn.Identity()
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(chans))):
            c = chans[i]
            self.up.append(nn.ModuleList(ResBlock(2 * c if j == 0 else c, c, tdim) for j in range(blocks)))
            if i > 0:
                self.upsample.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                   nn.Conv2d(c, chans[i - 1], 3, padding=1)))
        self.out = nn.Sequential(_norm(chans[0]), nn.SiLU(), _zero(nn.Conv2d(chans[0], 3, 3, padding=1)))

    def forward(self, x, t):
        temb = self.time(timestep_embedding(t, self.edim))
        h, skips = self.inc(x), []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for i, level in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in level:
                h = block(h, temb)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.out(h)


class DDPM(nn.Module):
    """The U-Net plus its noise schedule. forward(x_t, t) -> predicted noise. The schedule
    (alphas_cumprod, float64, CPU) is a plain attribute, not a buffer: it is rebuilt from the hp,
    stays out of the state_dict and keeps full precision whatever the network's device or dtype."""

    def __init__(self, image_size: int, width: int, mults: tuple[int, ...], blocks: int,
                 attention: bool, T: int, schedule: str):
        super().__init__()
        self.image_size, self.T, self.schedule, self.factor = image_size, T, schedule, 2 ** (len(mults) - 1)
        self.alphas_cumprod = torch.cumprod(1 - betas(T, schedule), 0)
        self.unet = UNet(width, mults, blocks, attention)

    def forward(self, x, t):
        return self.unet(x, t)


def _check_size(image_size: int, factor: int) -> None:
    check_size("ddpm", image_size, MIN_SIZE)
    if image_size % factor:
        raise ValueError(f"the DDPM trains at a multiple of {factor} (2**downsamplings), got {image_size}")


def _hp(hp: dict) -> dict:
    hp = resolve("ddpm", DEFAULTS, hp)
    hp["mults"] = tuple(int(m) for m in hp["mults"])
    if not hp["mults"] or min(hp["mults"]) < 1 or int(hp["width"]) < 1 or int(hp["blocks"]) < 1:
        raise ValueError(f"width, blocks and every mult must be >= 1, got {hp}")
    if int(hp["T"]) < 2:
        raise ValueError(f"T must be >= 2, got {hp['T']}")
    if not 0 <= float(hp["ema"]) < 1:
        raise ValueError(f"ema must be in [0, 1), got {hp['ema']}")
    return hp


def build(image_size: int, **hp) -> DDPM:
    """An untrained DDPM (PyTorch default init from the current global RNG; zero last layers)."""
    hp = _hp(hp)
    _check_size(image_size, 2 ** (len(hp["mults"]) - 1))
    return DDPM(image_size, int(hp["width"]), hp["mults"], int(hp["blocks"]), bool(hp["attention"]),
                int(hp["T"]), hp["schedule"])


# ---------------------------------------------------------------------------------------------
# Training

def loss(model: DDPM, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """L_simple (Ho et al. eq. 14) of a batch x in [-1, 1]: t ~ U{0..T-1} (drawn first), then the
    noise, both from the CPU `generator`; mean squared error over all elements."""
    t = torch.randint(model.T, (x.shape[0],), generator=generator)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    abar = model.alphas_cumprod[t].view(-1, 1, 1, 1)
    xt = abar.sqrt().to(x.device, x.dtype) * x + (1 - abar).sqrt().to(x.device, x.dtype) * noise
    return F.mse_loss(model(xt, t.to(x.device)), noise)


@torch.no_grad()
def _update_average(avg: nn.Module, model: nn.Module, decay: float) -> None:
    for a, p in zip(avg.parameters(), model.parameters()):
        a.lerp_(p, 1 - decay)


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """Train a DDPM on `pool` (uint8 or [-1, 1] float, (N,3,S,S)) for `steps` Adam steps.

    progress(step, loss) is called every common.LOG_EVERY steps and at the last step, with the mean loss
    since the previous call. Returns (the weight average in eval mode, info); info's loss is the
    mean over the last min(LOG_EVERY, steps) steps, loss_first that of step 0 (before any update).
    The average's decay ramps up as min(ema, (1 + k) / (10 + k)) after k updates (TensorFlow's
    ExponentialMovingAverage with num_updates), so short runs do not return mostly the init.
    """
    hp = _hp(hp)
    ema = float(hp["ema"])
    start = time.perf_counter()
    pool = fit_to_size(pool, image_size)   # once, up front
    model = seeded(seed, lambda: build(image_size, **hp)).to(device).train()
    average = copy.deepcopy(model).requires_grad_(False)
    opt = Adam(model.parameters(), lr=float(hp["lr"]))
    gen = torch.Generator().manual_seed(seed)
    log = LossLog(steps, progress, ("loss",))
    for step in range(steps):
        value = loss(model, draw_batch(pool, batch_size, gen, device), gen)
        opt.zero_grad()
        value.backward()
        opt.step()
        _update_average(average, model, min(ema, (1 + step) / (10 + step)))
        log.add(value.item())
    seconds = time.perf_counter() - start
    info = {"family": "ddpm", "steps": steps, "seconds": seconds,
            "seconds_per_step": seconds / steps if steps else 0.0, **log.summary(),
            **hp, "mults": list(hp["mults"])}
    return average.eval(), info


# ---------------------------------------------------------------------------------------------
# Sampling

def _image_generators(n: int, seed: int) -> list[torch.Generator]:
    """One CPU generator per image, seeded by that image's draw from torch.Generator(seed), one
    draw at a time so the first k do not depend on n (CPU generators keep 32 bits of a seed)."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.Generator().manual_seed(int(torch.randint(2**32, (), generator=gen))) for _ in range(n)]


def _noise(gens: list[torch.Generator], shape, device) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device)


def _chain(model: DDPM, gens, size: int, device, sampler: str, ts: list[int], eta: float):
    """Run one batch (one generator per image) from x_T down to x_0 over timesteps ts."""
    abar_all = model.alphas_cumprod.tolist()
    x = _noise(gens, (3, size, size), device)
    for k in reversed(range(len(ts))):
        abar, abar_prev = abar_all[ts[k]], abar_all[ts[k - 1]] if k else 1.0
        t = torch.full((len(gens),), ts[k], dtype=torch.long, device=device)
        eps = model(x, t)
        x0 = ((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)).clamp(-1, 1)
        z = _noise(gens, x.shape[1:], device)      # drawn at every step by both samplers
        if sampler == "ddpm":
            mean, var = posterior(abar, abar_prev, x0, x)
            x = mean + math.sqrt(var) * z
        else:
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)   # consistent with clipped x0
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps + sigma * z
    return x.clamp(-1, 1)


@torch.no_grad()
def sample(model: DDPM, n: int, seed: int, device, sampler: str = "ddpm", steps: int | None = None,
           image_size: int | None = None, eta: float = 0.0, batch_size: int = 64) -> torch.Tensor:
    """n images, float (n,3,s,s) in [-1, 1] on device, s = image_size or the training size.

    sampler "ddpm" (ancestral, Ho et al. Alg. 2; steps None = all T) or "ddim" (Song et al.;
    steps None = DDIM_STEPS; eta 0 = deterministic given x_T). Fewer steps than T run over an
    evenly spaced subsequence of the timesteps. Images are denoised batch_size at a time.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
    size = model.image_size if image_size is None else image_size
    if size < 1 or size % model.factor:   # fully convolutional: any side the down/up steps divide
        raise ValueError(f"this DDPM samples at multiples of {model.factor}, not {size}")
    if steps is None:
        steps = model.T if sampler == "ddpm" else min(DDIM_STEPS, model.T)
    ts = timesteps(model.T, steps)
    gens = _image_generators(n, seed)
    was_training = model.training
    model.eval()
    try:
        out = [_chain(model, gens[i:i + batch_size], size, device, sampler, ts, eta)
               for i in range(0, n, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 3, size, size, device=device)
