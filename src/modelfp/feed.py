"""The fingerprinted-image feed of Section III-D: I_k = M_k(I_real), Eq. (11), for many models at once.

A `SyntheticZoo` holds every synthetic model of a training set on one device. Called with a batch
of real images and one model index per image, it returns each image passed through its model, in
eval mode, clamped to the image range [-1, 1] as a saved generated image would be.

Two paths give the same result (`tests/test_feed.py`): "grouped" gathers, per architecture, the
weights of the models the batch asks for into one grouped net (one kernel launch per layer and
architecture: the fast path on CUDA), and "loop" runs the asked-for single models one after the
other (faster on CPU, like synthesis training).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch.func import functional_call

from .synthetic import SyntheticNet, load, pack, resolve_path


class SyntheticZoo:
    def __init__(self, models: list[SyntheticNet], names: list[str] | None = None, *,
                 device="cpu", path: str = "auto"):
        if not models:
            raise ValueError("a synthetic zoo needs at least one model")
        self.device = torch.device(device)
        self.path = resolve_path(path, self.device)
        self.names = names or [f"{m.arch.id}/{i}" for i, m in enumerate(models)]
        self.models = [m.to(self.device).eval() for m in models]
        by_arch = defaultdict(list)
        for k, m in enumerate(self.models):
            by_arch[m.arch].append(k)
        self.members = dict(by_arch)                      # arch -> model indices, slot order
        self.slot = torch.empty(len(models), dtype=torch.long)
        for ks in self.members.values():
            self.slot[ks] = torch.arange(len(ks))
        self.grouped = {a: pack([self.models[k] for k in ks]).eval()
                        for a, ks in self.members.items()} if self.path == "grouped" else {}
        self._templates = {}

    @classmethod
    def from_files(cls, paths, *, device="cpu", path="auto"):
        models = [load(p, device) for p in paths]
        return cls(models, [f"{m.info['arch']}/seed{m.info['seed']}" for m in models],
                   device=device, path=path)

    def __len__(self):
        return len(self.models)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, model_idx: torch.Tensor) -> torch.Tensor:
        """images (B,3,H,W) in [-1,1] on the zoo's device, model_idx (B,) -> (B,3,H,W) in [-1,1]."""
        if images.shape[0] != model_idx.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {model_idx.shape[0]} model indices")
        out = torch.empty_like(images)
        model_idx = model_idx.cpu()
        if self.path == "loop":
            for k in model_idx.unique().tolist():
                rows = (model_idx == k).nonzero().squeeze(1).to(images.device)
                out[rows] = self.models[k](images[rows])
        else:
            for arch, ks in self.members.items():
                self._grouped_call(arch, ks, images, model_idx, out)
        return out.clamp_(-1.0, 1.0)

    def _grouped_call(self, arch, ks, images, model_idx, out):
        rows = torch.isin(model_idx, torch.tensor(ks)).nonzero().squeeze(1)
        if len(rows) == 0:
            return
        slots = self.slot[model_idx[rows]]
        used = slots.unique()                                   # sorted slots this batch asks for
        col = torch.searchsorted(used, slots)                   # position of each row's slot in used
        # row r of the grouped input for model col: count how many earlier rows share its slot
        order = torch.argsort(col, stable=True)
        counts = torch.bincount(col, minlength=len(used))
        starts = torch.cumsum(counts, 0) - counts
        depth = torch.empty_like(col)
        depth[order] = torch.arange(len(col)) - starts[col[order]]
        n, c = len(used), int(counts.max())
        _, _, h, w = images.shape
        x = images.new_zeros(c, n, 3, h, w)
        dev_rows = rows.to(images.device)
        x[depth.to(images.device), col.to(images.device)] = images[dev_rows]
        y = self._apply(arch, used, x.reshape(c, n * 3, h, w)).reshape(c, n, 3, h, w)
        out[dev_rows] = y[depth.to(images.device), col.to(images.device)]

    def _apply(self, arch, used, x):
        net = self.grouped[arch]
        if len(used) == net.copies:
            return net(x)
        if (arch, len(used)) not in self._templates:
            with torch.device("meta"):
                self._templates[(arch, len(used))] = SyntheticNet(arch, len(used), net.width).eval()
        sel = used.to(x.device)
        state = {k: v if v.dim() == 0 else
                 v.reshape(net.copies, -1, *v.shape[1:])[sel].reshape(-1, *v.shape[1:])
                 for k, v in net.state_dict().items()}
        return functional_call(self._templates[(arch, len(used))], state, (x,))
