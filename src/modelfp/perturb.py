"""Image perturbations of Appendix B (Figure 16): JPEG compression and crop-and-resize; and the
re-saves people make (issue 25).

As the paper, with albumentations: `ImageCompression` at a fixed quality, and
`RandomResizedCrop` that crops a patch of a fixed area fraction (aspect ratio 3/4 to 4/3) and
resizes it back to the image's own size. Every level of a sweep is its own image folder, so the
attribution stage treats a perturbed test model like any other image set.

The re-saves (`RESAVES`, `resave`) are files, not arrays: a JPEG at a quality, a grayscale PNG, an
RGBA PNG with opaque or partial alpha, written by Pillow with its defaults as a person's tools
write them, so whoever reads them back (the people's tool, benchmarks/robustness.py) meets what
it meets on a person's disk, its "fingerprint weakened" note included. `grayscale` is what a
grayscale re-save reads back as (tests/test_perturb.py), and what the immunized training
(modelfp.extractor.augment) makes, so that training sees what the tool reads.

Matched re-saves (issue 25): a JPEG or grayscale copy of an image keeps a fingerprint, but not the
clean image's: compared with a gallery of clean images it is lost (validation: 18 % identified at
JPEG 95), compared with the same gallery re-saved the same way it is mostly kept (75 %). So a
gallery keeps the fingerprints of each image's `MATCHED` re-saves (`resaved`: the pixels the tool
reads back from such a file, made in memory), and a query is compared with the copies of its own
condition (`matched_condition`: grayscale, or the JPEG quality nearest to the one its quantisation
table was made with, `jpeg_quality`). A JPEG query and the JPEG copies are compared on two
fingerprints side by side, the pixels' and their luminance's (`WITH_LUMINANCE`, `luminance`):
JPEG keeps the luminance better than the colour (validation, 8 test-time views: 65.9 % of JPEG 95
queries identified without it, 71.3 % with it, McNemar p 2e-6). A lossy WebP (`lossy_webp`, read
from its chunks) is compared with the gallery's WebP copies, made at Pillow's default quality, the
same way (a WebP file does not say its quality). An extractor file may carry specialist networks
trained on images re-saved so (`variants.SPECIALISTS`): a JPEG, lossy WebP or grayscale query and the
gallery's copies of its condition are then embedded by the specialist (validation, nearest model right: JPEG 95
73.4 -> 77.5 %, grayscale 73.1 -> 84.8 %; docs/tool-studies.md).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from .pools import _to_rgb_array, list_images, load_image

if TYPE_CHECKING:
    import albumentations as A

KINDS = ("jpeg", "crop")


def transform(kind: str, level: float, height: int, width: int, seed: int) -> A.Compose:
    """The perturbation at one level: JPEG quality (1-100) or crop area fraction (0-1]."""
    import albumentations as A      # here, not above: the people's tool imports this module for its re-saves
    if kind == "jpeg":
        if not 1 <= level <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, not {level}")
        op = A.ImageCompression(quality_range=(int(level), int(level)), p=1.0)
    elif kind == "crop":
        if not 0 < level <= 1:
            raise ValueError(f"crop scale must be in (0, 1], not {level}")
        op = A.RandomResizedCrop(size=(height, width), scale=(level, level), p=1.0)
    else:
        raise ValueError(f"unknown perturbation {kind!r}; known: {KINDS}")
    return A.Compose([op], seed=seed)


def perturb(image: np.ndarray, kind: str, level: float, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same shape, perturbed; the same seed gives the same result."""
    h, w = image.shape[:2]
    return transform(kind, level, h, w, seed)(image=image)["image"]


def perturb_folder(src, dst, kind: str, level: float, seed: int) -> int:
    """Perturb every image of `src` (image i with seed + i) into PNGs under `dst`, each under its
    own relative path with the suffix .png (so a perturbed copy falls on its original's side of
    `modelfp.splits`); returns the count."""
    src, dst = Path(src), Path(dst)
    paths = list_images(src)
    outs = [dst / Path(p).relative_to(src).with_suffix(".png") for p in paths]
    clash = {o for o in outs if outs.count(o) > 1}
    if clash:
        raise ValueError(f"{src}: several images would be written as {sorted(map(str, clash))[0]} "
                         f"(same name, other suffix); rename one of them")
    for i, (path, out) in enumerate(zip(paths, outs)):
        out.parent.mkdir(parents=True, exist_ok=True)
        image = load_image(path, None).permute(1, 2, 0).numpy()
        Image.fromarray(perturb(image, kind, level, seed + i)).save(out)
    return len(paths)


# ---------------------------------------------------------------------------------------------
# The re-saves people make (issue 25)

def grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> its luminance in all 3 channels: exactly what `load_image` reads from the
    grayscale file a person makes of it (Pillow's "L", ITU-R 601-2: L = R 299/1000 + G 587/1000 +
    B 114/1000, replicated back to RGB), so a network taught on it sees what the tool reads."""
    return np.repeat(np.asarray(Image.fromarray(image).convert("L"))[:, :, None], 3, axis=2)


def with_alpha(alpha: int) -> Callable[[np.ndarray], Image.Image]:
    """(H, W, 3) uint8 -> an RGBA image of those colours with `alpha` (0-255) everywhere."""
    def convert(image: np.ndarray) -> Image.Image:
        return Image.fromarray(np.dstack([image, np.full(image.shape[:2], alpha, np.uint8)]))
    return convert


@dataclass(frozen=True)
class Resave:
    """One re-save: the Pillow image made of the pixels, and the suffix and save options of its file."""
    convert: Callable[[np.ndarray], Image.Image]
    suffix: str = ".png"
    options: dict = field(default_factory=dict)


RESAVES = {
    "clean": Resave(Image.fromarray),                                 # the same pixels, lossless
    "jpeg95": Resave(Image.fromarray, ".jpg", {"quality": 95}),       # Pillow's default 4:2:0 chroma
    "jpeg90": Resave(Image.fromarray, ".jpg", {"quality": 90}),
    "jpeg85": Resave(Image.fromarray, ".jpg", {"quality": 85}),
    "jpeg75": Resave(Image.fromarray, ".jpg", {"quality": 75}),     # Pillow's default quality
    # JPEGs the gallery keeps no copies of: full-resolution chroma (4:4:4, as some editors save at
    # high quality), chroma halved across only (4:2:2, as some cameras save) and a quality between
    # two of the copies'; and lossy WebP (Pillow's default quality 80), what much of the web serves
    "jpeg90_444": Resave(Image.fromarray, ".jpg", {"quality": 90, "subsampling": 0}),
    "jpeg90_422": Resave(Image.fromarray, ".jpg", {"quality": 90, "subsampling": 1}),
    "jpeg92": Resave(Image.fromarray, ".jpg", {"quality": 92}),
    "webp": Resave(Image.fromarray, ".webp", {"quality": 80}),
    # a GIF: Pillow's own conversion to a palette of at most 256 colours (read with a note, no copies)
    "gif": Resave(Image.fromarray, ".gif"),
    "gray": Resave(lambda image: Image.fromarray(image).convert("L")),
    "rgba_opaque": Resave(with_alpha(255)),                          # alpha that changes nothing
    "rgba_half": Resave(with_alpha(128)),      # the tool reads its stored colours; pools composite it on white
}


_SAVE_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}      # Pillow's format of each re-save's suffix


def resave(image: np.ndarray, condition: str, stem) -> Path:
    """Write (H, W, 3) uint8 `image` as the file of re-save `condition` (`RESAVES`) at `stem` plus
    the condition's suffix; returns its path."""
    path = Path(f"{stem}{_how(condition).suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(image, condition, path)
    return path


def _how(condition: str) -> Resave:
    if condition not in RESAVES:
        raise ValueError(f"unknown re-save {condition!r}; known: {', '.join(RESAVES)}")
    return RESAVES[condition]


def _save(image: np.ndarray, condition: str, target) -> None:
    """Write (H, W, 3) uint8 `image` as re-save `condition` to `target`, a path or a binary buffer."""
    how = _how(condition)
    how.convert(np.ascontiguousarray(image)).save(target, format=_SAVE_FORMAT[how.suffix], **how.options)


# the re-saves a gallery keeps each image's fingerprint of (the JPEG qualities people's tools use
# most, grayscale, and lossy WebP at Pillow's default quality: a WebP file does not say its quality);
# a query of another condition is compared with the clean images
MATCHED = ("jpeg95", "jpeg90", "jpeg85", "jpeg75", "gray", "webp")
# the re-saves compared on the pixels' fingerprint and their luminance's side by side: a JPEG keeps
# its luminance far better than its colour (chroma halved in each direction and quantised coarser),
# and so does a lossy WebP (the same halved chroma)
WITH_LUMINANCE = ("jpeg95", "jpeg90", "jpeg85", "jpeg75", "webp")


def luminance(image: torch.Tensor) -> torch.Tensor:
    """uint8 (3, H, W) tensor -> its luminance in all 3 channels (`grayscale`)."""
    return torch.from_numpy(np.ascontiguousarray(grayscale(image.permute(1, 2, 0).numpy()).transpose(2, 0, 1)))


def resaved(image: torch.Tensor, condition: str) -> torch.Tensor:
    """uint8 (3, H, W) tensor -> the pixels `load_image` reads back from its re-save `condition`
    (`RESAVES`), made in memory: `resave` then `load_image`, without the file."""
    buffer = io.BytesIO()
    _save(image.permute(1, 2, 0).numpy(), condition, buffer)
    buffer.seek(0)
    with Image.open(buffer) as im:
        rgb = _to_rgb_array(im, None)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


@functools.cache
def _luminance_tables() -> dict[int, np.ndarray]:
    """Pillow's (libjpeg's) luminance quantisation table at each quality 1-100, read back from a
    tiny JPEG it writes: the same order and scaling as the tables of the files it opens."""
    tables = {}
    for quality in range(1, 101):
        buffer = io.BytesIO()
        Image.new("L", (8, 8)).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as im:
            tables[quality] = np.asarray(im.quantization[0], dtype=float)
    return tables


def jpeg_quality(quantization: dict | None) -> int | None:
    """The libjpeg quality (1-100) whose luminance table is nearest (L1) to a JPEG's first
    quantisation table (Pillow's `Image.quantization`; ties to the higher quality); None without
    tables. A file from an encoder with its own tables gets the nearest libjpeg quality."""
    if not quantization:
        return None
    table = np.asarray(quantization[min(quantization)], dtype=float)
    if table.shape != (64,):
        return None
    return min(_luminance_tables().items(), key=lambda item: (np.abs(item[1] - table).sum(), -item[0]))[0]


_WEBP_CONTAINERS = {b"ANMF": 16}    # chunks that hold sub-chunks after a header of so many bytes


def lossy_webp(path) -> bool:
    """Whether a WebP file holds lossy image data (a "VP8 " chunk, also inside an extended or
    animated file's frames) rather than only lossless ("VP8L"), from its RIFF chunk headers alone
    (a few bytes each, seeking past the data: the image is read once, by the decoder); False for
    anything that is not a readable WebP."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
                return False
            return _lossy_chunk(f, 12, int.from_bytes(head[4:8], "little") + 8)
    except OSError:
        return False


def _lossy_chunk(f, start: int, end: int) -> bool:
    """Whether a "VP8 " chunk lies among the chunks of open file `f` from `start` to `end`."""
    while start + 8 <= end:
        f.seek(start)
        header = f.read(8)
        if len(header) < 8:                          # a truncated file
            return False
        fourcc, size = header[:4], int.from_bytes(header[4:], "little")
        body = start + 8
        if fourcc == b"VP8 ":
            return True
        if fourcc in _WEBP_CONTAINERS and _lossy_chunk(f, body + _WEBP_CONTAINERS[fourcc], min(body + size, end)):
            return True
        start = body + size + (size & 1)            # chunks are padded to an even size
    return False


def matched_condition(is_jpeg: bool, is_gray: bool, quantization: dict | None = None,
                      is_lossy_webp: bool = False) -> str | None:
    """The `MATCHED` re-save a query is compared as: "gray" for a grayscale image (a grayscale JPEG
    too: its lost colour is the larger change), "webp" for a lossy WebP (`lossy_webp`), for a JPEG
    the quality of `MATCHED` nearest to its own (`jpeg_quality`; ties to the higher; the highest
    when its tables are unreadable), else None (compared with the clean images)."""
    if is_gray:
        return "gray"
    if is_lossy_webp:
        return "webp"
    if not is_jpeg:
        return None
    quality = jpeg_quality(quantization)
    qualities = {RESAVES[c].options["quality"]: c for c in MATCHED if c.startswith("jpeg")}
    if quality is None:
        return qualities[max(qualities)]
    return qualities[min(qualities, key=lambda q: (abs(q - quality), -q))]
