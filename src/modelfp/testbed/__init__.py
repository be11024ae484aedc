"""The test bed: real generative models to attribute (paper Table III), trained by the workflow.

Each family of generative model is a module of this package with the same three functions:

    DEFAULTS: dict                      # its hyper-parameters (config may override any of them)
    build(image_size, **hp) -> nn.Module
        the model that samples (for a GAN the generator; for a VAE the whole VAE), untrained
    train(pool, image_size, steps, batch_size, seed, device, progress=None, **hp) -> (model, info)
        pool: uint8 (N,3,S,S) real images (resize inside if S != image_size); returns the model
        built by `build` (trained) and a dict of plain values (losses, seconds, ...)
    sample(model, n, seed, device, **sampling) -> float tensor (n,3,image_size,image_size) in [-1,1]

Families with a likelihood-style objective (vae, flow, ddpm) also have

    loss(model, x, generator) -> scalar tensor
        the training loss on a batch x in [-1, 1] (noise drawn from the CPU `generator`), which
        the LoRA fine-tuning of `testbed.lora` minimises to make lineage variants of a base model

What the families share lives in `common` (hyper-parameters resolved against DEFAULTS, the
power-of-two size check, seeded initial weights, batches, the loss bookkeeping of the likelihood
families); the GAN families (dcgan, progan, sngan, vit) also share the training loop of `gan`.

`FAMILIES` maps a family name (the `family:` of a test model in the config) to its module and to
its Table III group: "classical" (CNN GANs: what baselines and the Fine-tune variant train on) or
"emerging" (everything else).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .. import declared


@dataclass(frozen=True)
class Family:
    name: str
    module: str        # module of this package
    group: str         # classical | emerging (Table III)
    kind: str          # GAN, VAE, flow, diffusion, transformer


FAMILIES = {f.name: f for f in (
    Family("dcgan", "dcgan", "classical", "GAN"),
    Family("progan", "progan", "classical", "GAN"),
    Family("sngan", "sngan", "classical", "GAN"),
    Family("pretrained_dcgan", "pretrained_dcgan", "classical", "GAN"),
    Family("vae", "vae", "emerging", "VAE"),
    Family("flow", "flow", "emerging", "flow"),
    Family("ddpm", "diffusion", "emerging", "diffusion"),
    Family("vit", "vit", "emerging", "transformer"),
)}


def check_options(entry: str, generator: str, hp: dict, sampling: dict) -> None:
    """Config typos caught at start-up: `hp` keys must be the family's DEFAULTS, `sampling` keys
    options of its `sample` (a list value is drawn per image; each element must be allowed too).
    The names are read from the family's source (modelfp.declared): importing it would import torch
    when the Snakefile is parsed."""
    module = f"{__name__}.{_entry(generator).module}"
    known_hp = declared.defaults(module)
    unknown_hp = sorted(set(hp) - set(known_hp))
    if unknown_hp:
        raise ValueError(f"config: {entry}: unknown {generator} hp {unknown_hp}; known: {sorted(known_hp)}")
    options = [p for p in declared.parameters(module, "sample") if p not in ("model", "G", "n", "seed", "device")]
    unknown = sorted(set(sampling) - set(options))
    if unknown:
        raise ValueError(f"config: {entry}: unknown {generator} sampling options {unknown}; known: {options}")


def _entry(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown test-model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[name]


def family(name: str):
    """The module of a family, imported on first use."""
    return importlib.import_module(f".{_entry(name).module}", __name__)


FORMAT = "modelfp.testbed/1"


def save(model, family_name: str, image_size: int, hp: dict, info: dict, path) -> None:
    """Atomic write of a trained test model: enough to rebuild it with `load`."""
    from .. import checkpoints     # torch: imported here, so that reading FAMILIES stays light

    payload = {"format": FORMAT, "family": family_name, "image_size": image_size, "hp": hp,
               "info": info, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    checkpoints.save(payload, path)


def load(path, device="cpu"):
    """(model in eval mode, payload without the weights) of a file written by `save`."""
    from .. import checkpoints

    payload = checkpoints.load(path, FORMAT, "test-model file", device)
    model = family(payload["family"]).build(payload["image_size"], **payload["hp"]).to(device)
    model.load_state_dict(payload.pop("state_dict"))
    return model.eval(), payload


def write_contact_sheet(images, path, nrow: int = 8, padding: int = 2) -> None:
    """A PNG of float images (n,3,s,s) in [-1, 1], `nrow` to a row, with `padding` black pixels
    between and around them: torchvision's `save_image` layout (for n > 1) and rounding, written
    without importing torchvision, which costs every sampling job about 2 s (measured:
    `python -X importtime`, the smoke run)."""
    import torch
    from PIL import Image

    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    pixels = ((images.detach().float().cpu() * 0.5 + 0.5) * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding, dtype=torch.uint8)
    for i, image in enumerate(pixels):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[:, top:top + h, left:left + w] = image
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
