"""The Python API for people: which model made an image, with a trained fingerprint extractor.

    from modelfp import Attributor
    att = Attributor("results/extractors/all/model.pt")       # or a folder written by `modelfp export`
    att.gallery_add("my.gallery", "stylegan2", ["a.png", "stylegan2_samples/", "more/*.jpg"])
    for record in att.identify(["query.png", "queries/"], "my.gallery", top_k=3):
        print(record)      # Identification(path, model, score, nearest, threshold, error, top, source)
    print(att.verify("x.png", "y.png"))

A gallery holds, per model, the sum and count of its images' unit fingerprints (their mean
direction is the model's fingerprint, Section IV-B); it is tied to the extractor that made it by
a digest of the extractor's weights (`weights_digest`: the .pt file and its exported form share
galleries). Inputs are image files, folders (searched recursively for the formats of
`modelfp.pools`) or glob patterns (`**` descends into folders). An image that cannot be used
(missing, empty, corrupt, truncated, smaller than the extractor's window) is a record with `error`
set, "what is wrong; what to do", and never stops the other images. An unusable extractor or
gallery file raises ValueError, one line. Records are plain dataclasses (`dataclasses.asdict`).
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable, Iterator
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
    source: str | None = None       # the input it was found through (see `expand`)


@dataclass
class Candidate:
    """A gallery model and its score (cosine similarity of the image and the model's fingerprint)."""
    model: str
    score: float


@dataclass
class Identification:
    """The nearest gallery model of one image; `model` is "unknown" when the score is under the
    threshold; `top` holds the best gallery models, best first (`top[0]` is `nearest`). Only
    `path`, `error` and `source` are set when the image could not be used. `source`: the input
    folder or pattern the image was found through (a file named on its own: its folder)."""
    path: str
    model: str | None = None
    score: float | None = None
    nearest: str | None = None
    threshold: float | None = None
    error: str | None = None
    top: list[Candidate] = field(default_factory=list)
    source: str | None = None


@dataclass
class FolderSummary:
    """Where the images of one input folder (or pattern) went: images per gallery model (most
    first), "unknown" and could not be used."""
    folder: str
    images: int
    models: dict[str, int]
    unknown: int
    failed: int


def summarize(records: Iterable[Identification]) -> list[FolderSummary]:
    """One summary per `source` of the identification records, in the order sources first appear."""
    groups: dict[str, list[Identification]] = {}
    for r in records:
        groups.setdefault(r.source or "", []).append(r)
    out = []
    for folder, group in groups.items():
        counts: dict[str, int] = {}
        for r in group:
            if r.error is None and r.model != "unknown":
                counts[r.model] = counts.get(r.model, 0) + 1
        out.append(FolderSummary(folder, len(group), dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                                 sum(r.model == "unknown" for r in group), sum(r.error is not None for r in group)))
    return out


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

    def counts(self) -> dict[str, int]:
        """Images per model, in the order the models were added."""
        return {name: int(entry["count"]) for name, entry in self.models.items()}

    def remove(self, names: Iterable[str], where: str = "the gallery") -> dict[str, int]:
        """Drop the models `names` (all or none: ValueError naming the absent ones); returns their
        image counts."""
        names = list(dict.fromkeys(names))
        absent = [n for n in names if n not in self.models]
        if absent:
            raise ValueError(f"{where}: no model {', '.join(map(repr, absent))} (it has: "
                             f"{', '.join(self.models) or 'no models'}); see `modelfp gallery list`")
        return {name: int(self.models.pop(name)["count"]) for name in names}

    def to_payload(self) -> dict:
        return {"format": GALLERY_FORMAT, "extractor": self.extractor, "window": self.windows,
                "models": self.models}


def read_gallery(path) -> Gallery:
    """The gallery in file `path`, whatever extractor made it (`Attributor.load_gallery` also
    checks that), or ValueError naming the file."""
    payload = checkpoints.load(path, GALLERY_FORMAT, "gallery file", hint=GALLERY_HINT)
    try:
        return Gallery(str(payload["extractor"]), int(payload["window"]), dict(payload["models"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: damaged gallery file ({err}); {GALLERY_HINT}") from err


def save_gallery(gallery: Gallery, path) -> None:
    checkpoints.save(gallery.to_payload(), path)


def remove_models(path, names: Iterable[str]) -> tuple[dict[str, int], Gallery]:
    """Remove the models `names` from the gallery file `path` (rewritten atomically); returns their
    image counts and the gallery left."""
    gallery = read_gallery(path)
    removed = gallery.remove(names, str(path))
    save_gallery(gallery, path)
    return removed, gallery


# ---------------------------------------------------------------------------------------------
# Reading images

def _error(path, problem: str, fix: str = BAD_IMAGE_FIX, source: str | None = None) -> ImageRecord:
    return ImageRecord(str(path), error=f"{problem}; {fix}", source=source)


def is_pattern(item) -> bool:
    """A glob pattern (*, ?, [...]) that is not itself the name of an existing file or folder."""
    return glob.has_magic(str(item)) and not Path(item).exists()


def _folder_images(folder: Path, source: str) -> Iterator[tuple[str, str | None, str]]:
    found = list_images(folder)
    if not found:
        yield str(folder), (f"a folder with no images ({', '.join(IMAGE_EXTENSIONS)}) in it; "
                            f"check the path"), source
    yield from ((str(p), None, source) for p in found)


def expand(inputs: Iterable) -> Iterator[tuple[str, str | None, str]]:
    """(path, None, source) for each image file of `inputs`, or (path, error, source) for a missing
    path, a folder without images or a pattern that matches nothing. An input is a file (as given;
    its source is its folder), a folder (its images found recursively, in sorted order; the source
    is the folder) or a glob pattern (`**` matches folders at any depth; matched folders are read
    like folders, matched files kept when they have an image extension; the source is the pattern)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from _folder_images(path, str(path))
        elif is_pattern(item):
            matches = sorted(glob.glob(str(item), recursive=True))
            n = 0                                   # entries yielded for this pattern
            for match in map(Path, matches):
                if match.is_dir():
                    for found in _folder_images(match, str(item)):
                        n += 1
                        yield found
                elif match.name.lower().endswith(IMAGE_EXTENSIONS):
                    n += 1
                    yield str(match), None, str(item)
            if not matches:
                yield str(item), "no file or folder matches this pattern; check the pattern", str(item)
            elif not n:
                yield str(item), (f"the pattern matches no image ({', '.join(IMAGE_EXTENSIONS)}); "
                                  f"check the pattern"), str(item)
        elif not path.exists():
            yield str(path), "no such file or folder; check the path", str(path.parent)
        else:
            yield str(path), None, str(path.parent)


def read_images(inputs: Iterable, min_size: int) -> Iterator[ImageRecord]:
    """One record per image of `inputs` (see `expand`), in order: its pixels at their own size,
    or the error. Images smaller than `min_size` (the extractor's window) on a side are refused,
    not upscaled: resizing would rewrite the high-frequency traces the fingerprint is made of."""
    for path, error, source in expand(inputs):
        if error:
            yield ImageRecord(path, error=error, source=source)
            continue
        try:
            image = load_image(path, None)
        except BadImageError as err:
            yield _error(path, err.problem, source=source)
            continue
        h, w = image.shape[-2:]
        if h < min_size or w < min_size:
            yield _error(path, f"{w}x{h} pixels, smaller than the extractor's {min_size}x{min_size} window",
                         f"use images of at least {min_size}x{min_size} pixels (small images are "
                         f"not upscaled: that would change their fingerprint)", source)
        else:
            yield ImageRecord(path, image, source=source)


def models_in_folders(roots: Iterable) -> tuple[dict[str, list[str]], list[ImageRecord]]:
    """A folder of folders -> {sub-folder name: [sub-folder]} (one model per sub-folder, hidden ones
    left out; the same name under two roots is one model), and error records for a root that is not
    a folder or has no sub-folder, and for images lying in a root itself (outside any model)."""
    models: dict[str, list[str]] = {}
    errors = []
    for root in map(Path, roots):
        if not root.is_dir():
            errors.append(_error(root, "no such folder" if not root.exists() else "a file, not a folder",
                                 "name a folder with one sub-folder of images per model", str(root)))
            continue
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for sub in subs:
            models.setdefault(sub.name, []).append(str(sub))
        loose = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.name.lower().endswith(IMAGE_EXTENSIONS)]
        errors += [_error(p, "an image outside the model sub-folders",
                          "move it into the sub-folder named after its model", str(root)) for p in sorted(loose)]
        if not subs:
            errors.append(_error(root, "a folder without sub-folders",
                                 "put each model's images in a sub-folder named after the model", str(root)))
    return models, errors


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

def weights_digest(model: ex.Extractor) -> str:
    """What ties a gallery to its extractor: a digest of everything that makes the fingerprints (the
    config, every weight and buffer, the denoiser's, the centre) and of nothing else, so the .pt
    file, its exported form and a recalibrated copy (other thresholds) share galleries."""
    digest = hashlib.sha256(repr(sorted(vars(model.cfg).items())).encode())
    tensors = {**model.state_dict(), "centre": model.centre}
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key} {t.dtype} {tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class Attributor:
    """A trained extractor, ready to build galleries, identify and verify.

    extractor: path of an extractor file (results/extractors/<variant>/model.pt carries the
    calibrated verification and open-set thresholds) or of the folder `modelfp export` wrote;
    device: where it runs; windows: sliding windows per side of each image for new galleries and for
    `verify` (a gallery keeps the count it was made with).
    """

    def __init__(self, extractor, device="cpu", windows: int = WINDOWS):
        self.path = str(extractor)
        self.model = ex.load(extractor, device)
        self.digest = weights_digest(self.model)
        self.windows = windows

    def _made_here(self, digest: str) -> bool:
        """Whether a gallery's extractor digest is this extractor's: its weights digest, or (galleries
        made before weights digests) the digest of this extractor's file."""
        if digest == self.digest:
            return True
        path = Path(self.path)
        return path.is_file() and digest == hashlib.sha256(path.read_bytes()).hexdigest()[:16]

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

    def count(self, inputs: Iterable) -> int:
        """How many records `inputs` make (images and errors): the total of a progress bar."""
        return sum(1 for _ in expand(inputs))

    def embed(self, inputs: Iterable, windows: int | None = None,
              progress: Callable[[int], object] | None = None) -> Iterator[tuple[ImageRecord, torch.Tensor | None]]:
        """(record, unit fingerprint (dim,) or None when the record has an error) per input image;
        progress(n) after each chunk of n records (e.g. a tqdm bar's update)."""
        windows = windows or self.windows
        for chunk in _chunks(read_images(inputs, self.min_size), CHUNK):
            good = [r for r in chunk if r.error is None]
            emb = F.normalize(ex.embed(self.model, [r.image for r in good], windows), dim=1) if good else None
            rows = iter(emb) if good else iter(())
            for record in chunk:
                yield record, (next(rows) if record.error is None else None)
            if progress:
                progress(len(chunk))

    # -- galleries ------------------------------------------------------------------------------

    def new_gallery(self) -> Gallery:
        return Gallery(self.digest, self.windows)

    def load_gallery(self, path) -> Gallery:
        """The gallery in `path`, or ValueError (not a gallery file, made with another extractor)."""
        gallery = read_gallery(path)
        if not self._made_here(gallery.extractor):
            raise ValueError(f"{path}: made with another extractor than {self.path}; galleries are "
                             f"tied to the extractor that embedded them (make a new gallery with "
                             f"`modelfp gallery add`)")
        gallery.extractor = self.digest         # saved again, it carries the weights digest
        return gallery

    def save_gallery(self, gallery: Gallery, path) -> None:
        save_gallery(gallery, path)

    def add(self, gallery: Gallery, name: str, inputs: Iterable,
            progress: Callable[[int], object] | None = None) -> tuple[list[str], list[ImageRecord]]:
        """Add the images of `inputs` to model `name` of `gallery` (in memory); returns the paths
        added and the records of the images that could not be used."""
        added, failed = [], []
        for record, h in self.embed(inputs, gallery.windows, progress):
            if h is None:
                failed.append(ImageRecord(record.path, error=record.error, source=record.source))
                continue
            entry = gallery.models.get(name, {"sum": torch.zeros_like(h), "count": 0})
            gallery.models[name] = {"sum": entry["sum"] + h, "count": entry["count"] + 1}
            added.append(record.path)
        return added, failed

    def gallery_add(self, path, name: str, inputs: Iterable,
                    progress: Callable[[int], object] | None = None) -> GalleryUpdate:
        """Build or extend the gallery file `path` with images of model `name`; the file is written
        (atomically) only when at least one image was added."""
        return self.gallery_add_models(path, {name: inputs}, progress)[0]

    def gallery_add_models(self, path, models: dict[str, Iterable],
                           progress: Callable[[int], object] | None = None) -> list[GalleryUpdate]:
        """`gallery_add` for several models ({name: inputs}, e.g. from `models_in_folders`) in one
        write of the gallery file (only when some image was added); one update per model."""
        gallery = self.load_gallery(path) if Path(path).exists() else self.new_gallery()
        done = {name: self.add(gallery, name, inputs, progress) for name, inputs in models.items()}
        if any(added for added, _ in done.values()):
            self.save_gallery(gallery, path)
        return [GalleryUpdate(name, str(path), gallery.counts().get(name, 0), len(gallery.models), added, failed)
                for name, (added, failed) in done.items()]

    # -- identification and verification -------------------------------------------------------

    def identify_each(self, inputs: Iterable, gallery, threshold: float | None = None, top_k: int = 1,
                      progress: Callable[[int], object] | None = None,
                      ) -> Iterator[tuple[Identification, ImageRecord, torch.Tensor | None]]:
        """`identify`, one image at a time, with the image as read (its pixels) and its unit
        fingerprint (None for an image that could not be used): what a report draws."""
        where = "" if isinstance(gallery, Gallery) else f"{gallery}: "
        gallery = gallery if isinstance(gallery, Gallery) else self.load_gallery(gallery)
        if not gallery.models:
            raise ValueError(f"{where}an empty gallery; add models with `modelfp gallery add`")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {top_k}")
        threshold = self.threshold(threshold, "open-set")
        names, prints = gallery.fingerprints()
        for record, h in self.embed(inputs, gallery.windows, progress):
            if h is None:
                yield Identification(record.path, error=record.error, source=record.source), record, None
                continue
            scores, best = torch.topk(prints @ h, min(top_k, len(names)))
            top = [Candidate(names[int(i)], float(v)) for v, i in zip(scores, best)]
            score = top[0].score
            yield (Identification(record.path, top[0].model if score >= threshold else "unknown", score,
                                  top[0].model, threshold, top=top, source=record.source), record, h)

    def identify(self, inputs: Iterable, gallery, threshold: float | None = None, top_k: int = 1,
                 progress: Callable[[int], object] | None = None) -> list[Identification]:
        """One record per input image, in order: the nearest gallery model by cosine similarity,
        or "unknown" under the threshold (default: the extractor's open-set threshold), and the
        `top_k` best models with their scores. gallery: a Gallery or a path."""
        return [i for i, _, _ in self.identify_each(inputs, gallery, threshold, top_k, progress)]

    def verify_pairs(self, a_inputs: Iterable, b_inputs: Iterable, threshold: float | None = None,
                     progress: Callable[[int], object] | None = None) -> list[Verification]:
        """Every image of `a_inputs` against every image of `b_inputs` (files, folders, patterns),
        in order; an image that cannot be used is one record (its path as `a` or `b`, the other
        empty, `failed` set) instead of its pairs."""
        threshold = self.threshold(threshold)
        sides, failed = [], []
        for which, inputs in (("a", a_inputs), ("b", b_inputs)):
            good = []
            for record, h in self.embed(inputs, self.windows, progress):
                if h is None:
                    bad = ImageRecord(record.path, error=record.error, source=record.source)
                    failed.append(Verification(record.path if which == "a" else "",
                                               record.path if which == "b" else "", threshold=threshold,
                                               failed=[bad]))
                else:
                    good.append((record.path, h))
            sides.append(good)
        pairs = []
        for a, ha in sides[0]:
            for b, hb in sides[1]:
                score = float(ha @ hb)
                pairs.append(Verification(a, b, score >= threshold, score, threshold))
        return failed + pairs

    def verify(self, a, b, threshold: float | None = None) -> Verification:
        """Same model or not: cosine similarity of the two images' fingerprints against the
        threshold (default: the extractor's verification threshold). a and b are image files (a
        folder is an error; `verify_pairs` compares folders)."""
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
