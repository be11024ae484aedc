"""The baselines of Tables VIII-X, one module per method, keyed by the name the config uses.

Every method module offers the same four things (paper IV-A: a baseline is trained on the
classical test models' training images, then used as a fingerprint extractor whose features are
compared by cosine, exactly like Only-Syn):

    DEFAULTS: dict
        its hyper-parameters at paper scale (a config may override any of them; `resolve`)
    build(image_size, classes, seed=0, **hp) -> nn.Module
        the untrained model (for marra, the training-free state: it also takes `denoiser=`),
        its initial weights drawn from `seed` with the caller's global RNG left as it was
    train(model, images_by_class, steps, batch_size, seed, device, progress=None, **hp)
        -> (model, info)
        images_by_class: one uint8 (n_c,3,S,S) tensor per training source, in label order, at
        the model's image_size; seeded (a CPU torch.Generator(seed) draws batches, augmentations
        and dropout masks; the global RNG is left alone), so the same arguments give the same
        weights; progress(step, loss) every testbed.common.LOG_EVERY steps; info: plain values
        (losses, accuracies, seconds, the hp used); the model comes back in eval mode
    embed(model, images, device) -> float32 (N, D) on the CPU
        images: uint8 (N,3,S,S); the zero-shot features, compared by cosine; eval mode, no
        gradients, deterministic (batching does not change them)

`BASELINES` maps a name to its module; `baseline(name)` and `resolve(name, hp)` reject unknown
names and unknown hyper-parameters with the list of known ones.
"""

from __future__ import annotations

from types import ModuleType

from ..testbed import common as _testbed
from . import dnadet, marra, yu

BASELINES: dict[str, ModuleType] = {
    "marra": marra,     # Marra et al. 2019: mean noise residual, Pearson correlation
    "yu": yu,           # Yu et al. 2019: ProGAN-discriminator attribution network
    "dnadet": dnadet,   # DNA-Det 2022: transformation pre-training + CE and SupCon on crops
}


def baseline(name: str) -> ModuleType:
    """The module of a baseline; a clear error for an unknown name."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return BASELINES[name]


def resolve(name: str, hp: dict) -> dict:
    """The baseline's DEFAULTS overridden by hp; unknown names or hyper-parameters are an error."""
    return _testbed.resolve(name, baseline(name).DEFAULTS, hp)
