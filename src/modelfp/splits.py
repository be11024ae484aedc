"""Which images of a test model may be trained on, and which are evaluated (the honest protocol).

Every test model's images fall on one of two sides. The *training* side is what anything fitted to
known models may see: the fine-tuned extractor ("Ours (Fine-tune)" of Tables VIII-X, trained on the
classical models) and the baselines. The *evaluation* side is what every extractor variant and
every view embeds, so all rows of a table are scored on the same images, none of them trained on.

An image's side is a function of its name alone: the SHA-256 of its path under the model folder,
without suffix, read as a number in [0, 1), against the training fraction. A name rather than a
position or a seeded draw, because then
- adding or removing other images never moves an image to the other side (a seeded choice of
  `fraction * n` images re-draws everything when n changes);
- a perturbed copy (results/perturbed/{kind}/{level}/{model}/, same names, PNG) and the original
  fall on the same side, whatever the format;
- models whose files are named alike (the workflow's own generators write 00000.png, 00001.png,
  ...) get the same split, hence equal per-model counts; the model name is not hashed, so
  renaming a model in the config does not reshuffle its images either.
The price is that the fraction is met on average, not exactly (1,000 images at 0.5: 500 +- 16).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

TRAIN, EVAL = "train", "eval"
SIDES = (TRAIN, EVAL)


def check_fraction(train_fraction: float) -> float:
    """The training fraction, if usable: strictly between 0 and 1 (both sides can hold images)."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, not {train_fraction}")
    return float(train_fraction)


def image_key(path, root) -> str:
    """The name that decides an image's side: its path under `root`, '/'-separated, without suffix."""
    return Path(path).relative_to(root).with_suffix("").as_posix()


def side(key: str, train_fraction: float) -> str:
    """TRAIN or EVAL for an image named `key` (see `image_key`)."""
    check_fraction(train_fraction)
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return TRAIN if u < train_fraction else EVAL


def split(paths, root, train_fraction: float) -> dict[str, list[Path]]:
    """{TRAIN: [...], EVAL: [...]}: the image paths under `root` by side, each in the given order."""
    out = {TRAIN: [], EVAL: []}
    for p in paths:
        out[side(image_key(p, root), train_fraction)].append(Path(p))
    return out


def folder_side(folder, train_fraction: float, side: str) -> tuple[list[Path], int]:
    """(paths of one side, count of all images) of a model's image folder: the one function through
    which fine-tuning, the baselines (training side) and embedding (evaluation side) read test
    images, so their images are disjoint. Errors name the folder."""
    from .pools import list_images
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    paths = list_images(folder)
    if not paths:
        raise ValueError(f"{folder}: holds no images (png, jpg, ...)")
    chosen = split(paths, folder, check_fraction(train_fraction))[side]
    if not chosen:
        which = "its one image does not fall" if len(paths) == 1 else f"none of its {len(paths):,} images falls"
        raise ValueError(f"{folder}: {which} on the {side} side at "
                         f"train_fraction {train_fraction}; add images or change evaluation.train_fraction")
    return chosen, len(paths)


def training_side(folders, train_fraction: float, size: int) -> tuple[list[str], list]:
    """[(name, folder)] -> (names, one uint8 (n, 3, size, size) tensor per model): the training side
    of each folder (`folder_side`), each image's centre window (resized up when smaller). What
    fine-tuning and the baselines train on; the evaluation side is never read."""
    import torch

    from . import extractor as ex
    from .pools import load_image
    names, images = [], []
    for name, folder in folders:
        paths, total = folder_side(folder, train_fraction, TRAIN)
        log.info("  %-24s %4d of %d images (training side, train_fraction %g)", name, len(paths), total,
                 train_fraction)
        names.append(name)
        images.append(torch.stack([ex.windows(load_image(p, None), size, 1)[0] for p in paths]))
    return names, images
