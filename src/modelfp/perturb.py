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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import albumentations as A
import numpy as np
from PIL import Image

from .pools import list_images, load_image

KINDS = ("jpeg", "crop")


def transform(kind: str, level: float, height: int, width: int, seed: int) -> A.Compose:
    """The perturbation at one level: JPEG quality (1-100) or crop area fraction (0-1]."""
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
    "gray": Resave(lambda image: Image.fromarray(image).convert("L")),
    "rgba_opaque": Resave(with_alpha(255)),                          # alpha that changes nothing
    "rgba_half": Resave(with_alpha(128)),                            # composited on white when read
}


def resave(image: np.ndarray, condition: str, stem) -> Path:
    """Write (H, W, 3) uint8 `image` as the file of re-save `condition` (`RESAVES`) at `stem` plus
    the condition's suffix; returns its path."""
    if condition not in RESAVES:
        raise ValueError(f"unknown re-save {condition!r}; known: {', '.join(RESAVES)}")
    how = RESAVES[condition]
    path = Path(f"{stem}{how.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    how.convert(np.ascontiguousarray(image)).save(path, **how.options)
    return path
