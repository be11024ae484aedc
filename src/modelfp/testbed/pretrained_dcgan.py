"""Test-bed family "pretrained_dcgan": a real DCGAN face generator trained by someone else.

The weights ship inside the PyPI package ``gan-face-generate`` (1.1.1): ``weights.tar``, a
torch.save zip checkpoint despite its name, holding ``netG_state_dict``, the generator of the
PyTorch DCGAN tutorial (Radford et al. 2016) trained on DigiFace1M (synthetic face renders) at
64x64, images normalised to [-1, 1]. It is the one test model the workflow does not train: it
brings a fingerprint from a training run, a data set and a code base that are not ours.

Install it without its dependencies (they include wandb and a trainer's tool chain; we need only
the weights file):

    .venv/bin/pip install --no-deps gan-face-generate==1.1.1

We never import ``gan_face_generate`` (its modules import matplotlib, torchvision datasets and,
for training, wandb): the file is located through importlib's spec of the package and the
generator architecture is redefined here, module for module, so that the state dict's keys
(``main.0.weight`` ...) load as they are. nz and ngf are read from the weights' shapes.
"""

from __future__ import annotations

import importlib.util
import pathlib
import time

import torch
import torch.nn as nn

DEFAULTS: dict = {}          # nothing to tune: the model is trained elsewhere
PACKAGE = "gan_face_generate"
DISTRIBUTION = "gan-face-generate==1.1.1"
INSTALL = f".venv/bin/pip install --no-deps {DISTRIBUTION}"
WEIGHTS = "weights.tar"
STATE_KEY = "netG_state_dict"
IMAGE_SIZE = 64              # fixed by the architecture: 4x4 and four x2 transposed convs
NC = 3
NZ, NGF = 100, 64            # the package's values; `load` reads the real ones from the weights
SAMPLE_CHUNK = 256
INFO_NOTE = "pretrained, trained elsewhere on DigiFace1M; not trained here"


class Generator(nn.Module):
    """The PyTorch DCGAN tutorial's generator (gan_face_generate/models.py, same layer indices):
    z (B, nz, 1, 1) -> 4 -> 8 -> 16 -> 32 -> 64, transposed convs + BatchNorm + ReLU, tanh out."""

    def __init__(self, nz: int = NZ, ngf: int = NGF, nc: int = NC):
        super().__init__()
        self.nz, self.ngf, self.z_dim = nz, ngf, nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


def _check_size(image_size: int) -> None:
    if image_size != IMAGE_SIZE:
        raise ValueError(f"pretrained_dcgan makes {IMAGE_SIZE}x{IMAGE_SIZE} images only (its "
                         f"generator's architecture and weights are fixed); got image_size "
                         f"{image_size}: set image_size: {IMAGE_SIZE} for this test model")


def _check_hp(hp: dict) -> None:
    if hp:
        raise ValueError(f"pretrained_dcgan takes no hyper-parameters, got {sorted(hp)}")


def build(image_size: int = IMAGE_SIZE, nz: int = NZ, ngf: int = NGF, **hp) -> Generator:
    """The (untrained) architecture; nz and ngf are for `load`, which reads them from the weights."""
    _check_size(image_size)
    _check_hp(hp)
    return Generator(nz, ngf)


def weights_path() -> pathlib.Path:
    """The package's weights file, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"pretrained_dcgan needs the weights of the PyPI package "
                           f"{DISTRIBUTION}, which is not installed; install it (no network at "
                           f"run time) with:  {INSTALL}")
    for location in spec.submodule_search_locations:
        path = pathlib.Path(location) / WEIGHTS
        if path.is_file():
            return path
    raise RuntimeError(f"package {PACKAGE} is installed but has no {WEIGHTS}; reinstall it: "
                       f"{INSTALL} --force-reinstall")


def _read_state(path: pathlib.Path) -> dict:
    # The checkpoint holds only tensors in dicts, which weights_only=True loads (checked on 1.1.1).
    # We never fall back to weights_only=False: that would run pickled code from a third-party file.
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise RuntimeError(f"{path}: cannot read the pretrained DCGAN checkpoint with "
                           f"weights_only=True ({err}); reinstall: {INSTALL} --force-reinstall") from err
    if not isinstance(checkpoint, dict) or STATE_KEY not in checkpoint:
        raise RuntimeError(f"{path}: no {STATE_KEY!r} in the checkpoint (another version of "
                           f"the package?); install {DISTRIBUTION}")
    return checkpoint[STATE_KEY]


def load(device="cpu") -> Generator:
    """The pretrained generator in eval mode (BatchNorm uses the running statistics it was saved
    with, as the package's own inference script does), on device."""
    state = _read_state(weights_path())
    first = state["main.0.weight"]             # ConvTranspose2d(nz, 8 * ngf, 4): (nz, 8*ngf, 4, 4)
    model = Generator(nz=first.shape[0], ngf=first.shape[1] // 8)
    model.load_state_dict(state)
    return model.to(device).eval()


def train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp):
    """No training: checks image_size and returns the pretrained generator (pool, steps,
    batch_size and seed are ignored) and an info dict saying so."""
    _check_size(image_size)
    _check_hp(hp)
    start = time.perf_counter()
    path = weights_path()
    model = load(device)
    return model, {"family": "pretrained_dcgan", "pretrained": True, "note": INFO_NOTE,
                   "steps": 0, "seconds": time.perf_counter() - start, "nz": model.nz,
                   "ngf": model.ngf, "weights": str(path), "source": DISTRIBUTION}


@torch.no_grad()
def sample(model: Generator, n: int, seed: int, device) -> torch.Tensor:
    """n images from z ~ N(0, 1) of shape (n, nz, 1, 1) drawn from torch.Generator(seed) on the
    CPU, one draw per image so the first k images do not depend on n (a whole (n, nz) block is not
    prefix-stable: CPU normals come in blocks of 16, a partial last block is redrawn): float
    (n,3,64,64) in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    z = (torch.stack([torch.randn(model.nz, 1, 1, generator=gen) for _ in range(n)]) if n
         else torch.empty(0, model.nz, 1, 1))
    was_training = model.training
    model.eval()   # running statistics: an image does not depend on the others in its batch
    out = [model(z[i:i + SAMPLE_CHUNK].to(device)) for i in range(0, n, SAMPLE_CHUNK)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, NC, IMAGE_SIZE, IMAGE_SIZE, device=device)
