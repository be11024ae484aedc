"""Synthetic models (paper III-B): shallow auto-encoders trained to reconstruct real images.

One module, `SyntheticNet`, builds an architecture for ``copies`` independent models at once: every
channel count is multiplied by ``copies`` and every convolution is grouped (``groups=copies``), so
model m owns channel block m of every layer. Pooling, interpolation, activations, BatchNorm and
InstanceNorm all act per channel, so the copies never mix: a grouped net *is* ``copies`` separate
models, and ``copies=1`` is the plain single model. Packing single models into a grouped one is a
concatenation of every tensor along dim 0 (`pack` / `unpack`).

Training all seeds of an architecture together (`train_architecture`) runs either the grouped net
("grouped", the design point on CUDA: tiny models cannot fill a GPU alone) or a loop over single
models ("loop", faster on CPU for larger images, where grouped convolutions are poorly optimised;
see `resolve_path`). Both paths compute the same functions; `tests/test_synthetic.py` shows it
exactly in float64.

Residual floor eta (paper: "a constraint on the minimum reconstruction residual, eta = 0.005"):
the *residual* of a model is its mean squared reconstruction error on a fixed batch of validation
pool images in [-1, 1], in eval mode (the mode in which the model later makes fingerprinted images).
Each model trains until its residual is <= eta, checked every ``check_every`` steps, or until
``max_steps``; a model is saved as it was at the first check that met the floor. The floor keeps
artifacts small (the output stays close to a real image) while the training stops before the model
approaches identity, which would carry no fingerprint.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints
from .archspace import Arch, parse
from .optim import Adam
from .pools import as_unit_range
from .seeding import synthetic_seed

FORMAT = "modelfp.synthetic/1"
WIDTH = 32  # channels after the first down block; doubles per block (official code)


# ---------------------------------------------------------------------------------------------
# The model

def _conv(cin, cout, copies):
    return nn.Conv2d(cin * copies, cout * copies, 3, padding=1, groups=copies)


def _norm(kind, channels, copies):
    if kind == "bn":
        return nn.BatchNorm2d(channels * copies)
    if kind == "in":
        # affine so that a post-order output layer can still shift and scale colours
        return nn.InstanceNorm2d(channels * copies, affine=True)
    return nn.Identity()


def _act(kind):
    return {"none": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[kind]()


class Upsample(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        if self.mode == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _upsampling_conv(arch, cin, cout, copies):
    """The x2 upsampling step that carries a convolution: interpolate + conv3x3, or a transposed conv."""
    if arch.upsampling == "transposed":
        return nn.ConvTranspose2d(cin * copies, cout * copies, 2, stride=2, groups=copies)
    return nn.Sequential(Upsample(arch.upsampling), _conv(cin, cout, copies))


def down_block(cin, cout, copies):
    """Fixed down block: avgpool2 -> conv -> BN -> ReLU -> conv -> BN (official code)."""
    return nn.Sequential(nn.AvgPool2d(2), _conv(cin, cout, copies), nn.BatchNorm2d(cout * copies),
                         nn.ReLU(), _conv(cout, cout, copies), nn.BatchNorm2d(cout * copies))


def up_block(arch: Arch, cin, cout, copies):
    """Up block with L convs; the first carries the x2 upsampling (in->in if L=2, in->out if L=1).

    post order: [upsample] conv -> norm -> act;  pre order: norm -> act -> [upsample] conv.
    """
    convs = [(cin, cin), (cin, cout)] if arch.layers == 2 else [(cin, cout)]
    layers = []
    for i, (a, b) in enumerate(convs):
        conv = _upsampling_conv(arch, a, b, copies) if i == 0 else _conv(a, b, copies)
        if arch.order == "post":
            layers += [conv, _norm(arch.normalization, b, copies), _act(arch.activation)]
        else:
            layers += [_norm(arch.normalization, a, copies), _act(arch.activation), conv]
    return nn.Sequential(*layers)


class SyntheticNet(nn.Module):
    """K down blocks then K up blocks; no output layer (post order ends in norm+act, pre in a conv).

    Input and output: (B, copies*3, H, W), channel block m belongs to model m; H, W divisible by 2**K.
    """

    def __init__(self, arch: Arch, copies: int = 1, width: int = WIDTH):
        super().__init__()
        self.arch, self.copies, self.width = arch, copies, width
        chans = [3] + [width * 2**i for i in range(arch.blocks)]
        self.down = nn.Sequential(*[down_block(chans[i], chans[i + 1], copies)
                                    for i in range(arch.blocks)])
        self.up = nn.Sequential(*[up_block(arch, chans[i + 1], chans[i], copies)
                                  for i in reversed(range(arch.blocks))])

    def forward(self, x):
        return self.up(self.down(x))


def pack(models: list[SyntheticNet]) -> SyntheticNet:
    """One grouped net holding the given single models (same architecture) as its copies."""
    first = models[0]
    grouped = SyntheticNet(first.arch, copies=len(models), width=first.width).to(
        next(first.parameters()).device, next(first.parameters()).dtype)
    states = [m.state_dict() for m in models]
    grouped.load_state_dict({k: v if v.dim() == 0 else torch.cat([s[k] for s in states])
                             for k, v in states[0].items()})
    return grouped


def copy_state(grouped: SyntheticNet, m: int) -> dict:
    """The state dict of copy m of a grouped net (cloned tensors)."""
    n = grouped.copies
    return {k: v.clone() if v.dim() == 0 else v.chunk(n)[m].clone()
            for k, v in grouped.state_dict().items()}


def unpack(grouped: SyntheticNet) -> list[SyntheticNet]:
    """The single models of a grouped net, as separate modules."""
    param = next(grouped.parameters())
    singles = []
    for m in range(grouped.copies):
        single = SyntheticNet(grouped.arch, copies=1, width=grouped.width).to(param.device, param.dtype)
        single.load_state_dict(copy_state(grouped, m))
        singles.append(single)
    return singles


def init_model(arch: Arch, seed: int, width: int = WIDTH, dtype=torch.float32, device="cpu"):
    """The initial weights of seed index `seed` of `arch`: PyTorch's default init drawn from
    torch.manual_seed(seeding.synthetic_seed(arch.id, seed)), so every (architecture, seed) starts
    from its own weights (seeding the index alone gave all architectures of seed 0 one start)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(synthetic_seed(arch.id, seed))
    model = SyntheticNet(arch, copies=1, width=width)
    torch.random.set_rng_state(gen_state)
    return model.to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Training

@dataclass(frozen=True)
class TrainConfig:
    image_size: int = 128        # training crop side (paper: 128)
    batch_size: int = 16
    max_steps: int = 2000
    lr: float = 1e-3
    eta: float = 0.005           # residual floor, see module docstring
    check_every: int = 25        # steps between residual checks
    val_images: int = 64         # size of the fixed validation batch for the residual


@dataclass
class TrainResult:
    arch: str
    seed: int
    steps: int
    final_residual: float
    reached_floor: bool
    train_seconds: float         # this model's share of the wall time of its job


def _batch_indices(gens, n_pool, batch_size, device):
    """Each model draws its own images: its derived seed controls both init and data order."""
    return torch.stack([torch.randint(n_pool, (batch_size,), generator=g) for g in gens]).to(device)


def _gather(pool, idx, size, dtype, device):
    """Images pool[idx] for idx (M, B) from a pool already at `size`: (B, M*3, size, size) in [-1, 1]."""
    m, b = idx.shape
    x = as_unit_range(pool[idx.reshape(-1).cpu()].to(device=device), dtype)
    return x.reshape(m, b, 3, size, size).permute(1, 0, 2, 3, 4).reshape(b, m * 3, size, size)


def _per_model_mse(out, target, copies):
    b, _, h, w = out.shape
    return (out - target).pow(2).reshape(b, copies, 3 * h * w).mean(dim=(0, 2))


@torch.no_grad()
def _residuals(net, val_x):
    was_training = net.training
    net.eval()
    r = _per_model_mse(net(val_x), val_x, net.copies)
    net.train(was_training)
    return r


def _train_grouped(arch, seeds, pool, val, cfg, width, device, dtype, progress, channels_last):
    """Train len(seeds) models as one grouped net; returns their final single models and results."""
    m = len(seeds)
    net = pack([init_model(arch, s, width, dtype, device) for s in seeds])
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.train()
    opt = Adam(net.parameters(), lr=cfg.lr)
    gens = [torch.Generator().manual_seed(synthetic_seed(arch.id, s)) for s in seeds]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    val_x = _gather(val, torch.arange(min(cfg.val_images, len(val))).repeat(m, 1), cfg.image_size,
                    dtype, device).contiguous(memory_format=fmt)
    done = [None] * m                       # (state_dict snapshot, residual, step) once at the floor
    step = 0
    while True:
        if step % cfg.check_every == 0 or step == cfg.max_steps:
            residual = _residuals(net, val_x)
            for i in range(m):
                if done[i] is None and (residual[i] <= cfg.eta or step == cfg.max_steps):
                    done[i] = (copy_state(net, i), float(residual[i]), step)
            if progress:
                progress(step, residual)
        if all(d is not None for d in done):
            break
        x = _gather(pool, _batch_indices(gens, len(pool), cfg.batch_size, "cpu"), cfg.image_size,
                    dtype, device).contiguous(memory_format=fmt)
        loss = _per_model_mse(net(x), x, m).sum()   # sum: each model's gradient is its own MSE's
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    models = []
    for i in range(m):
        single = init_model(arch, seeds[i], width, dtype, device)
        single.load_state_dict(done[i][0])
        models.append(single.eval())
    return models, [(d[1], d[2]) for d in done]


def fit_to_size(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize a pool to the training size once, up front, instead of at every step.

    Pools already at `size` stay as they are (uint8, possibly memory-mapped); resized pools are
    returned as float in [-1, 1], which `_gather` takes as it is.
    """
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty(len(images), 3, size, size)
    for i in range(0, len(images), chunk):
        x = as_unit_range(images[i:i + chunk])
        out[i:i + chunk] = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                         align_corners=False)
    return out


def train_architecture(arch: Arch, seeds: list[int], pool: torch.Tensor, val: torch.Tensor,
                       cfg: TrainConfig, *, path: str = "auto", width: int = WIDTH,
                       device="cpu", dtype=torch.float32, channels_last: bool | None = None,
                       progress=None):
    """Train one model per seed of `arch` on `pool` (uint8 or [-1,1] float, (N,3,S,S)).

    path: "grouped" (all seeds in one grouped net), "loop" (one seed after the other) or "auto"
    (`resolve_path`: grouped on CUDA and for small images on CPU, else the loop).
    channels_last: memory format of activations; default (None) is channels_last on CPU, where
    oneDNN's NHWC convolutions are 1.3-2x faster for these nets, and contiguous on CUDA.
    Returns (models, results): single `SyntheticNet`s in eval mode and a `TrainResult` each.
    """
    path = resolve_path(path, device, cfg.image_size)
    pool, val = fit_to_size(pool, cfg.image_size), fit_to_size(val, cfg.image_size)
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    start = time.perf_counter()
    if path == "grouped":
        models, stats = _train_grouped(arch, seeds, pool, val, cfg, width, device, dtype, progress,
                                       channels_last)
    else:
        models, stats = [], []
        for s in seeds:
            (model,), (stat,) = _train_grouped(arch, [s], pool, val, cfg, width, device, dtype,
                                               progress, channels_last)
            models.append(model)
            stats.append(stat)
    share = (time.perf_counter() - start) / len(seeds)
    results = [TrainResult(arch.id, s, step, res, res <= cfg.eta, share)
               for s, (res, step) in zip(seeds, stats)]
    return models, results


# On CPU, grouped convolutions (channels_last) beat the loop only on small work: measured with
# benchmarks/synth_throughput.py on 2 cores, grouped/loop = 1.08x at 32x32 (1 thread, M=2),
# 1.26x (2 threads, M=4), but 0.90x at 64x64, batch 16.
CPU_GROUPED_MAX_SIZE = 32


def resolve_path(path: str, device, image_size: int | None = None) -> str:
    """The training/feed path for `path` on `device`: "auto" is grouped on CUDA; on CPU grouped
    for training images up to CPU_GROUPED_MAX_SIZE pixels, else the loop (unknown size: loop)."""
    if path == "auto":
        if torch.device(device).type == "cuda":
            return "grouped"
        small = image_size is not None and image_size <= CPU_GROUPED_MAX_SIZE
        return "grouped" if small else "loop"
    if path not in ("grouped", "loop"):
        raise ValueError(f"training path must be auto, grouped or loop, not {path!r}")
    return path


# ---------------------------------------------------------------------------------------------
# Files: one checkpoint per model, loadable alone

def save(model: SyntheticNet, result: TrainResult, cfg: TrainConfig, path, **meta) -> None:
    """Atomic write of one model: weights (float32, CPU) plus everything needed to rebuild it."""
    payload = {
        "format": FORMAT, "arch": model.arch.id, "width": model.width,
        "state_dict": {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype)
                       for k, v in model.state_dict().items()},
        "result": asdict(result), "train_config": asdict(cfg), **meta,
    }
    checkpoints.save(payload, path)


def load(path, device="cpu") -> SyntheticNet:
    """A ready synthetic model in eval mode; `model.info` holds the checkpoint's metadata."""
    payload = checkpoints.load(path, FORMAT, "synthetic-model checkpoint", device)
    model = SyntheticNet(parse(payload["arch"]), copies=1, width=payload["width"]).to(device)
    model.load_state_dict(payload["state_dict"])
    model.info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval()


def forward_flops(net: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of net(x) (2 x the multiply-adds of its convolutions, transposed convolutions and
    linear layers), counted with forward hooks; the net's mode is left as it was."""
    flops = 0

    def count(mod, inp, out):
        nonlocal flops
        if isinstance(mod, nn.Conv2d):
            flops += 2 * out.numel() * mod.in_channels // mod.groups * math.prod(mod.kernel_size)
        elif isinstance(mod, nn.ConvTranspose2d):
            flops += 2 * inp[0].numel() * mod.out_channels // mod.groups * math.prod(mod.kernel_size)
        elif isinstance(mod, nn.Linear):
            flops += 2 * out.numel() * mod.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return float(flops)


def training_flops(arch: Arch, image_size: int, batch_size: int, width: int = WIDTH) -> float:
    """FLOPs of one training step of one model (forward + backward ~ 3x forward multiply-adds x 2)."""
    model = SyntheticNet(arch, width=width)
    return 3.0 * forward_flops(model, torch.zeros(1, 3, image_size, image_size)) * batch_size
