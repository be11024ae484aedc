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

`BASELINES` names the methods; `baseline(name)` (their module, imported on first use) and `resolve(name, hp)` reject unknown
names and unknown hyper-parameters with the list of known ones. Each method's row label in Tables
VIII-X is `variants.BASELINE_LABELS`.

A trained baseline is one file (`save` / `load`, format modelfp.baseline/1): its name, hp, image
size, classes, weights (for marra also its denoiser) and its centre - the mean feature of its own
training images, subtracted from every feature exactly as Only-Syn's extractor does (the same
treatment for every method: cosines of centred features). `load` returns a `BaselineExtractor`,
which `extractor.embed` (sliding windows, centring) accepts like a trained extractor, so the
baselines' rows and Only-Syn's are computed by the same code.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from types import ModuleType, SimpleNamespace

import torch
import torch.nn as nn

from .. import checkpoints, denoise
from ..pools import to_uint8
from ..testbed import common as _testbed

FORMAT = "modelfp.baseline/1"
log = logging.getLogger(__name__)

# name -> what it is; its module (modelfp.baselines.<name>) is imported on first use by `baseline`:
# torchvision comes with some of them, and `embed` of an Only-Syn extractor needs none
BASELINES: dict[str, str] = {
    "marra": "Marra et al. 2019: mean noise residual, Pearson correlation",
    "yu": "Yu et al. 2019: ProGAN-discriminator attribution network",
    "dnadet": "DNA-Det 2022: transformation pre-training + CE and SupCon on crops",
    "repmix": "RepMix 2022: ResNet, Dirichlet feature mixing, gated attribution/detection heads",
    "abady": "Abady et al. 2024: EfficientNet contrastive embedding + siamese verifier",
    "pose": "POSE 2023: DCT input, growing augmentation networks, CE + triplet",
}


def baseline(name: str) -> ModuleType:
    """The module of a baseline; a clear error for an unknown name."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return importlib.import_module(f"{__name__}.{name}")


def resolve(name: str, hp: dict) -> dict:
    """The baseline's DEFAULTS overridden by hp; unknown names or hyper-parameters are an error."""
    return _testbed.resolve(name, baseline(name).DEFAULTS, hp)


def needs_denoiser(name: str) -> bool:
    """Whether the method's `build` takes the workflow's denoiser (marra: residuals)."""
    return "denoiser" in inspect.signature(baseline(name).build).parameters


class BaselineExtractor(nn.Module):
    """A trained baseline as a fingerprint extractor: features of [-1, 1] images (B,3,S,S) at its
    image size, the method's own `embed` on them; `centre` is subtracted by `extractor.embed`."""

    def __init__(self, name: str, model: nn.Module, image_size: int, centre: torch.Tensor | None = None,
                 meta: dict | None = None):
        super().__init__()
        self.name, self.model, self.module = name, model, baseline(name)
        self.cfg = SimpleNamespace(image_size=image_size, backbone=name)
        with torch.no_grad():
            probe = self.module.embed(model.eval(), torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8), "cpu")
        self.dim = probe.shape[1]
        self.register_buffer("centre", torch.zeros(self.dim) if centre is None else centre.reshape(self.dim).float())
        self.meta = meta or {}
        self.threshold = self.openset_threshold = None

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.embed(self.model, to_uint8(images), self.centre.device).to(images.device)


def save(path, name: str, model: nn.Module, image_size: int, classes: list[str], hp: dict, centre: torch.Tensor,
         info: dict, denoiser=None) -> None:
    """Atomic write of a trained baseline (see the module docstring)."""
    checkpoints.save({"format": FORMAT, "name": name, "hp": hp, "image_size": image_size, "classes": list(classes),
                      "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                      "denoiser": None if denoiser is None else denoise.to_payload(denoiser),
                      "centre": centre.detach().cpu().float(), "info": info}, path)


def load(path, device="cpu") -> BaselineExtractor:
    """A trained baseline file as a `BaselineExtractor` in eval mode; clear errors for other files."""
    payload = checkpoints.load(path, FORMAT, "trained-baseline file", "cpu")
    try:
        name = payload["name"]
        extra = {}
        if needs_denoiser(name):
            extra["denoiser"] = denoise.from_payload(payload["denoiser"], f"{path} (its denoiser)")
        model = baseline(name).build(payload["image_size"], len(payload["classes"]), 0, **extra, **payload["hp"])
        model.load_state_dict(payload["state_dict"])
        wrapped = BaselineExtractor(name, model, payload["image_size"], payload["centre"],
                                    {"classes": payload["classes"], "info": payload["info"], "hp": payload["hp"]})
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} file ({err}); rerun the rule that trains it "
                         f"(train_baseline)") from err
    return wrapped.to(device).eval()


def is_baseline_file(path) -> bool:
    """Whether `path` is a trained-baseline file (else: a fingerprint-extractor file, or an error later).
    Memory-mapped: only the small dict is read, not the weights (the caller then loads the file once)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a torch file, a folder (an exported extractor): not a baseline
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def pair_scorer(model: BaselineExtractor):
    """The method's own pair verifier on (centred) fingerprints as a function (a, b) -> scores
    (numpy (N, dim) each -> (N,)), or None for methods compared by cosine only. The centre is added
    back: the verifier was trained on the method's raw embeddings."""
    score = getattr(model.module, "pair_score", None)
    if score is None:
        return None
    centre = model.centre.detach().cpu().numpy()

    def scorer(a, b):
        with torch.no_grad():
            return score(model.model, torch.from_numpy(a + centre).float(), torch.from_numpy(b + centre).float(),
                         model.centre.device).numpy()
    return scorer
