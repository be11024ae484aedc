"""Adam without the torch.optim.Optimizer class, for short-lived training processes.

Constructing any torch.optim optimizer imports torch._dynamo, about 1.3 s per process: most of the
overhead of a demo synthesis job, paid 288 times. `Adam` runs torch.optim.Adam's own update (its
functional form, torch.optim.adam.adam) without that import; tests/test_synthetic.py checks that
it gives bit-identical parameters to torch.optim.Adam. Elementwise, so grouped models train
exactly like single ones.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


class Adam:
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, tuple(betas), eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.tensor(0.0) for _ in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr=None):
        """One update; `lr` overrides the learning rate for this step (schedules)."""
        adam(self.params, [p.grad for p in self.params], self.exp_avg, self.exp_avg_sq, [],
             self.steps, foreach=False, capturable=False, differentiable=False, fused=None,
             grad_scale=None, found_inf=None, has_complex=False, amsgrad=False,
             beta1=self.betas[0], beta2=self.betas[1], lr=self.lr if lr is None else lr,
             weight_decay=0.0, eps=self.eps, maximize=False)

    def state_dict(self) -> dict:
        """The moments and step counts (the lr is the caller's: schedules pass it to `step`)."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """`state_dict`'s values copied in place (onto the parameters' devices)."""
        for key, mine in self.state_dict().items():
            for a, b in zip(mine, state[key], strict=True):
                a.copy_(b)
