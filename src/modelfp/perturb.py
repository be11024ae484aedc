"""Image perturbations of Appendix B (Figure 16): JPEG compression and crop-and-resize.

As the paper, with albumentations: `ImageCompression` at a fixed quality, and
`RandomResizedCrop` that crops a patch of a fixed area fraction (aspect ratio 3/4 to 4/3) and
resizes it back to the image's own size. Every level of a sweep is its own image folder, so the
attribution stage treats a perturbed test model like any other image set.
"""

from __future__ import annotations

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
