"""A trained baseline as a file and as a fingerprint extractor (see modelfp.baselines): `save` /
`load` (format modelfp.baseline/1), `BaselineExtractor`, and the method's own pair verifier.
Apart from the registry because it imports torch; modelfp.baselines gives its names on first use.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn

from .. import checkpoints, denoise
from ..pools import to_uint8
from . import baseline, needs_denoiser

FORMAT = "modelfp.baseline/1"


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


def pair_verifier(path):
    """The own pair verifier (`pair_scorer`) of a trained-baseline file's method, for `evaluate`'s
    verifier_verification_* columns; ValueError for a method compared by cosine only."""
    verifier = pair_scorer(load(path))
    if verifier is None:
        raise ValueError(f"{path}: its method has no pair verifier of its own (only abady has)")
    return verifier


def load_fingerprinter(path, device):
    """A fingerprint-extractor file or a trained-baseline file, ready for `extractor.embed`: the
    workflow embeds both kinds alike (a baseline's variant is `baseline_<method>`)."""
    from .. import extractor as ex
    return load(path, device) if is_baseline_file(path) else ex.load(path, device)
