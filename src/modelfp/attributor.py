"""The Python API for people: which model made an image, with a trained fingerprint extractor.

    from modelfp.attributor import Attributor
    att = Attributor("results/extractors/all/model.pt")
    att.gallery_add("my.gallery", "stylegan2", ["a.png", "stylegan2_samples/"])
    for record in att.identify(["query.png", "queries/"], "my.gallery"):
        print(record)                  # Identification(path, model, score, nearest, threshold, error)
    print(att.verify("x.png", "y.png"))

A gallery holds, per model, the sum and count of its images' unit fingerprints (their mean
direction is the model's fingerprint, Section IV-B); it is tied to the extractor file that made
it by the file's digest. Inputs are image files or folders (searched recursively for the formats
of `modelfp.pools`). An image that cannot be used (missing, empty, corrupt, truncated, smaller
than the extractor's window) is a record with `error` set, "what is wrong; what to do", and never
stops the other images. An unusable extractor or gallery file raises ValueError, one line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoints
from . import extractor as ex
from .pools import IMAGE_EXTENSIONS, BadImageError, list_images, load_image

GALLERY_FORMAT = "modelfp.gallery/1"
GALLERY_HINT = "pass a gallery made by `modelfp gallery add`"
WINDOWS = 3                 # sliding windows per side of an image (Table VII)
CHUNK = 32                  # images read and embedded at a time (memory stays flat on big folders)
BAD_IMAGE_FIX = "re-export the image or leave it out"


# ---------------------------------------------------------------------------------------------
# Records

@dataclass
class ImageRecord:
    """One input image as read: the uint8 (3,H,W) pixels, or the error."""
    path: str
    image: torch.Tensor | None = None
    error: str | None = None


@dataclass
class Identification:
    """The nearest gallery model of one image; `model` is "unknown" when the score is under the
    threshold. Only `path` and `error` are set when the image could not be used."""
    path: str
    model: str | None = None
    score: float | None = None
    nearest: str | None = None
    threshold: float | None = None
    error: str | None = None


@dataclass
class Verification:
    """Do images a and b come from the same model? `failed` holds the records of unusable images
    (then `same` and `score` are None)."""
    a: str
    b: str
    same: bool | None = None
    score: float | None = None
    threshold: float | None = None
    failed: list[ImageRecord] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(f"{r.path}: {r.error}" for r in self.failed) or None


@dataclass
class GalleryUpdate:
    """What `gallery_add` did: the model's image count afterwards, the number of models in the
    gallery, the images added and the records of those that could not be used."""
    name: str
    path: str
    count: int
    models: int
    added: list[str]
    failed: list[ImageRecord]


@dataclass
class Gallery:
    """Fingerprints of known models: per model the sum and count of its images' unit embeddings,
    made by the extractor whose file has digest `extractor`, each image seen in `windows` x
    `windows` windows."""
    extractor: str
    windows: int = WINDOWS
    models: dict[str, dict] = field(default_factory=dict)     # name -> {"sum": (dim,), "count": int}

    def fingerprints(self) -> tuple[list[str], torch.Tensor]:
        """Model names and their unit fingerprints (M, dim): each model's mean direction."""
        names = list(self.models)
        return names, F.normalize(torch.stack([self.models[n]["sum"] for n in names]), dim=1)

    def to_payload(self) -> dict:
        return {"format": GALLERY_FORMAT, "extractor": self.extractor, "window": self.windows,
                "models": self.models}


# ---------------------------------------------------------------------------------------------
# Reading images

def _error(path, problem: str, fix: str = BAD_IMAGE_FIX) -> ImageRecord:
    return ImageRecord(str(path), error=f"{problem}; {fix}")


def expand(inputs: Iterable) -> Iterator[tuple[str, str | None]]:
    """(path, None) for each image file of `inputs` (a file as given, a folder's images found
    recursively, in sorted order), or (path, error) for a missing path or a folder without images."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                yield str(path), (f"a folder with no images ({', '.join(IMAGE_EXTENSIONS)}) in it; "
                                  f"check the path")
            yield from ((str(p), None) for p in found)
        elif not path.exists():
            yield str(path), "no such file or folder; check the path"
        else:
            yield str(path), None


def read_images(inputs: Iterable, min_size: int) -> Iterator[ImageRecord]:
    """One record per image of `inputs` (see `expand`), in order: its pixels at their own size,
    or the error. Images smaller than `min_size` (the extractor's window) on a side are refused,
    not upscaled: resizing would rewrite the high-frequency traces the fingerprint is made of."""
    for path, error in expand(inputs):
        if error:
            yield ImageRecord(path, error=error)
            continue
        try:
            image = load_image(path, None)
        except BadImageError as err:
            yield _error(path, err.problem)
            continue
        h, w = image.shape[-2:]
        if h < min_size or w < min_size:
            yield _error(path, f"{w}x{h} pixels, smaller than the extractor's {min_size}x{min_size} window",
                         f"use images of at least {min_size}x{min_size} pixels (small images are "
                         f"not upscaled: that would change their fingerprint)")
        else:
            yield ImageRecord(path, image)


def _chunks(records: Iterator[ImageRecord], n: int) -> Iterator[list[ImageRecord]]:
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------------------------
# The attributor

class Attributor:
    """A trained extractor file, ready to build galleries, identify and verify.

    extractor: path of an extractor file (results/extractors/<variant>/model.pt carries the
    calibrated verification and open-set thresholds); device: where it runs; windows: sliding windows per side
    of each image for new galleries and for `verify` (a gallery keeps the count it was made with).
    """

    def __init__(self, extractor, device="cpu", windows: int = WINDOWS):
        self.path = str(extractor)
        self.model = ex.load(extractor, device)
        self.digest = hashlib.sha256(Path(extractor).read_bytes()).hexdigest()[:16]
        self.windows = windows

    @property
    def min_size(self) -> int:
        """The extractor's window (its training image size): the smallest image side it accepts."""
        return self.model.cfg.image_size

    def threshold(self, threshold: float | None = None, kind: str = "verification") -> float:
        """`threshold` when given, else the extractor's calibrated one of `kind`: "verification"
        (verify: same model at or above it) or "open-set" (identify: "unknown" below it)."""
        if threshold is not None:
            return float(threshold)
        stored = self.model.threshold if kind == "verification" else self.model.openset_threshold
        if stored is None:
            raise ValueError(f"{self.path} holds no {kind} threshold (an uncalibrated file, or calibrated "
                             f"before {kind} thresholds were stored); pass a threshold (--threshold) or "
                             f"use results/extractors/<variant>/model.pt")
        return float(stored)

    def embed(self, inputs: Iterable, windows: int | None = None) -> Iterator[tuple[ImageRecord, torch.Tensor | None]]:
        """(record, unit fingerprint (dim,) or None when the record has an error) per input image."""
        windows = windows or self.windows
        for chunk in _chunks(read_images(inputs, self.min_size), CHUNK):
            good = [r for r in chunk if r.error is None]
            emb = F.normalize(ex.embed(self.model, [r.image for r in good], windows), dim=1) if good else None
            rows = iter(emb) if good else iter(())
            for record in chunk:
                yield record, (next(rows) if record.error is None else None)

    # -- galleries ------------------------------------------------------------------------------

    def new_gallery(self) -> Gallery:
        return Gallery(self.digest, self.windows)

    def load_gallery(self, path) -> Gallery:
        """The gallery in `path`, or ValueError (not a gallery file, made with another extractor)."""
        payload = checkpoints.load(path, GALLERY_FORMAT, "gallery file", hint=GALLERY_HINT)
        if payload.get("extractor") != self.digest:
            raise ValueError(f"{path}: made with another extractor file than {self.path}; galleries are "
                             f"tied to the extractor that embedded them (make a new gallery with "
                             f"`modelfp gallery add`)")
        return Gallery(payload["extractor"], payload["window"], payload["models"])

    def save_gallery(self, gallery: Gallery, path) -> None:
        checkpoints.save(gallery.to_payload(), path)

    def add(self, gallery: Gallery, name: str, inputs: Iterable) -> tuple[list[str], list[ImageRecord]]:
        """Add the images of `inputs` to model `name` of `gallery` (in memory); returns the paths
        added and the records of the images that could not be used."""
        added, failed = [], []
        for record, h in self.embed(inputs, gallery.windows):
            if h is None:
                failed.append(ImageRecord(record.path, error=record.error))
                continue
            entry = gallery.models.get(name, {"sum": torch.zeros_like(h), "count": 0})
            gallery.models[name] = {"sum": entry["sum"] + h, "count": entry["count"] + 1}
            added.append(record.path)
        return added, failed

    def gallery_add(self, path, name: str, inputs: Iterable) -> GalleryUpdate:
        """Build or extend the gallery file `path` with images of model `name`; the file is written
        (atomically) only when at least one image was added."""
        gallery = self.load_gallery(path) if Path(path).exists() else self.new_gallery()
        added, failed = self.add(gallery, name, inputs)
        if added:
            self.save_gallery(gallery, path)
        count = gallery.models[name]["count"] if name in gallery.models else 0
        return GalleryUpdate(name, str(path), count, len(gallery.models), added, failed)

    # -- identification and verification -------------------------------------------------------

    def identify(self, inputs: Iterable, gallery, threshold: float | None = None) -> list[Identification]:
        """One record per input image, in order: the nearest gallery model by cosine similarity,
        or "unknown" under the threshold (default: the extractor's open-set threshold). gallery: a
        Gallery or a path."""
        where = "" if isinstance(gallery, Gallery) else f"{gallery}: "
        gallery = gallery if isinstance(gallery, Gallery) else self.load_gallery(gallery)
        if not gallery.models:
            raise ValueError(f"{where}an empty gallery; add models with `modelfp gallery add`")
        threshold = self.threshold(threshold, "open-set")
        names, prints = gallery.fingerprints()
        out = []
        for record, h in self.embed(inputs, gallery.windows):
            if h is None:
                out.append(Identification(record.path, error=record.error))
                continue
            sims = prints @ h
            best = int(sims.argmax())
            score = float(sims[best])
            out.append(Identification(record.path, names[best] if score >= threshold else "unknown",
                                      score, names[best], threshold))
        return out

    def verify(self, a, b, threshold: float | None = None) -> Verification:
        """Same model or not: cosine similarity of the two images' fingerprints against the
        threshold (default: the extractor's verification threshold). a and b are image files (a
        folder is an error)."""
        threshold = self.threshold(threshold)
        pairs = []
        for item in (a, b):
            if Path(item).is_dir():
                pairs.append((_error(item, "a folder", "verify compares two image files; name one"), None))
            else:
                pairs += list(self.embed([item], self.windows))
        failed = [record for record, h in pairs if h is None]
        if failed:
            return Verification(str(a), str(b), threshold=threshold,
                                failed=[ImageRecord(r.path, error=r.error) for r in failed])
        score = float(pairs[0][1] @ pairs[1][1])
        return Verification(str(a), str(b), score >= threshold, score, threshold)
