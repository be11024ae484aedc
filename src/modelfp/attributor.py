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

Each record also carries `name` (the image's path relative to the input it was found through, what
a person reads in a report), `folder` (the summary it counts in: the sub-folder of a folder input
it lies in, so a folder of folders is summed up per sub-folder) and `note` ("fingerprint weakened:
JPEG, lossy WebP, palette of at most 256 colours, grayscale, transparent pixels", read from the
file's format, mode and chunks before conversion). Folders are searched for the formats of
`modelfp.pools` and GIF (`TOOL_EXTENSIONS`); an image file of a format the tool does not read
(HEIC, AVIF, ...: `UNREAD`) is a record with its error, not skipped. An
image with alpha is read as the colours it stores, not composited on white (`ALPHA_READING`). A
gallery keeps a digest of each image's decoded pixels per model, so adding an image a model already
holds is skipped and counted: adding the same images again leaves the gallery as it was. An
extractor file may carry specialist networks (`extractor.network_for`, `variants.SPECIALISTS`: the
demo's, trained on JPEG and on grayscale images): a gallery's JPEG, lossy WebP and grayscale copies,
and the queries compared with them, are then embedded by the specialist of their kind (WebP by the
JPEG one); clean images always by the extractor's own network.

"unknown" is decided per model (`modelfp.openset`, `Attributor.acceptance`): a gallery also keeps
each image's fingerprint, whose leave-one-out scores give each model its own threshold (with the
extractor's calibrated constants, shrunk toward its global open-set threshold); an image is named
its nearest model only when it clears that model's threshold and, with a calibrated margin, beats
the second model by it. An extractor calibrated before, or models added before, use the global
threshold (said once); an explicit threshold is one global threshold.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, JpegImagePlugin

from . import checkpoints
from . import extractor as ex
from . import openset
from .perturb import MATCHED, WITH_LUMINANCE, lossy_webp, luminance, matched_condition, resaved
from .pools import IMAGE_EXTENSIONS, BadImageError, has_alpha, list_images, load_image
from .variants import SPECIALISTS

GALLERY_FORMAT = "modelfp.gallery/1"
GALLERY_HINT = "pass a gallery made by `modelfp gallery add`"
WINDOWS = 3                 # sliding windows per side of an image (Table VII)
CHUNK = 32                  # images read and embedded at a time (memory stays flat on big folders)
SAVE_EVERY = 300.0          # seconds between the saves of a long `gallery add` (a killed run resumes)
BAD_IMAGE_FIX = "re-export the image or leave it out"
# what a person does about a damaged extractor file (the workflow's own hints name its rules)
EXTRACTOR_FIX = ("copy or download it again, or re-export a good copy with `modelfp export EXTRACTOR "
                 "OUT_DIR` and pass that folder")
EXTRACTOR_KINDS = ("pass the .pt file of a trained extractor (results/extractors/<variant>/model.pt) "
                   "or the folder written by `modelfp export`")
WORKFLOW_FIXES = (checkpoints.REBUILD, "rerun the rule that trains it")
JPEG_FORMATS = ("JPEG", "MPO")                        # MPO: the multi-picture JPEG of some cameras
GRAY_MODES = ("1", "L", "LA", "La", "I", "F")        # plus "I;16" and kin
PALETTE_MODES = ("P", "PA")                          # colours from a palette of at most 256 (GIF, PNG)
# the image files the tool reads: the pools' formats and GIF (a palette image: answered, with a note)
TOOL_EXTENSIONS = IMAGE_EXTENSIONS + (".gif",)
# image files it finds but does not read, each one error row (what it is; what to do), never skipped
CONVERT = "convert it to PNG to have it read"
LOSSY = f"{CONVERT} (its lossy compression has weakened the fingerprint, as JPEG's does)"
UNREAD = {".heic": ("a HEIC image", LOSSY), ".heif": ("a HEIF image", LOSSY), ".avif": ("an AVIF image", LOSSY),
          ".jxl": ("a JPEG XL image", CONVERT),
          ".svg": ("an SVG drawing", "leave it out: a drawing's pixels are made by the program that renders it")}
# what a folder or pattern is searched for: the images read, and those answered with an error row
FOUND_EXTENSIONS = TOOL_EXTENSIONS + tuple(UNREAD)
ALPHA_READING = "stored"    # an image with alpha: its stored colours, not composited (pools.ALPHA_READINGS)
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Records

@dataclass
class ImageRecord:
    """One input image as read: the uint8 (3,H,W) pixels, or the error; `name`, `folder`, `note`:
    see the module docstring and `expand`."""
    path: str
    image: torch.Tensor | None = None
    error: str | None = None
    source: str | None = None       # the input it was found through (see `expand`)
    name: str | None = None
    folder: str | None = None
    note: str | None = None
    condition: str | None = None    # the re-save it is compared as (`perturb.matched_condition`)


@dataclass
class Candidate:
    """A gallery model and its score (`Gallery.scores`: the cosine of the image with the model's
    fingerprint, or the mean of its highest cosines with the model's images, as the extractor's
    open-set rule scores)."""
    model: str
    score: float


@dataclass
class Identification:
    """The nearest gallery model of one image; `model` is "unknown" when the score is under the
    threshold; `top` holds the best gallery models, best first (`top[0]` is `nearest`). Only
    `path`, `error`, `source`, `name` and `folder` are set when the image could not be used.
    `source`: the input folder or pattern the image was found through (a file named on its own: its
    folder); `name`: its path relative to that input; `folder`: its summary (see `summarize`);
    `note`: "fingerprint weakened: ..." for a JPEG, lossy WebP, grayscale or partly transparent image,
    else None.
    `threshold`: the acceptance threshold of the nearest model (its own, `modelfp.openset`, or the
    global one); `reason`: why the answer is "unknown" (under that threshold, or too close to the
    second model), else None; `compared`: the `perturb.MATCHED` re-save whose gallery copies the
    image was compared with and whose calibrated rule judged it, None for the clean images."""
    path: str
    model: str | None = None
    score: float | None = None
    nearest: str | None = None
    threshold: float | None = None
    error: str | None = None
    top: list[Candidate] = field(default_factory=list)
    source: str | None = None
    name: str | None = None
    folder: str | None = None
    note: str | None = None
    reason: str | None = None
    compared: str | None = None


@dataclass
class FolderSummary:
    """Where the images of one folder went (a sub-folder of a folder input, or an input folder or
    pattern): images per gallery model (most first), "unknown" and could not be used."""
    folder: str
    images: int
    models: dict[str, int]
    unknown: int
    failed: int


@dataclass
class Acceptance:
    """How `identify` answers "unknown" with one gallery: the open-set rule (`modelfp.openset`) and
    each model's acceptance threshold (its own, from its gallery images, or the global one)."""
    rule: openset.OpenSetRule
    thresholds: dict[str, float]

    def decide(self, ranked: list[Candidate]) -> openset.Answer:
        """The answer for an image's gallery models ranked best first (the second for the margin)."""
        second = ranked[1] if len(ranked) > 1 else None
        return openset.decide(self.rule, ranked[0].model, ranked[0].score, self.thresholds[ranked[0].model],
                              second and second.model, second and second.score)

    def describe(self) -> str:
        """One line for the summary: what makes an answer "unknown"."""
        scores = (f"; a score: the mean cosine with the model's {self.rule.neighbours} nearest images"
                  if self.rule.neighbours else "")
        if not self.rule.per_model:
            return f"threshold {self.rule.threshold:.4f}; below it: unknown{scores}"
        low, high = min(self.thresholds.values()), max(self.thresholds.values())
        margin = f", or within {self.rule.margin:g} of the second model" if self.rule.margin > 0 else ""
        return (f"unknown: below the nearest model's own threshold ({low:.4f}-{high:.4f} in this gallery, from "
                f"each model's images; global {self.rule.threshold:.4f}){margin}{scores}")


def summarize(records: Iterable[Identification]) -> list[FolderSummary]:
    """One summary per `folder` of the identification records (their `source` when not set), in the
    order folders first appear: a folder of folders given as input is summed up per sub-folder."""
    groups: dict[str, list[Identification]] = {}
    for r in records:
        groups.setdefault(r.folder or r.source or "", []).append(r)
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
    (then `same` and `score` are None); `note`: "a: fingerprint weakened: JPEG; b: ..." when either
    image is a JPEG, lossy WebP, grayscale or partly transparent, and which side was compared as the
    other's re-save (a clean image against a re-saved one is re-saved the same way first, in memory)."""
    a: str
    b: str
    same: bool | None = None
    score: float | None = None
    threshold: float | None = None
    failed: list[ImageRecord] = field(default_factory=list)
    note: str | None = None

    @property
    def error(self) -> str | None:
        return "; ".join(f"{r.path}: {r.error}" for r in self.failed) or None


@dataclass
class GalleryUpdate:
    """What `gallery_add` did: the model's image count afterwards, the number of models in the
    gallery, the images added, those skipped because the model already held them (same decoded
    pixels), the records of those that could not be used, and the `weakened` note of each added
    image that has one ({path: note}: a JPEG, palette or grayscale gallery image gives its model a
    weaker fingerprint than the images as the generator saved them)."""
    name: str
    path: str
    count: int
    models: int
    added: list[str]
    failed: list[ImageRecord]
    skipped: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class Gallery:
    """Fingerprints of known models: per model the sum and count of its images' unit embeddings,
    made by the extractor whose file has digest `extractor`, each image seen in `windows` x
    `windows` windows, and the `pixel_digest` of each image (galleries made before digests: none,
    so their images are not recognised when added again), and each image's unit fingerprint
    (`prints`, whose leave-one-out scores give the model its own open-set threshold; galleries made
    before: none, so their models use the global threshold), and the same of each image's
    `perturb.MATCHED` re-saves (`matched`: a JPEG, grayscale or lossy WebP query is compared with the copies
    of its own condition; galleries made before: none, and such queries meet the clean images),
    in `views` test-time views (`modelfp.extractor.VIEWS`; galleries made before them: 1); with
    `luminance`, the JPEG copies' fingerprints are those of the pixels and of their luminance side
    by side (`perturb.WITH_LUMINANCE`; galleries made before: the pixels' alone)."""
    extractor: str
    windows: int = WINDOWS
    # name -> {"sum": (dim,), "count": int, "digests": [str], "prints": (n, dim),
    #          "matched": {condition: {"sum": (dim,), "prints": (n, dim)}}}
    models: dict[str, dict] = field(default_factory=dict)
    views: int = 1
    luminance: bool = False

    def _entry(self, name: str, condition: str | None) -> dict:
        entry = self.models[name]
        return entry if condition is None else entry["matched"][condition]

    def matches(self, condition: str | None) -> bool:
        """Whether every model holds the re-saved copies of `condition` of all its images (None,
        the clean images: always)."""
        return condition is None or all(condition in self.copies(name) for name in self.models)

    def compared(self, condition: str | None) -> str | None:
        """What a query re-saved as `condition` is compared with: the gallery's copies re-saved the
        same way where every model holds them (`matches`), else None (the clean images)."""
        return condition if condition in MATCHED and self.matches(condition) else None

    def copies(self, name: str) -> list[str]:
        """The `perturb.MATCHED` re-saves model `name` holds for all its images (none: a model added
        before galleries kept them, or extended since)."""
        entry = self.models[name]
        return [c for c in MATCHED if len(entry.get("matched", {}).get(c, {}).get("prints", ())) == int(entry["count"])]

    def fingerprints(self, condition: str | None = None) -> tuple[list[str], torch.Tensor]:
        """Model names and their unit fingerprints (M, dim): each model's mean direction, of its
        clean images or (`condition`, see `matches`) of their re-saved copies."""
        names = list(self.models)
        return names, F.normalize(torch.stack([self._entry(n, condition)["sum"] for n in names]), dim=1)

    def scores(self, h: torch.Tensor, condition: str | None = None, neighbours: int = 0
               ) -> tuple[list[str], torch.Tensor]:
        """Model names and a query's scores against each (M,), of its unit fingerprint `h` (dim,):
        the cosine with the model's fingerprint (`fingerprints`), or with n = `neighbours` >= 1 the
        mean of its n highest cosines with the model's kept images (`evaluate.gallery_scores`; a
        model added before galleries kept them: its fingerprint's cosine). `scorer` for many."""
        return self.scorer(condition, neighbours)(h)

    def scorer(self, condition: str | None = None, neighbours: int = 0) -> Callable[[torch.Tensor], tuple]:
        """`scores` as a function of the query's fingerprint, the gallery's side prepared once: its
        fingerprints and, with neighbours, every model's kept images padded into one tensor."""
        names, prints = self.fingerprints(condition)
        kept = [self._kept(name, condition) for name in names] if neighbours else []
        own = [i for i, k in enumerate(kept) if k is not None]
        if not own:
            return lambda h: (names, prints.to(h.dtype) @ h)
        longest = max(len(kept[i]) for i in own)
        padded = torch.zeros(len(own), longest, prints.shape[1])
        present = torch.zeros(len(own), longest, dtype=torch.bool)
        for row, i in enumerate(own):
            padded[row, :len(kept[i])], present[row, :len(kept[i])] = kept[i].float(), True
        n = min(neighbours, longest)

        def score(h: torch.Tensor) -> tuple[list[str], torch.Tensor]:
            scores = prints.to(h.dtype) @ h
            sims = (padded.to(h.dtype) @ h).masked_fill(~present, -math.inf)
            top = torch.topk(sims, n, dim=1).values                   # a model of fewer images: -inf fills
            finite = torch.isfinite(top)
            scores[own] = torch.where(finite, top, 0).sum(1) / finite.sum(1)
            return names, scores
        return score

    def _kept(self, name: str, condition: str | None) -> torch.Tensor | None:
        """Model `name`'s kept unit fingerprints (of `condition`'s copies), or None when it does not
        keep one per image (added before galleries kept them)."""
        entry = self.models[name]
        kept = self._entry(name, condition).get("prints") if entry.get("prints") is not None else None
        return kept if kept is not None and len(kept) == int(entry["count"]) else None

    def counts(self) -> dict[str, int]:
        """Images per model, in the order the models were added."""
        return {name: int(entry["count"]) for name, entry in self.models.items()}

    def loo_scores(self, condition: str | None = None, neighbours: int = 0) -> dict[str, np.ndarray]:
        """Per model, its kept gallery images' leave-one-out scores (`openset.loo_scores` with
        `neighbours`; of the re-saved copies of `condition`): empty for a model of one image or one
        added before fingerprints were kept (`without_prints`; with neighbours, also one that keeps
        fewer than all its images', as `scores` then scores it by its fingerprint)."""
        out = {}
        for name, entry in self.models.items():
            part = self._entry(name, condition)
            kept = (self._kept(name, condition) if neighbours
                    else part.get("prints") if entry.get("prints") is not None else None)
            usable = kept is not None and len(kept) and int(entry["count"]) > 1
            out[name] = (openset.loo_scores(kept.float().numpy(), part["sum"].float().numpy(), neighbours)
                         if usable else np.zeros(0))
        return out

    def without_prints(self) -> list[str]:
        """The models added before galleries kept each image's fingerprint."""
        return [name for name, entry in self.models.items() if entry.get("prints") is None]

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
                "views": self.views, "luminance": self.luminance, "models": self.models}


def read_gallery(path) -> Gallery:
    """The gallery in file `path`, whatever extractor made it (`Attributor.load_gallery` also
    checks that), or ValueError naming the file."""
    payload = checkpoints.load(path, GALLERY_FORMAT, "gallery file", hint=GALLERY_HINT)
    try:
        return Gallery(str(payload["extractor"]), int(payload["window"]), dict(payload["models"]),
                       ex.check_views(payload.get("views", 1)), bool(payload.get("luminance", False)))
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


class Found(NamedTuple):
    """One entry of `expand`: an image file (error None) or an input that gives none."""
    path: str
    error: str | None
    source: str         # the input it was found through (a file named on its own: its folder)
    name: str           # its path relative to that input (a file named on its own: as given)
    folder: str         # its summary: the sub-folder of a folder input it lies in, else `source`


def _relative(path: Path, base: Path | None) -> str:
    try:
        return path.relative_to(base).as_posix() if base is not None else path.as_posix()
    except ValueError:
        return path.as_posix()


def _fixed_part(pattern: str) -> Path | None:
    """The folder a glob pattern starts from (its leading parts without * ? [), or None."""
    parts = []
    for part in Path(pattern).parts[:-1]:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else None


def unread(path) -> str | None:
    """Why the tool does not read an image file of a format in `UNREAD` ("what it is, ...; what to
    do"), from its extension; None for any other file."""
    what = UNREAD.get(Path(path).suffix.lower())
    return f"{what[0]}, a format the tool does not read; {what[1]}" if what else None


def _folder_images(folder: Path, source: str, base: Path | None, by_sub: bool) -> Iterator[Found]:
    """The images of `folder`, named relative to `base`, and an error entry per image file of a
    format the tool does not read (`UNREAD`); with `by_sub` each counts in the summary of the
    sub-folder of `folder` it lies in (images directly in `folder`: in `source`'s)."""
    found = list_images(folder, FOUND_EXTENSIONS)
    if not found:
        yield Found(str(folder), (f"a folder with no images ({', '.join(TOOL_EXTENSIONS)}) in it; "
                                  f"check the path"), source, str(folder), source)
    for p in found:
        parts = p.relative_to(folder).parts
        group = str(folder / parts[0]) if by_sub and len(parts) > 1 else source
        yield Found(str(p), unread(p), source, _relative(p, base), group)


def expand(inputs: Iterable) -> Iterator[Found]:
    """A `Found` per image file of `inputs` (error None), or per missing path, folder without images
    or pattern that matches nothing (error set). An input is a file (as given; its source is its
    folder), a folder (its images found recursively, in sorted order, named relative to it; the
    source is the folder, the summary folder the sub-folder an image lies in) or a glob pattern
    (`**` matches folders at any depth; matched folders are read like folders, matched files kept
    when they have an image extension; named relative to the pattern's fixed leading folders; the
    source and summary are the pattern)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from _folder_images(path, str(path), path, by_sub=True)
        elif is_pattern(item):
            pattern, base = str(item), _fixed_part(str(item))
            matches = sorted(glob.glob(pattern, recursive=True))
            n = 0                                   # entries yielded for this pattern
            for match in map(Path, matches):
                if match.is_dir():
                    for found in _folder_images(match, pattern, base, by_sub=False):
                        n += 1
                        yield found
                elif match.name.lower().endswith(FOUND_EXTENSIONS):
                    n += 1
                    yield Found(str(match), unread(match), pattern, _relative(match, base), pattern)
            if not matches:
                yield Found(pattern, "no file or folder matches this pattern; check the pattern", pattern,
                            pattern, pattern)
            elif not n:
                yield Found(pattern, (f"the pattern matches no image ({', '.join(TOOL_EXTENSIONS)}); "
                                      f"check the pattern"), pattern, pattern, pattern)
        else:
            error = unread(path) if path.exists() else "no such file or folder; check the path"
            yield Found(str(path), error, str(path.parent), str(path), str(path.parent))


# Pillow's JpegImagePlugin.get_sampling of a colour JPEG whose chroma is not 4:2:0, the copies' (said in the note)
CHROMA = {0: "4:4:4", 1: "4:2:2"}
# the samplings whose queries are re-encoded as the copies are made before they are compared
# (`read_images`, as_copies): chosen on the validation set (docs/tool-studies.md, "JPEGs re-encoded as
# the copies")
REENCODED = (0, 1)


def weakened(fmt: str | None, mode: str, transparent: bool, lossy: bool = False,
             sampling: int | None = None, reencoded: bool = False) -> str | None:
    """"fingerprint weakened: JPEG, lossy WebP, palette of at most 256 colours, grayscale, transparent
    pixels" (those that apply) from a file's format and mode as Pillow opens it, before any
    conversion: JPEG and lossy WebP compression wipe out much of the high-frequency trace (Figure
    16; `perturb.lossy_webp` tells a lossy WebP from a lossless one), a palette (a GIF, a palette
    PNG) rounds every pixel to one of its colours, grayscale keeps one channel of three, and a fully transparent
    pixel has no colour (it is read as white). Alpha alone weakens nothing: the tool reads the
    colours a file stores under a translucent or opaque alpha (`ALPHA_READING`), the pixels as the
    generator made them (benchmarks/robustness.py: rgba_opaque and rgba_half identify as clean).
    A colour JPEG whose chroma is not subsampled as the gallery's JPEG copies are (`sampling`,
    Pillow's: 4:4:4 or 4:2:2 where the copies are 4:2:0) says so: as it is, it meets them less well
    (on the validation set a 4:4:4 JPEG 90 was named right 2 times in 100; docs/tool-studies.md
    "Lossy WebP, and JPEGs not made like the copies"); `reencoded`: its pixels were re-encoded as the copies are made
    before comparing (`read_images`), and the note says that instead. None when none applies."""
    jpeg = "JPEG" if sampling not in CHROMA else \
        f"JPEG with {CHROMA[sampling]} colour, " + \
        ("re-encoded with 4:2:0 colour, as the tool makes its JPEG copies" if reencoded else
         "unlike the gallery's 4:2:0 copies")
    why = [what for what, applies in (
        (jpeg, fmt in JPEG_FORMATS),
        ("lossy WebP", lossy),
        ("palette of at most 256 colours", mode in PALETTE_MODES),
        ("grayscale", _gray(mode)),
        ("transparent pixels", transparent)) if applies]
    return "fingerprint weakened: " + ", ".join(why) if why else None


def _gray(mode: str) -> bool:
    return mode in GRAY_MODES or mode.startswith("I;")


def _transparent(im: Image.Image) -> bool:
    """Whether some pixel of an image with an alpha channel or a transparency key is fully
    transparent. Decodes the image, but only an image that has alpha at all (most have none)."""
    if not has_alpha(im):
        return False
    return im.convert("RGBA").getchannel("A").getextrema()[0] == 0


class Header(NamedTuple):
    """What `read_images` learns of an image file before decoding it (`_header`)."""
    size: tuple[int, int] | None       # (width, height), upright per its EXIF orientation
    note: str | None                   # its `weakened` note
    condition: str | None              # the re-save it is compared as (`perturb.matched_condition`)
    reencode: bool = False             # a colour JPEG of a chroma in `REENCODED`, read as_copies


def _header(path, as_copies: bool = False) -> Header:
    """An image file's `Header`, from its header without decoding it (None fields when Pillow cannot
    open it: loading it says why). `as_copies`: whether a JPEG whose chroma differs from the
    copies' (`REENCODED`) is to be re-encoded as they are made (its note says so)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # load_image says it, once
            with Image.open(path) as im:
                w, h = im.size
                sideways = im.getexif().get(0x0112) in (5, 6, 7, 8)
                lossy = im.format == "WEBP" and lossy_webp(path)
                sampling = JpegImagePlugin.get_sampling(im) if im.format in JPEG_FORMATS else None
                condition = matched_condition(im.format in JPEG_FORMATS, _gray(im.mode),
                                              getattr(im, "quantization", None), lossy)
                reencode = as_copies and sampling in REENCODED and condition is not None
                note = weakened(im.format, im.mode, _transparent(im), lossy, sampling, reencode)
    except Exception:  # noqa: BLE001 - load_image names what is wrong with the file
        return Header(None, None, None)
    return Header((h, w) if sideways else (w, h), note, condition, reencode)


def _too_small(path, w: int, h: int, min_size: int, found: Found) -> ImageRecord:
    record = _error(path, f"{w}x{h} pixels, smaller than the extractor's {min_size}x{min_size} window",
                    f"use images of at least {min_size}x{min_size} pixels (small images are not "
                    f"upscaled: that would change their fingerprint)", found.source)
    record.name, record.folder = found.name, found.folder
    return record


def read_images(inputs: Iterable, min_size: int, as_copies: bool = False) -> Iterator[ImageRecord]:
    """One record per image of `inputs` (see `expand`), in order: its pixels at their own size,
    or the error, and its `note` (`weakened`). Images smaller than `min_size` (the extractor's
    window) on a side are refused, not upscaled: resizing would rewrite the high-frequency traces
    the fingerprint is made of. They are refused from their header, before decoding (a 1x1 image
    decoded would also make PyTorch warn about a read-only array).

    `as_copies` (queries: identify, verify): a colour JPEG whose chroma is not subsampled as the
    gallery's JPEG copies are (`REENCODED`: 4:4:4 and 4:2:2) is read as the pixels of its re-save as
    those copies are made (`perturb.resaved` at its matched quality, Pillow's 4:2:0), so that like
    meets like (validation, JPEG 90: named right 54 times in 100 re-encoded against 2 as it is for
    4:4:4, 51 against 5 for 4:2:2; docs/tool-studies.md "JPEGs re-encoded as the copies"). Gallery images are read
    as they are."""
    for found in expand(inputs):
        path, where = found.path, {"source": found.source, "name": found.name, "folder": found.folder}
        if found.error:
            yield ImageRecord(path, error=found.error, **where)
            continue
        size, note, condition, reencode = _header(path, as_copies)
        if size is not None and min(size) < min_size:
            yield _too_small(path, *size, min_size, found)
            continue
        try:
            image = load_image(path, None, alpha=ALPHA_READING)
        except BadImageError as err:
            record = _error(path, err.problem, source=found.source)
            record.name, record.folder = found.name, found.folder
            yield record
            continue
        h, w = image.shape[-2:]
        if h < min_size or w < min_size:
            yield _too_small(path, w, h, min_size, found)
        else:
            yield ImageRecord(path, resaved(image, condition) if reencode else image, note=note, condition=condition,
                              **where)


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
                 and p.name.lower().endswith(FOUND_EXTENSIONS)]
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


def pixel_digest(image: torch.Tensor) -> str:
    """What makes two gallery images the same: a digest of the decoded pixels and their shape. Not
    of the file's bytes: the fingerprint is made of the pixels, so a copy saved again (other PNG
    compression, other metadata, another lossless format) would add the same fingerprint twice."""
    digest = hashlib.sha256(f"{tuple(image.shape)} {image.dtype}".encode())
    digest.update(image.contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# The attributor

def load_extractor(path, device="cpu") -> ex.Extractor:
    """`extractor.load`, with errors that say what a person does about a bad file (re-copy it,
    re-export it), not what the workflow does (rerun the rule that made it)."""
    try:
        return ex.load(path, device)
    except ValueError as err:
        text = str(err)
        for fix in WORKFLOW_FIXES:
            text = text.replace(fix, EXTRACTOR_FIX)
        if "; " not in text:
            text += f"; {EXTRACTOR_KINDS}"
        if text == str(err):
            raise
        raise ValueError(text) from err


def weights_digest(model: ex.Extractor) -> str:
    """What ties a gallery to its extractor: a digest of everything that makes the fingerprints (the
    config, every weight and buffer, the denoiser's, the centre; the same of each specialist network,
    which embeds the gallery's copies of its re-saves, and which re-saves those are) and of nothing
    else, so the .pt file, its exported form and a recalibrated copy (other thresholds) share
    galleries, and a file with other specialists (or none), or a modelfp whose specialists embed
    other re-saves (`variants.SPECIALISTS`), does not."""
    digest = hashlib.sha256(repr(sorted(vars(model.cfg).items())).encode())
    specialists = sorted(ex.specialists_of(model).items())
    for kind, network in specialists:                                   # and the re-saves each embeds
        digest.update(f"specialist {kind} {SPECIALISTS[kind]} {sorted(vars(network.cfg).items())}".encode())
    networks = [("", model), *((f"specialist.{k}.", m) for k, m in specialists)]
    tensors = {prefix + key: t for prefix, network in networks
               for key, t in {**network.state_dict(), "centre": network.centre}.items()}
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
    `verify` (a gallery keeps the count it was made with); views: test-time views of new galleries
    and `verify` (default: those the extractor's thresholds were calibrated with, its `views`; a
    gallery keeps its own).
    """

    def __init__(self, extractor, device="cpu", windows: int = WINDOWS, views: int | None = None):
        self.path = str(extractor)
        self.model = load_extractor(extractor, device)
        self.digest = weights_digest(self.model)
        self.windows = windows
        self.views = ex.check_views(views or getattr(self.model, "views", 1))
        self._said: set[str] = set()

    def _say_once(self, message: str) -> None:
        """A note for the person (logged at INFO: the command line shows it, once per message)."""
        if message not in self._said:
            self._said.add(message)
            log.info("%s", message)

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

    def threshold(self, threshold: float | None = None, kind: str = "verification", condition: str | None = None
                  ) -> float:
        """`threshold` when given, else the extractor's calibrated one of `kind`: "verification"
        (verify: same model at or above it; for a pair compared as re-saved as `condition`, the one
        calibrated for that re-save where the file has it) or "open-set" (identify: "unknown" below it)."""
        if threshold is not None:
            return float(threshold)
        resaved = self._resaved(condition) if kind == "verification" else None
        if resaved is not None:
            return float(resaved["verification_threshold"])
        stored = self.model.threshold if kind == "verification" else self.model.openset_threshold
        if stored is None:
            raise ValueError(f"{self.path} holds no {kind} threshold (an uncalibrated file, or calibrated "
                             f"before {kind} thresholds were stored); pass a threshold (--threshold) or "
                             f"use results/extractors/<variant>/model.pt")
        return float(stored)

    def open_set_rule(self, threshold: float | None = None, condition: str | None = None) -> openset.OpenSetRule:
        """identify's rule for "unknown": `threshold` alone when given (one global threshold, on the
        scores the file's rule scores by: `neighbours`), else the extractor's calibrated per-model
        rule (`modelfp.openset`) around its open-set threshold;
        for a query compared with the gallery's copies re-saved as `condition`, the rule calibrated
        on the validation set's copies re-saved so (`modelfp.resaved`), where the file has one
        (extractors calibrated before: the clean images' rule, said once). An extractor calibrated
        before per-model rules gives the global threshold (said once)."""
        if threshold is not None:
            return openset.OpenSetRule(float(threshold), neighbours=self.neighbours)
        global_threshold = self.threshold(None, "open-set")
        constants = getattr(self.model, "openset_rule", None)
        if constants is None:
            self._say_once(f"{self.path}: calibrated before per-model open-set thresholds; every model uses the "
                           f"global threshold {global_threshold:.4f} (a newly calibrated extractor has them)")
            return openset.OpenSetRule.global_only(global_threshold)
        resaved = self._resaved(condition)
        if resaved is not None:
            return openset.OpenSetRule.from_constants(resaved["openset"], resaved["openset"]["threshold"])
        return openset.OpenSetRule.from_constants(constants, global_threshold)

    @property
    def neighbours(self) -> int:
        """How identify scores an image against a gallery model (`Gallery.scores`): the calibrated
        rule's count of nearest gallery images, 0 (the model's fingerprint) for a file without one."""
        return int((getattr(self.model, "openset_rule", None) or {}).get("neighbours", 0))

    def _resaved(self, condition: str | None) -> dict | None:
        """The thresholds calibrated for images re-saved as `condition` (`modelfp.resaved`), or None:
        a clean image, or a file calibrated before re-saves had their own (said once)."""
        if condition is None:
            return None
        resaved = (getattr(self.model, "resaved", None) or {}).get(condition)
        if resaved is None:
            what = ("re-saved images" if not getattr(self.model, "resaved", None) else
                    f"{in_words(condition)} images")
            self._say_once(f"{self.path}: calibrated before {what} had thresholds of their own; such images are "
                           f"judged by the clean images' thresholds, which name many re-saved images of models not "
                           f"in the gallery and call many pairs of two models' re-saved images the same model (an "
                           f"extractor calibrated since has thresholds for each re-save)")
        return resaved

    def acceptance(self, gallery: Gallery, threshold: float | None = None, where: str = "the gallery",
                   condition: str | None = None) -> Acceptance:
        """Each model's acceptance threshold in `gallery` under `open_set_rule(threshold)`, from its
        images or (`condition`) their re-saved copies; models added before galleries kept
        fingerprints use the global threshold (said once)."""
        rule = self.open_set_rule(threshold, condition)
        thresholds = {name: rule.model_threshold(scores)
                      for name, scores in gallery.loo_scores(condition, rule.neighbours).items()}
        old = gallery.without_prints()
        if rule.per_model and old:
            self._say_once(f"{where}: {', '.join(old)} added before galleries kept each image's fingerprint: "
                           f"the global threshold {rule.threshold:.4f} decides their unknowns; for their own, "
                           f"`modelfp gallery remove` them and add their images again")
        return Acceptance(rule, thresholds)

    def count(self, inputs: Iterable) -> int:
        """How many records `inputs` make (images and errors): the total of a progress bar."""
        return sum(1 for _ in expand(inputs))

    def embed(self, inputs: Iterable, windows: int | None = None,
              progress: Callable[[int], object] | None = None,
              views: int | None = None) -> Iterator[tuple[ImageRecord, torch.Tensor | None]]:
        """(record, unit fingerprint (dim,) or None when the record has an error) per input image,
        read as a query (`read_images`, as_copies); progress(n) after each chunk of n records (e.g.
        a tqdm bar's update)."""
        windows, views = windows or self.windows, views or self.views
        for chunk in _chunks(read_images(inputs, self.min_size, as_copies=True), CHUNK):
            good = [r for r in chunk if r.error is None]
            rows = iter(self._fingerprints([r.image for r in good], windows, views) if good else ())
            for record in chunk:
                yield record, (next(rows) if record.error is None else None)
            if progress:
                progress(len(chunk))

    def _fingerprints(self, images: list[torch.Tensor], windows: int, views: int | None = None,
                      condition: str | None = None) -> torch.Tensor:
        """Unit fingerprints (N, dim) of uint8 (3,H,W) images (dim: the network's times `views`), by
        the network of `condition` (`extractor.network_for`: a specialist for its re-saves, else the
        extractor's own)."""
        network = ex.network_for(self.model, condition)
        return F.normalize(ex.embed(network, images, windows, views=views or self.views), dim=1)

    def _joined(self, prints: torch.Tensor, images: list[torch.Tensor], windows: int, views: int,
                condition: str | None = None) -> torch.Tensor:
        """Unit fingerprints `prints` of `images` joined with their luminance's (`perturb.luminance`,
        by the same network: `condition`'s) side by side: how a JPEG is compared (`perturb.WITH_LUMINANCE`)."""
        lum = self._fingerprints([luminance(im) for im in images], windows, views, condition)
        return F.normalize(torch.cat([prints, lum], 1), dim=1)

    def _recomputed(self, condition: str | None, join: bool = True) -> bool:
        """Whether an image compared as `condition` is compared on another fingerprint than its own
        network's: one by a specialist, or (with `join`) one joined with its luminance's."""
        return condition is not None and (ex.network_for(self.model, condition) is not self.model
                                          or (join and condition in WITH_LUMINANCE))

    def _as_compared(self, images: list[torch.Tensor], condition: str | None, windows: int, views: int,
                     prints: torch.Tensor | None = None, join: bool = True) -> torch.Tensor:
        """The unit fingerprints (N, ...) that `images` re-saved as `condition` are compared on: by
        `condition`'s network (`_fingerprints`; `prints`, their own network's, reused when that is
        it), and (with `join`) for a `perturb.WITH_LUMINANCE` re-save joined with their
        luminance's (`_joined`). A gallery's copies and a query of that condition alike."""
        if prints is None or ex.network_for(self.model, condition) is not self.model:
            prints = self._fingerprints(images, windows, views, condition)
        if join and condition in WITH_LUMINANCE:
            prints = self._joined(prints, images, windows, views, condition)
        return prints

    def _compared(self, embedded: Iterable, condition_of: Callable[[ImageRecord], str | None], windows: int,
                  views: int, join: bool = True) -> Iterator[tuple]:
        """(record, unit fingerprint, the fingerprint it is compared with) per item of `embedded`
        (`embed`'s, in `windows` and `views`): for a record compared as a re-save (`condition_of`:
        identify, the gallery's copies it meets; verify, its own condition) whose fingerprint there
        is another (`_recomputed`), that one from the pixels `embed` read (`_as_compared`, a chunk
        and a condition at a time), else the fingerprint itself."""
        for chunk in _chunks(embedded, CHUNK):
            wanted: dict[str, list[int]] = {}
            for i, (record, h) in enumerate(chunk):
                condition = condition_of(record) if h is not None else None
                if self._recomputed(condition, join):
                    wanted.setdefault(condition, []).append(i)
            compared = {}
            for condition, rows in wanted.items():
                compared.update(zip(rows, self._as_compared([chunk[i][0].image for i in rows], condition, windows,
                                                            views, torch.stack([chunk[i][1] for i in rows]),
                                                            join)))
            for i, (record, h) in enumerate(chunk):
                yield record, h, compared.get(i, h)

    # -- galleries ------------------------------------------------------------------------------

    def new_gallery(self) -> Gallery:
        return Gallery(self.digest, self.windows, views=self.views, luminance=True)

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

    def add(self, gallery: Gallery, name: str, inputs: Iterable, progress: Callable[[int], object] | None = None,
            grown: Callable[[], object] | None = None) -> tuple[list[str], list[str], list[ImageRecord], dict[str, str]]:
        """Add the images of `inputs` to model `name` of `gallery` (in memory, `CHUNK` images at a
        time; `grown` is called after each chunk that added some, the gallery whole); returns the
        paths added, the paths skipped because the model already holds their pixels (`pixel_digest`;
        also a second copy within `inputs`), the records of the images that could not be used, and
        the `weakened` notes of the added images that have one ({path: note}). Skipped images are
        not embedded."""
        added, skipped, failed, notes = [], [], [], {}
        held = set(gallery.models.get(name, {}).get("digests", ()))
        for chunk in _chunks(read_images(inputs, self.min_size), CHUNK):
            new = []
            for record in chunk:
                if record.error is not None:
                    failed.append(ImageRecord(record.path, error=record.error, source=record.source,
                                              name=record.name, folder=record.folder))
                    continue
                digest = pixel_digest(record.image)
                if digest in held:
                    skipped.append(record.path)
                else:
                    held.add(digest)
                    new.append((record.path, digest, record.image))
                    if record.note:
                        notes[record.path] = record.note
            if new:
                images = [image for _, _, image in new]
                prints = self._fingerprints(images, gallery.windows, gallery.views)
                entry = gallery.models.get(name) or {"sum": torch.zeros_like(prints[0]), "count": 0}
                # each image's fingerprint, for the model's own open-set threshold (a model added before
                # they were kept starts keeping them now: its leave-one-out scores stay exact)
                kept = entry.get("prints", prints[:0].detach().cpu())
                gallery.models[name] = {"sum": entry["sum"] + prints.sum(0), "count": entry["count"] + len(new),
                                        "digests": [*entry.get("digests", ()), *(d for _, d, _ in new)],
                                        "prints": torch.cat([kept, prints.detach().cpu()]),
                                        "matched": self._matched(entry, images, gallery)}
                added += [path for path, _, _ in new]
                if grown:
                    grown()
            if progress:
                progress(len(chunk))
        return added, skipped, failed, notes

    def _matched(self, entry: dict, images: list[torch.Tensor], gallery: Gallery) -> dict:
        """A gallery entry's `matched` part extended by new images: per `perturb.MATCHED` re-save,
        the sum and the unit fingerprints of their re-saved copies (`perturb.resaved`)."""
        out = {}
        for condition in MATCHED:
            copies = [resaved(image, condition) for image in images]
            prints = self._as_compared(copies, condition, gallery.windows, gallery.views,
                                       join=gallery.luminance).detach().cpu()
            held = entry.get("matched", {}).get(condition, {"sum": torch.zeros_like(prints[0]), "prints": prints[:0]})
            out[condition] = {"sum": held["sum"] + prints.sum(0), "prints": torch.cat([held["prints"], prints])}
        return out

    def gallery_add(self, path, name: str, inputs: Iterable,
                    progress: Callable[[int], object] | None = None) -> GalleryUpdate:
        """Build or extend the gallery file `path` with images of model `name`; the file is written
        (atomically) only when at least one image was added."""
        return self.gallery_add_models(path, {name: inputs}, progress)[0]

    def gallery_add_models(self, path, models: dict[str, Iterable], progress: Callable[[int], object] | None = None,
                           save_every: float = SAVE_EVERY) -> list[GalleryUpdate]:
        """`gallery_add` for several models ({name: inputs}, e.g. from `models_in_folders`); one
        update per model. The gallery file is written (atomically) only when some image was added
        (adding images a model already holds leaves the file as it was): at the end, and during a
        long run every `save_every` seconds after a chunk that added images, and when interrupted
        (KeyboardInterrupt, raised again after the save). A killed run so loses at most the images
        of its last `save_every` seconds, and the same call again skips the images the gallery
        already holds: it resumes."""
        gallery = self.load_gallery(path) if Path(path).exists() else self.new_gallery()
        unsaved, last = False, time.monotonic()

        def grown() -> None:                    # after a chunk that added images
            nonlocal unsaved, last
            unsaved = True
            if time.monotonic() - last >= save_every:
                self.save_gallery(gallery, path)
                unsaved, last = False, time.monotonic()

        try:
            done = {name: self.add(gallery, name, inputs, progress, grown) for name, inputs in models.items()}
        except KeyboardInterrupt:
            if unsaved:
                self.save_gallery(gallery, path)
            raise
        if unsaved:
            self.save_gallery(gallery, path)
        return [GalleryUpdate(name, str(path), gallery.counts().get(name, 0), len(gallery.models), added, failed,
                              skipped, notes) for name, (added, skipped, failed, notes) in done.items()]

    # -- identification and verification -------------------------------------------------------

    def identify_each(self, inputs: Iterable, gallery, threshold: float | None = None, top_k: int = 1,
                      progress: Callable[[int], object] | None = None, embedded: Iterable | None = None,
                      ) -> Iterator[tuple[Identification, ImageRecord, torch.Tensor | None]]:
        """`identify`, one image at a time, with the image as read (its pixels) and its unit
        fingerprint (None for an image that could not be used): what a report draws. `embedded`:
        the images already embedded, `embed`'s (record, fingerprint) pairs in the gallery's windows
        and views, instead of reading `inputs` (one embedding answered against several galleries or
        rules)."""
        where = "" if isinstance(gallery, Gallery) else f"{gallery}: "
        gallery = gallery if isinstance(gallery, Gallery) else self.load_gallery(gallery)
        if not gallery.models:
            raise ValueError(f"{where}an empty gallery; add models with `modelfp gallery add`")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {top_k}")
        place = where.removesuffix(": ") or "the gallery"
        compared: dict[str | None, tuple] = {}      # condition -> (its acceptance, its scorer)
        if gallery.views != self.views:
            self._say_once(f"{place}: made with {gallery.views} test-time view(s), and {self.path}'s thresholds "
                           f"were calibrated with {self.views}: its answers keep the gallery's; for the "
                           f"calibrated ones make the gallery again (`modelfp gallery add`)")
        if embedded is None:
            embedded = self.embed(inputs, gallery.windows, progress, gallery.views)
        for record, h, compared_h in self._compared(embedded, lambda r: gallery.compared(r.condition),
                                                    gallery.windows, gallery.views, gallery.luminance):
            found = {"source": record.source, "name": record.name, "folder": record.folder}
            if h is None:
                yield Identification(record.path, error=record.error, **found), record, None
                continue
            condition = gallery.compared(record.condition)
            if condition not in compared:
                acceptance = self.acceptance(gallery, threshold, place, condition)
                compared[condition] = acceptance, gallery.scorer(condition, acceptance.rule.neighbours)
            acceptance, scorer = compared[condition]
            names, scored = scorer(compared_h)
            scores, best = torch.topk(scored, min(max(top_k, 2), len(names)))   # the second: the margin
            ranked = [Candidate(names[int(i)], float(v)) for v, i in zip(scores, best)]
            answer = acceptance.decide(ranked)
            top = ranked[:top_k]
            yield (Identification(record.path, top[0].model if answer.accepted else "unknown", top[0].score,
                                  top[0].model, answer.threshold, top=top,
                                  note=_compared_note(record.note, record.condition, condition), reason=answer.reason,
                                  compared=condition, **found), record, h)

    def identify(self, inputs: Iterable, gallery, threshold: float | None = None, top_k: int = 1,
                 progress: Callable[[int], object] | None = None, embedded: Iterable | None = None
                 ) -> list[Identification]:
        """One record per input image, in order: the nearest gallery model by its score (`Gallery.scores`, as the
        open-set rule scores: with the calibrated rule, the mean cosine with the model's 2 nearest images), or
        "unknown" when the image fails that model's acceptance (`acceptance`: under the model's own
        threshold, or within the margin of the second model; with `threshold` given: under it), the
        reason, and the `top_k` best models with their scores. gallery: a Gallery or a path;
        `embedded`: see `identify_each`."""
        return [i for i, _, _ in self.identify_each(inputs, gallery, threshold, top_k, progress, embedded)]

    def verify_pairs(self, a_inputs: Iterable, b_inputs: Iterable, threshold: float | None = None,
                     progress: Callable[[int], object] | None = None) -> list[Verification]:
        """Every image of `a_inputs` against every image of `b_inputs` (files, folders, patterns),
        in order; an image that cannot be used is one record (its path as `a` or `b`, the other
        empty, `failed` set) instead of its pairs. Each pair is judged by `threshold` when given,
        else by the calibrated verification threshold of what it is compared as (`_matched_pair`:
        clean, or a re-save's own)."""
        given, threshold = threshold, self.threshold(threshold)
        sides, failed = [], []
        matched = {}      # (path, condition) -> fingerprint of the image's re-save; (path, "compared"): `_keep_compared`
        for which, inputs in (("a", a_inputs), ("b", b_inputs)):
            good = []
            for record, h in self._keep_compared(self.embed(inputs, self.windows, progress), matched):
                if h is None:
                    bad = ImageRecord(record.path, error=record.error, source=record.source)
                    failed.append(Verification(record.path if which == "a" else "",
                                               record.path if which == "b" else "", threshold=threshold,
                                               failed=[bad]))
                else:
                    good.append((record.path, h, record.note, record.condition))
            sides.append(good)
        pairs = []
        for a, ha, note_a, cond_a in sides[0]:
            for b, hb, note_b, cond_b in sides[1]:
                ha2, hb2, said, condition = self._matched_pair((a, ha, cond_a), (b, hb, cond_b), matched)
                score = float(ha2 @ hb2)
                t = self.threshold(given, "verification", condition)
                pairs.append(Verification(a, b, score >= t, score, t, note=_pair_note(note_a, note_b, said)))
        return failed + pairs

    def _matched_pair(self, a: tuple, b: tuple, cache: dict
                      ) -> tuple[torch.Tensor, torch.Tensor, str | None, str | None]:
        """Two images' fingerprints for `verify`, like compared with like: when one is a JPEG or
        grayscale (its `perturb.matched_condition`) and the other is not, the other's fingerprint is
        that of its re-save in the same condition (`perturb.resaved`); both then as that condition is
        compared (`_as_compared`: by its specialist network where the extractor carries one, a JPEG
        joined with its luminance's, as a gallery's copies), also when both are re-saved alike (a
        re-saved side's from `cache`, kept there by `_keep_compared`); the clean side's re-save cached per
        path and condition. Returns the two fingerprints, the side re-saved (for the note) and the
        condition the pair is compared in (None: clean, or two re-saves that differ: both by the
        extractor's own network), whose verification threshold judges it."""
        (path_a, ha, cond_a), (path_b, hb, cond_b) = a, b
        if cond_a is None and cond_b is None:
            return ha, hb, None, None
        if cond_a is not None and cond_b is not None:
            if cond_a != cond_b:
                return ha, hb, None, None
            return cache.get((path_a, "compared"), ha), cache.get((path_b, "compared"), hb), None, cond_a
        side, path, condition = ("a", path_a, cond_b) if cond_a is None else ("b", path_b, cond_a)
        if (path, condition) not in cache:
            copy = resaved(load_image(path, None, alpha=ALPHA_READING), condition)
            cache[path, condition] = self._as_compared([copy], condition, self.windows, self.views)[0]
        h = cache[path, condition]
        said = f"{side} compared as its {in_words(condition)} re-save"
        other_path, other_h = (path_b, hb) if side == "a" else (path_a, ha)
        other_h = cache.get((other_path, "compared"), other_h)     # the re-saved side, as its condition is compared
        return ((h, other_h) if side == "a" else (other_h, h)) + (said, condition)

    def _keep_compared(self, embedded: Iterable, cache: dict) -> Iterator[tuple[ImageRecord, torch.Tensor | None]]:
        """`embedded` (`embed`'s pairs) as they are, keeping in `cache` under (path, "compared") the
        fingerprint each re-saved image is compared on in its own condition where it is another
        (`_compared`: by a specialist, joined with its luminance's; from the pixels `embed` read),
        for `_matched_pair`."""
        for record, h, compared in self._compared(embedded, lambda r: r.condition, self.windows, self.views):
            if compared is not h:
                cache.setdefault((record.path, "compared"), compared)
            yield record, h

    def verify(self, a, b, threshold: float | None = None) -> Verification:
        """Same model or not: cosine similarity of the two images' fingerprints against the
        threshold (default: the extractor's calibrated verification threshold of what the pair is
        compared as: clean, or a re-save's own). a and b are image files (a folder is an error;
        `verify_pairs` compares folders)."""
        given, threshold = threshold, self.threshold(threshold)
        pairs, cache = [], {}
        for item in (a, b):
            if Path(item).is_dir():
                pairs.append((_error(item, "a folder", "verify compares two image files; name one"), None))
            else:
                pairs += list(self._keep_compared(self.embed([item], self.windows), cache))
        failed = [record for record, h in pairs if h is None]
        if failed:
            return Verification(str(a), str(b), threshold=threshold,
                                failed=[ImageRecord(r.path, error=r.error) for r in failed])
        (ra, ha), (rb, hb) = pairs
        ha, hb, said, condition = self._matched_pair((ra.path, ha, ra.condition), (rb.path, hb, rb.condition), cache)
        score = float(ha @ hb)
        threshold = self.threshold(given, "verification", condition)
        return Verification(str(a), str(b), score >= threshold, score, threshold,
                            note=_pair_note(ra.note, rb.note, said))


def in_words(condition: str) -> str:
    """A `perturb.MATCHED` re-save as a person says it: "JPEG 90", "grayscale", "lossy WebP"."""
    if condition.startswith("jpeg"):
        return condition.replace("jpeg", "JPEG ")
    return {"gray": "grayscale", "webp": "lossy WebP"}[condition]


def _compared_note(note: str | None, wanted: str | None, used: str | None) -> str | None:
    """An identified image's note: its `weakened` note, and which gallery copies it met: "compared
    with the gallery's JPEG 90 copies", or, a gallery made before copies were kept, that it met
    the clean images (make the gallery again to compare like with like)."""
    if wanted is None:
        return note
    what = in_words(wanted)
    said = (f"compared with the gallery's {what} copies" if used == wanted else
            f"compared with clean gallery images: the gallery keeps no {what} copies (made before they were "
            f"kept; add its images to a new gallery)")
    return f"{note}; {said}" if note else said


def _pair_note(note_a: str | None, note_b: str | None, matched: str | None = None) -> str | None:
    """The notes of a verified pair, each named by its side ("a: fingerprint weakened: JPEG; b: ..."),
    then which side was compared as a re-save (`Attributor._matched_pair`)."""
    return "; ".join([*(f"{side}: {note}" for side, note in (("a", note_a), ("b", note_b)) if note),
                      *([matched] if matched else [])]) or None
