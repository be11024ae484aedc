"""LoRA variants of a test-bed model, for the model-lineage experiment (paper Section IV-D, Fig. 9).

The paper shows that variants of a base generator fine-tuned with LoRA (Hu et al. 2021, "LoRA:
Low-Rank Adaptation of Large Language Models") keep the base model's fingerprint, so an extractor
traces a variant back to its base. This module makes such variants of our own test-bed models
(families with a `loss(model, x, generator)`: vae, flow, ddpm).

LoRA: a layer's weight W (rows = its first dimension, cols = the product of the others, i.e. a
conv kernel flattened per output channel; for a transposed conv the first dimension is the input
channels, which only changes which side the rank bound is on) becomes

    W' = W + (alpha / rank) * (B @ A).reshape(W.shape),   A: (rank, cols), B: (rows, rank)

with W frozen and only A and B trained (Hu et al. Eq. 3 and Section 4.1). A starts like Hu et
al.'s loralib (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(cols), 1/sqrt(cols))) drawn from
a seeded CPU generator, B starts at zero, so a fresh adapter is exactly the identity. It is a
`torch.nn.utils.parametrize` parametrization of `weight`: the wrapped layers stay the layers the
family's code calls, whatever the model. `merge` folds the delta into the weight and removes the
parametrization (in place), which leaves a plain model of the family's own class: `testbed.save`/`load`
store a variant like any trained model, and sampling needs no LoRA code.

Layers are skipped (with the reason, see `plan`) when rank >= min(rows, cols), where a "low-rank"
update could be any update (e.g. the 3-channel RGB convolution with rank 4), and when their weight
is not a plain parameter (weight norm, spectral norm: folding a delta into them would change the
model's state-dict keys).

`finetune` deep-copies the base (the caller's model is never modified), adds adapters, runs Adam
on the adapter parameters on batches of a pool (`pool_subset` gives each variant of a base its own
disjoint part of the images), and returns the merged variant. Seeds make it reproducible: A from
torch.Generator(seed), batch indices and the loss's noise from another CPU generator seeded with
`seed`, as the families' own `train` does.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ..optim import Adam  # torch's Adam update without the seconds-long torch._dynamo import
from ..pools import as_unit_range
from ..synthetic import fit_to_size

LAYER_TYPES = {"Conv2d": nn.Conv2d, "ConvTranspose2d": nn.ConvTranspose2d, "Linear": nn.Linear}
DEFAULT_TARGETS = tuple(LAYER_TYPES)
LOG_EVERY = 50               # steps between progress() calls


# ---------------------------------------------------------------------------------------------
# The adapter

class LoRA(nn.Module):
    """Parametrization W -> W + (alpha / rank) * B @ A of one layer's weight."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        rows, cols = weight.shape[0], weight[0].numel()
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        bound = 1.0 / math.sqrt(cols)
        a = (torch.rand(rank, cols, generator=generator) * 2 - 1) * bound
        self.A = nn.Parameter(a.to(weight.device, weight.dtype))
        self.B = nn.Parameter(torch.zeros(rows, rank, device=weight.device, dtype=weight.dtype))

    def delta(self) -> torch.Tensor:
        """(rows, cols) low-rank update, scale included."""
        return self.scale * (self.B @ self.A)

    def forward(self, weight):
        return weight + self.delta().view_as(weight)


def _skip_reason(module: nn.Module, rank: int) -> str | None:
    if parametrize.is_parametrized(module) or not isinstance(module._parameters.get("weight"), nn.Parameter):
        return "weight is not a plain parameter (weight/spectral norm): merging would change its keys"
    rows, cols = module.weight.shape[0], module.weight[0].numel()
    if rank >= min(rows, cols):
        return f"rank {rank} >= min(rows, cols) = min({rows}, {cols}): not a low-rank update"
    return None


def plan(model: nn.Module, rank: int, targets=DEFAULT_TARGETS) -> tuple[list[str], dict[str, str]]:
    """(names of the layers `add_lora` adapts, {skipped layer: why}) for layers of type `targets`."""
    if isinstance(targets, str):
        targets = (targets,)
    unknown = set(targets) - set(LAYER_TYPES)
    if unknown:
        raise ValueError(f"unknown LoRA targets {sorted(unknown)}; known: {sorted(LAYER_TYPES)}")
    if int(rank) != rank or rank < 1:
        raise ValueError(f"LoRA rank must be a positive integer, got {rank!r}")
    kinds = tuple(LAYER_TYPES[t] for t in targets)
    adapted, skipped = [], {}
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            reason = _skip_reason(module, rank)
            if reason:
                skipped[name] = reason
            else:
                adapted.append(name)
    return adapted, skipped


def add_lora(model: nn.Module, rank: int, alpha: float, seed: int, targets=DEFAULT_TARGETS) -> list[str]:
    """Wrap (in place) every layer of type `targets` of `model` in a fresh LoRA adapter, its weight
    frozen; returns the adapted layers' names (see `plan` for the ones left alone and why)."""
    if not alpha > 0:
        raise ValueError(f"LoRA alpha must be > 0, got {alpha!r}")
    adapted, _ = plan(model, rank, targets)
    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    for name in adapted:                   # named_modules order: the same A for the same seed
        module = modules[name]
        adapter = LoRA(module.weight, int(rank), float(alpha), gen)
        # what `merge` restores: the plain layer's parameter order and the weight's requires_grad
        adapter.parameter_order = list(module._parameters)
        adapter.weight_requires_grad = module.weight.requires_grad
        module.weight.requires_grad_(False)
        parametrize.register_parametrization(module, "weight", adapter)
    return adapted


def adapters(model: nn.Module) -> dict[str, LoRA]:
    """{layer name: its LoRA adapter}."""
    return {name: m.parametrizations.weight[0] for name, m in model.named_modules()
            if parametrize.is_parametrized(m, "weight") and isinstance(m.parametrizations.weight[0], LoRA)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of the adapters (A and B of every layer), in layer order."""
    return [p for a in adapters(model).values() for p in (a.A, a.B)]


@torch.no_grad()
def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its layer's weight, in place, and return `model`: a plain model of
    its class as before `add_lora` (same state-dict keys and parameter order, weights'
    requires_grad restored). In place because deep copies of a parametrized model share its
    generated layer classes, and removing a parametrization from one copy breaks the others."""
    for name, adapter in adapters(model).items():
        module = model.get_submodule(name)
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight.requires_grad_(adapter.weight_requires_grad)
        for key in adapter.parameter_order:  # weight back before bias: the same parameters() order
            module._parameters[key] = module._parameters.pop(key)
    return model


# ---------------------------------------------------------------------------------------------
# Data: disjoint parts of a pool per variant

def subset_indices(n: int, part: int, parts: int, seed: int) -> torch.Tensor:
    """Sorted indices of part `part` of a seeded random split of range(n) into `parts` parts of
    sizes differing by at most one: the parts of one seed are disjoint and cover range(n)."""
    if int(parts) != parts or parts < 1:
        raise ValueError(f"parts must be a positive integer, got {parts!r}")
    if int(part) != part or not 0 <= part < parts:
        raise ValueError(f"part must be an integer in [0, parts) = [0, {parts}), got {part!r}")
    if n < parts:
        raise ValueError(f"a pool of {n} images cannot be split in {parts} non-empty parts")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm.tensor_split(int(parts))[int(part)].sort().values


def pool_subset(pool: torch.Tensor, part: int, parts: int, seed: int) -> torch.Tensor:
    """The images of part `part` of `parts` (`subset_indices`), in pool order."""
    return pool[subset_indices(len(pool), part, parts, seed)]


# ---------------------------------------------------------------------------------------------
# Fine-tuning

def finetune(model, loss_fn, pool, image_size, steps, batch_size, seed, device, rank=4, alpha=4.0,
             lr=1e-3, progress=None, targets=DEFAULT_TARGETS):
    """A LoRA variant of `model` (left unmodified) fine-tuned for `steps` Adam steps on `pool`
    (uint8 or [-1, 1] float, (N,3,S,S); resized once if S != image_size) with
    loss_fn(model, x, generator) -> scalar, the family's `loss`.

    progress(step, loss) is called every LOG_EVERY steps and at the last step, with the mean loss
    since the previous call. A step whose loss or adapter gradient is not finite is not taken
    (counted in info's nonfinite_steps). Returns (merged variant in eval mode, info); info's loss is
    the mean over the last min(LOG_EVERY, steps) steps taken, loss_first that of the first one (the
    base's own loss), weight_change the mean over adapted layers of ||delta|| / ||W||.
    """
    for key, value in (("steps", steps), ("batch_size", batch_size)):
        if int(value) != value or value < (0 if key == "steps" else 1):
            raise ValueError(f"{key} must be a {'non-negative' if key == 'steps' else 'positive'} "
                             f"integer, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    start = time.perf_counter()
    pool = fit_to_size(pool, image_size)   # once, up front
    work = copy.deepcopy(model).to(device).train()
    requires_grad = {n: p.requires_grad for n, p in work.named_parameters()}
    _, skipped = plan(work, rank, targets)
    adapted = add_lora(work, rank, alpha, seed, targets)
    if not adapted:
        raise ValueError(f"no layer of types {targets} can take a rank-{rank} adapter: {skipped}")
    params = lora_parameters(work)
    trainable = {id(p) for p in params}
    for p in work.parameters():            # the base is frozen: no gradients computed for it
        if id(p) not in trainable:
            p.requires_grad_(False)
    opt = Adam(params, lr=float(lr))
    gen = torch.Generator().manual_seed(seed)
    window, first, since, nonfinite = [], None, [], 0
    for step in range(steps):
        idx = torch.randint(len(pool), (batch_size,), generator=gen)
        x = as_unit_range(pool[idx].to(device))
        loss = loss_fn(work, x, gen)
        opt.zero_grad()
        loss.backward()
        for p in params:                   # an adapter the loss does not reach: zero gradient
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        value = loss.item()
        # a flow's log-determinant can overflow: skip such a step rather than poison the adapters
        if math.isfinite(value) and all(bool(torch.isfinite(p.grad).all()) for p in params):
            opt.step()
            first = value if first is None else first
            window = (window + [value])[-LOG_EVERY:]
            since.append(value)
        else:
            nonfinite += 1
        if progress and ((step + 1) % LOG_EVERY == 0 or step + 1 == steps):
            progress(step + 1, sum(since) / len(since) if since else math.nan)
            since = []
    with torch.no_grad():                  # relative change of the weights; zero weights left out
        norms = [(a.delta().norm(), work.get_submodule(n).parametrizations.weight.original.norm())
                 for n, a in adapters(work).items()]
        change = [float(d / w) for d, w in norms if w > 0]
    merged = merge(work)
    for n, p in merged.named_parameters():
        p.requires_grad_(requires_grad[n])
    info = {"steps": steps, "seconds": time.perf_counter() - start, "seed": seed,
            "batch_size": batch_size, "loss_first": first,
            "loss": sum(window) / len(window) if window else None,
            "nonfinite_steps": nonfinite, "rank": int(rank), "alpha": float(alpha), "lr": float(lr),
            "adapted_layers": len(adapted), "skipped_layers": sorted(skipped),
            "trainable_params": sum(p.numel() for p in params),
            "base_params": sum(p.numel() for p in merged.parameters()),
            "weight_change": sum(change) / len(change) if change else None}
    return merged.eval(), info
