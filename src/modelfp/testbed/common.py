"""What every family module of the test bed shares: its hyper-parameters resolved against its
DEFAULTS, the check of power-of-two image sizes, initial weights made from a seed, batches drawn
from a pool, and the loss bookkeeping of the likelihood families' training loops (vae, flow, ddpm).

Seeding: `seeded` runs the model's constructor with the global torch generator seeded and restores
the caller's generator state afterwards, so a seed fixes a family's initial weights and training
leaves the caller's random numbers alone; everything else a loop draws comes from CPU
torch.Generators, as each family's docstring says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch

from ..pools import as_unit_range

LOG_EVERY = 50   # steps between progress calls, and the window of the final mean losses


def resolve(family: str, defaults: dict, hp: dict) -> dict:
    """The family's DEFAULTS overridden by hp; unknown names are an error (config typos)."""
    unknown = sorted(set(hp) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {family} hyper-parameters {unknown}; known: {sorted(defaults)}")
    return {**defaults, **hp}


def check_size(family: str, image_size: int, minimum: int) -> int:
    """image_size if it is a power of two >= minimum (the family's x2 steps need it)."""
    if not (isinstance(image_size, int) and image_size >= minimum and image_size & (image_size - 1) == 0):
        raise ValueError(f"{family}: image_size must be a power of two >= {minimum}, got {image_size!r}")
    return image_size


def seeded(seed: int, make: Callable):
    """make() with the global torch generator seeded by `seed`; the caller's RNG state is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def draw_batch(pool: torch.Tensor, batch_size: int, generator: torch.Generator, device) -> torch.Tensor:
    """batch_size images of the pool, indices drawn with replacement from the CPU `generator`,
    as floats in [-1, 1] on device."""
    idx = torch.randint(len(pool), (batch_size,), generator=generator)
    return as_unit_range(pool[idx].to(device))


class LossLog:
    """The per-step losses of a training loop of `steps` steps, named `names` (the first is the
    training loss). `add` one step's values; progress(step, mean training loss since the previous
    call) is called every LOG_EVERY steps and at the last step. `summary()`: each name's mean over
    the last min(LOG_EVERY, steps) steps (single steps are noisy) and `<name>_first`, its value at
    the first step; None where no step was logged."""

    def __init__(self, steps: int, progress: Callable | None, names: tuple[str, ...]):
        self.steps, self.progress, self.names = steps, progress, names
        self.step, self.first, self.window, self.since = 0, None, deque(maxlen=LOG_EVERY), []

    def add(self, *values: float) -> None:
        self.step += 1
        self.first = values if self.first is None else self.first
        self.window.append(values)
        self.since.append(values[0])
        if self.progress and (self.step % LOG_EVERY == 0 or self.step == self.steps):
            self.progress(self.step, sum(self.since) / len(self.since))
            self.since = []

    def state_dict(self) -> dict:
        """What a resumed loop needs to log and summarise as an uninterrupted one would."""
        return {"step": self.step, "first": self.first, "window": list(self.window), "since": self.since}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.first, self.since = state["step"], state["first"], list(state["since"])
        self.window = deque(state["window"], maxlen=LOG_EVERY)

    def summary(self) -> dict:
        none = [None] * len(self.names)
        means = [sum(v) / len(self.window) for v in zip(*self.window)] if self.window else none
        return {**dict(zip(self.names, means, strict=True)),
                **{f"{n}_first": v for n, v in zip(self.names, self.first or none, strict=True)}}
