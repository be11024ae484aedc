"""The baselines of Tables VIII-X, one module per method, keyed by the name the config uses.

Every method module offers the same four things (paper IV-A: a baseline is trained on the
classical test models' training images, then used as a fingerprint extractor whose features are
compared by cosine, exactly like Only-Syn):

    DEFAULTS: dict
        its hyper-parameters at paper scale (a config may override any of them; `resolve`)
    build(image_size, classes, seed=0, **hp) -> nn.Module
        the untrained model (for marra, the training-free state: it also takes `denoiser=`),
        its initial weights drawn from `seed` with the caller's global RNG left as it was
    train(model, images_by_class, steps, batch_size, seed, device, progress=None, state_path=None,
          stopping=None, **hp) -> (model, info)
        images_by_class: one uint8 (n_c,3,S,S) tensor per training source, in label order, at
        the model's image_size; seeded (a CPU torch.Generator(seed) draws batches, augmentations
        and dropout masks; the global RNG is left alone), so the same arguments give the same
        weights; progress(step, loss) every testbed.common.LOG_EVERY steps; info: plain values
        (losses, accuracies, seconds, the hp used); the model comes back in eval mode;
        state_path: a resumable state file (`common.TrainingState`, written every
        max(1, steps // STATE_SAVES) steps of each phase; a run that finds its own state file
        continues it bit-identically, one of another configuration is refused); the caller
        deletes it once the trained file is written;
        stopping: held-out early stopping (`common.Stopping`: a seeded share of each class's images
        held out of the fit; every eval_every steps of the phase that learns the attribution task
        their closed-set accuracy - the method's own classifier, or nearest centroids of its
        embeddings - is measured, the best evaluation's weights kept, training stopped after
        `patience` evaluations without improvement; `steps` is the maximum). None: every step
        runs on every image. info then also holds steps_run, best_step, heldout_acc,
        heldout_images and `history`, the learning curve (rows of step, loss, heldout_acc,
        phase; `common.Monitor`), which train-baseline writes to its csv
    embed(model, images, device) -> float32 (N, D) on the CPU
        images: uint8 (N,3,S,S); the zero-shot features, compared by cosine; eval mode, no
        gradients, deterministic (batching does not change them)

`BASELINES` is the registry: one `Baseline` entry per method, keyed by its config name, with
what the workflow and the tables need to know of it without importing its module (torch): its row
label in Tables VIII-X (for the paper's six, the paper's row: paper_numbers.yaml) and whether it has
a pair verifier of its own. Adding a method is its module plus one entry (and its recipe in the
config; a method the paper does not compare gets its rows without paper numbers, `in_paper=False`).
`baseline(name)` (its module, imported on first use) and `resolve(name, hp)` reject unknown names
and unknown hyper-parameters with the list of known ones.

A trained baseline is one file (`save` / `load`, modelfp.baselines.trained, which imports torch and
is imported on first use of one of its names here): its name, hp, image size, classes, weights (for
marra also its denoiser) and its centre - the mean feature of its own training images, subtracted
from every feature exactly as Only-Syn's extractor does (the same treatment for every method:
cosines of centred features). `load` returns a `BaselineExtractor`, which `extractor.embed`
(sliding windows, centring) accepts like a trained extractor, so the baselines' rows and
Only-Syn's are computed by the same code; `load_fingerprinter` opens either kind of file.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Baseline:
    """A method of Tables VIII-X, as the workflow and the tables know it without its module."""
    label: str              # its row label in Tables VIII-X
    about: str              # the method in a line
    verifier: bool = False  # a pair verifier of its own (its module's `pair_score`; evaluate --verifier)
    in_paper: bool = True   # the paper compares it: `label` is its row there (paper_numbers.yaml)


# config name -> entry; the module modelfp.baselines.<name> is imported on first use by `baseline`:
# torchvision comes with some of them, and `embed` of an Only-Syn extractor needs none
BASELINES: dict[str, Baseline] = {
    "marra": Baseline("Marra et al.", "Marra et al. 2019: mean noise residual, Pearson correlation"),
    "yu": Baseline("Yu et al.", "Yu et al. 2019: ProGAN-discriminator attribution network"),
    "dnadet": Baseline("DNA-Det", "DNA-Det 2022: transformation pre-training + CE and SupCon on crops"),
    "repmix": Baseline("RepMix", "RepMix 2022: ResNet, Dirichlet feature mixing, gated attribution/detection heads"),
    "abady": Baseline("Abady et al.", "Abady et al. 2024: EfficientNet contrastive embedding + siamese verifier",
                      verifier=True),
    "pose": Baseline("POSE", "POSE 2023: DCT input, growing augmentation networks, CE + triplet"),
}


BASELINE_PREFIX = "baseline_"     # a trained baseline's name among the fingerprinters (modelfp.variants)


def baseline_variant(method: str) -> str:
    """The embeddings / evaluation name of a trained baseline, beside the extractor variants'."""
    return f"{BASELINE_PREFIX}{method}"


def baseline(name: str) -> ModuleType:
    """The module of a baseline; a clear error for an unknown name."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return importlib.import_module(f"{__name__}.{name}")


def resolve(name: str, hp: dict) -> dict:
    """The baseline's DEFAULTS overridden by hp; unknown names or hyper-parameters are an error."""
    from ..testbed.common import resolve as resolve_hp
    return resolve_hp(name, baseline(name).DEFAULTS, hp)


def needs_denoiser(name: str) -> bool:
    """Whether the method's `build` takes the workflow's denoiser (marra: residuals)."""
    return "denoiser" in inspect.signature(baseline(name).build).parameters


# The trained-baseline file and its extractor (modelfp.baselines.trained): torch comes with them, so
# they are imported on first use and the registry above stays light for the workflow's start-up.
_TRAINED = ("FORMAT", "BaselineExtractor", "save", "load", "is_baseline_file", "pair_scorer", "pair_verifier",
            "load_fingerprinter")


def __getattr__(name):
    if name in _TRAINED:
        from . import trained
        return getattr(trained, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
