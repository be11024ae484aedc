"""Image pools: real photos brought to a square size and stored once as uint8 shards.

A pool is either a folder of photos (``build_folder_pool``) or an *embedded* pool cut from
the colour photographs that ship inside installed Python packages (``embedded_pool``), so
the pipeline runs with no dataset and no network. Following the paper, every image is
plainly resized to ``size x size`` (no crop, antialiased). Pools are split into train/val
(``split_train_val``) and written as ``train-00000.pt ... val-00000.pt`` plus a
``manifest.json`` written last (``write_pool`` / ``read_pool``).

Reading order: constants and dataclasses, loading, pool building, storage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import os
import pathlib
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps
from tqdm import tqdm

__all__ = [
    "IMAGE_EXTENSIONS",
    "EMBEDDED_SOURCES",
    "BadImageError",
    "PoolError",
    "PoolReport",
    "load_image",
    "list_images",
    "build_folder_pool",
    "embedded_photos",
    "embedded_pool",
    "split_train_val",
    "write_pool",
    "read_pool",
    "to_unit_range",
]

# ---------------------------------------------------------------------------------------
# Constants and dataclasses
# ---------------------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# Bilinear with antialiasing: what torchvision.transforms.Resize does to PIL images by default.
RESAMPLE = Image.Resampling.BILINEAR

# Transparent pixels are composited on white, the way viewers and browsers show them.
ALPHA_BACKGROUND = (255, 255, 255)
# How an image with alpha is read: "composite" - on ALPHA_BACKGROUND, the picture as shown (pools,
# training); "stored" - the colours the file stores wherever a pixel is not fully transparent (PNG and
# WebP store them unmultiplied: a translucent pixel's colours are the ones its maker wrote), the
# background only where it is (what the people's tool fingerprints: issue 25).
ALPHA_READINGS = ("composite", "stored")

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "modelfp-pool/1"
_SHARD_NAME = re.compile(r"^(?P<split>train|val)-(?P<index>\d{5})\.pt$")
_SPLITS = ("train", "val")

# Fix suggested in every BadImageError, so a long build can be resumed without reading code.
_BAD_IMAGE_FIX = "re-export or delete the file, or build the pool with on_bad_image='skip'"


class BadImageError(ValueError):
    """An image file that cannot be decoded completely; the message names the file and a fix.

    ``path`` and ``problem`` (what is wrong, without the pool's fix) let other callers, such as
    the people's command line, give their own advice."""

    def __init__(self, message: str, path: pathlib.Path | None = None, problem: str = ""):
        super().__init__(message)
        self.path, self.problem = path, problem or message


class PoolError(ValueError):
    """A pool that cannot be built or read; the message names the pool (or manifest) and path."""


@dataclass
class PoolReport:
    """What happened while building a folder pool; stored in the manifest's meta."""

    n_found: int
    n_loaded: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------

# LOAD_TRUNCATED_IMAGES is a Pillow-wide switch; the lock keeps our save/restore consistent.
_STRICT_DECODE_LOCK = threading.Lock()


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Make Pillow raise on truncated files even if some other code allowed them globally."""
    with _STRICT_DECODE_LOCK:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _bad(path: pathlib.Path, what: str, detail: str = "") -> BadImageError:
    problem = f"{what} ({detail})" if detail else what
    return BadImageError(f"bad image {path}: {problem}. Fix: {_BAD_IMAGE_FIX}.", path, problem)


def _decode(path: pathlib.Path) -> Image.Image:
    """Fully decode one file (first frame), upright per its EXIF orientation, or BadImageError."""
    try:
        n_bytes = path.stat().st_size
    except OSError as e:
        raise _bad(path, "cannot read the file", f"{type(e).__name__}: {e}") from e
    if not path.is_file():
        raise _bad(path, "not a regular file")
    if n_bytes == 0:
        raise _bad(path, "the file is empty (0 bytes)")
    try:
        with _strict_decoding(), Image.open(path) as im:
            im.load()  # Image.open is lazy: only load() decodes every pixel and notices truncation
            if im.width == 0 or im.height == 0:
                raise _bad(path, f"zero-size image ({im.width}x{im.height})")
            # Camera photos are often stored sideways with an EXIF rotation flag.
            return ImageOps.exif_transpose(im)
    except BadImageError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ...
        raise _bad(path, "corrupt, truncated or not an image", f"{type(e).__name__}: {e}") from e


def _bit_depth(im: Image.Image) -> int | None:
    """Bits per sample the file declares (TIFF can say 12 in a 16-bit container), if known."""
    tags = getattr(im, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None  # 258 = TIFF BitsPerSample
    if bits is not None:
        return int(bits[0] if isinstance(bits, tuple) else bits)
    if im.mode.startswith("I;16"):
        return 16
    return None


def _high_range_to_float(im: Image.Image) -> Image.Image:
    """Map a 16/32-bit integer or float grayscale image to a float 'F' image in [0, 255].

    Integers are divided by the file's bit depth (65535 -> 255, not clipped); without a
    declared depth, values in [0, 65535] are taken as 16-bit and anything else is min-max
    scaled. Floats in [0, 1] are multiplied by 255, other floats are min-max scaled.
    """
    values = np.asarray(im).astype(np.float64)
    values[~np.isfinite(values)] = 0.0
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if im.mode == "F":
        scale_max = 1.0 if lo >= 0.0 and hi <= 1.0 else None
    else:
        depth = _bit_depth(im)
        if depth is None and lo >= 0.0 and hi <= 65535.0:
            depth = 16
        scale_max = float(2**depth - 1) if depth and lo >= 0.0 and hi <= 2**depth - 1 else None
    if scale_max is not None:
        values = values * (255.0 / scale_max)
    elif hi > lo:
        values = (values - lo) * (255.0 / (hi - lo))
    else:
        values = np.zeros_like(values)
    return Image.fromarray(values.astype(np.float32), mode="F")


def has_alpha(im: Image.Image) -> bool:
    """Whether an opened image carries transparency: an alpha channel or a transparency key."""
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _to_rgb_array(im: Image.Image, size: int | None, alpha: str = "composite") -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB, resized to size x size when size is given; alpha
    read as `alpha` says (ALPHA_READINGS)."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        # Resize in float before quantising, so high bit depths lose precision only once.
        gray = _high_range_to_float(im)
        if size is not None:
            gray = gray.resize((size, size), RESAMPLE)
        g = np.clip(np.rint(np.asarray(gray)), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    transparency = has_alpha(im)
    if transparency and alpha == "stored":
        rgba = np.asarray(im.convert("RGBA"))
        im = Image.fromarray(np.where(rgba[..., 3:] == 0, np.array(ALPHA_BACKGROUND, np.uint8), rgba[..., :3]))
    elif transparency:
        background = Image.new("RGBA", im.size, (*ALPHA_BACKGROUND, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    rgb = im.convert("RGB")  # L, 1, P, CMYK, YCbCr, ... (CMYK without ICC colour management)
    if size is not None:
        rgb = rgb.resize((size, size), RESAMPLE)
    return np.asarray(rgb, dtype=np.uint8)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"image size must be a positive integer, got {size!r}")
    return int(size)


def load_image(path, size: int | None, alpha: str = "composite") -> torch.Tensor:
    """uint8 tensor (3, size, size) of one image file, plainly resized (no crop, antialiased);
    size None keeps the image's own size, (3, H, W).

    Every Pillow mode becomes RGB: grayscale and palette are replicated/expanded, alpha is
    composited on white (alpha="stored": the stored colours of every pixel that is not fully
    transparent, white where one is; ALPHA_READINGS), CMYK is converted naively, 16-bit and 32-bit
    integers are scaled by the file's bit depth, floats by [0, 1] (else min-max). Multi-frame files
    use frame 0. Raises BadImageError for unreadable, empty, corrupt, truncated or zero-size images.
    """
    if alpha not in ALPHA_READINGS:
        raise ValueError(f"alpha must be one of {ALPHA_READINGS}; got {alpha!r}")
    size = None if size is None else _check_size(size)
    path = pathlib.Path(path)
    im = _decode(path)
    try:
        rgb = _to_rgb_array(im, size, alpha)
    except Exception as e:  # e.g. a mode Pillow cannot convert to RGB (LAB, multi-band TIFF)
        raise _bad(path, f"cannot convert Pillow mode {im.mode!r} to RGB", str(e)) from e
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def list_images(root, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[pathlib.Path]:
    """Image files under root (recursive), by extension (`extensions`, case-insensitive), sorted by
    relative path.

    Hidden files and folders (name starting with '.') are ignored: they are mostly editor or
    macOS '._name.jpg' metadata, not photos. Symlinked folders are followed once.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    found = []
    seen_dirs = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop or a folder linked twice
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(extensions):
                found.append(pathlib.Path(dirpath, name))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


# ---------------------------------------------------------------------------------------
# Pool building: folders
# ---------------------------------------------------------------------------------------


def build_folder_pool(
    name: str, root, size: int, on_bad_image: str = "error"
) -> tuple[torch.Tensor, PoolReport]:
    """All images under root as uint8 (N, 3, size, size), in list_images order, and a report.

    Missing folder or no images -> PoolError naming the pool and the path. on_bad_image:
    'error' raises BadImageError naming the file; 'skip' records (path, reason) in the report.
    """
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")
    size = _check_size(size)
    root = pathlib.Path(root)
    wanted = f"Put the pool's photos ({', '.join(IMAGE_EXTENSIONS)}; subfolders are fine) there"
    if not root.exists():
        raise PoolError(f"pool '{name}': folder {root} does not exist. {wanted}, "
                        "or point the pool at the folder that holds them.")
    if not root.is_dir():
        raise PoolError(f"pool '{name}': {root} is a file, not a folder. {wanted}.")
    paths = list_images(root)
    if not paths:
        raise PoolError(f"pool '{name}': folder {root} contains no images. {wanted}.")

    images = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    skipped: list[tuple[str, str]] = []
    n_loaded = 0
    # disable=None: tqdm shows the bar on a terminal and stays silent in logs and CI.
    for path in tqdm(paths, desc=f"pool {name}", unit="img", disable=None):
        try:
            images[n_loaded] = load_image(path, size)
        except BadImageError as e:
            if on_bad_image == "error":
                raise
            skipped.append((str(path), str(e)))
            continue
        n_loaded += 1
    if n_loaded == 0:
        raise PoolError(f"pool '{name}': none of the {len(paths)} images in {root} could be "
                        f"loaded (first problem: {skipped[0][1]})")
    if n_loaded < len(paths):
        images = images[:n_loaded].clone()  # drop the unused rows' memory
    return images, PoolReport(n_found=len(paths), n_loaded=n_loaded, skipped=skipped)


# ---------------------------------------------------------------------------------------
# Pool building: embedded photos
# ---------------------------------------------------------------------------------------

# Colour photographs bundled in the wheels (never fetched): (top-level package, path inside it).
# Left out: skimage's motorcycle_right (stereo twin of motorcycle_left), color/phantom/logo
# (synthetic), camera/moon/coins/... (grayscale), and everything skimage.data would download.
_PHOTO_FILES: dict[str, tuple[str, str]] = {
    "skimage:astronaut": ("skimage", "data/astronaut.png"),
    "matplotlib:grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "skimage:chelsea": ("skimage", "data/chelsea.png"),
    "sklearn:flower": ("sklearn", "datasets/images/flower.jpg"),
    "skimage:immunohistochemistry": ("skimage", "data/ihc.png"),
    "skimage:retina": ("skimage", "data/retina.jpg"),
    "skimage:coffee": ("skimage", "data/coffee.png"),
    "skimage:rocket": ("skimage", "data/rocket.jpg"),
    "skimage:motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "sklearn:china": ("sklearn", "datasets/images/china.jpg"),
    "skimage:hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
}

# Two disjoint photo sets, so 'train on A vs B vs both' compares image content.
EMBEDDED_SOURCES: dict[str, list[str]] = {
    # People, an animal, a plant, tissue and an eye: living subjects.
    "embedded_living": [
        "skimage:astronaut",
        "matplotlib:grace_hopper",
        "skimage:chelsea",
        "sklearn:flower",
        "skimage:immunohistochemistry",
        "skimage:retina",
    ],
    # Objects, machines, a building in a landscape and the night sky.
    "embedded_scenes": [
        "skimage:coffee",
        "skimage:rocket",
        "skimage:motorcycle_left",
        "sklearn:china",
        "skimage:hubble_deep_field",
    ],
}


def _photo_path(source: str) -> pathlib.Path:
    """Path of a bundled photo, found via the package's location without importing it."""
    package, relative = _PHOTO_FILES[source]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PoolError(f"embedded photo {source!r} needs the Python package {package!r}, "
                        "which is not installed; install it or use a folder pool.")
    path = pathlib.Path(list(spec.submodule_search_locations)[0], relative)
    if not path.is_file():
        raise PoolError(f"embedded photo {source!r}: {path} is missing from the installed "
                        f"{package!r}; reinstall it or use a folder pool.")
    return path


@functools.lru_cache(maxsize=None)
def _photo(source: str) -> np.ndarray:
    """Decoded full-resolution RGB photo, cached and read-only (it is shared between calls)."""
    rgb = _to_rgb_array(_decode(_photo_path(source)), size=None)
    rgb = np.ascontiguousarray(rgb)
    rgb.flags.writeable = False
    return rgb


def _check_pool_name(pool: str) -> list[str]:
    if pool not in EMBEDDED_SOURCES:
        raise PoolError(f"unknown embedded pool {pool!r}; known: {', '.join(EMBEDDED_SOURCES)}")
    return EMBEDDED_SOURCES[pool]


def embedded_photos(pool: str) -> list[np.ndarray]:
    """Full-resolution RGB uint8 (H, W, 3) photos of an embedded pool (read-only arrays)."""
    return [_photo(source) for source in _check_pool_name(pool)]


def embedded_pool(pool: str, size: int, count: int, seed: int) -> torch.Tensor:
    """uint8 (count, 3, size, size): deterministic multi-scale random crops of the pool's photos.

    Per patch: a photo (uniform), a square side log-uniform in [min(size, short side), short
    side], a uniform position, a horizontal flip with probability 1/2, then an antialiased
    resize to size x size. All draws come from rng.random() of PCG64(seed) (5 per patch), whose
    stream numpy keeps stable, so the first k patches do not depend on count.
    """
    photos = [Image.fromarray(p) for p in embedded_photos(pool)]
    size = _check_size(size)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    draws = np.random.Generator(np.random.PCG64(seed)).random((count, 5))
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i, (u_photo, u_side, u_top, u_left, u_flip) in enumerate(draws):
        photo = photos[min(int(u_photo * len(photos)), len(photos) - 1)]
        short = min(photo.size)
        smallest = min(size, short)
        side = round(math.exp(math.log(smallest) + u_side * (math.log(short) - math.log(smallest))))
        side = min(max(side, smallest), short)
        top = min(int(u_top * (photo.height - side + 1)), photo.height - side)
        left = min(int(u_left * (photo.width - side + 1)), photo.width - side)
        patch = photo.resize((size, size), RESAMPLE, box=(left, top, left + side, top + side))
        if u_flip < 0.5:
            patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out[i] = np.asarray(patch)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def split_train_val(
    images: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic random split into (train, val); each keeps the input order and gets >= 1 image."""
    n = len(images)
    if n < 2:
        raise ValueError(f"need at least 2 images to split into train and val, got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    n_val = min(max(round(n * val_fraction), 1), n - 1)
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    val_index = torch.from_numpy(np.sort(order[:n_val]))
    train_index = torch.from_numpy(np.sort(order[n_val:]))
    return images.index_select(0, train_index), images.index_select(0, val_index)


# ---------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: pathlib.Path, write: Callable[[IO[bytes]], Any]) -> str:
    """Write via a temp file in the same folder + os.replace; return the file's sha256."""
    # Not mkstemp: it creates 0600 files; "xb" honours the umask and refuses to clobber.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        digest = _sha256(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


def _jsonable(value: Any) -> Any:
    """json.dumps fallback for the meta: dataclasses (PoolReport), paths, numpy scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON serialisable")


def _check_images(split: str, images: torch.Tensor) -> int | None:
    """Image size of a (N, 3, S, S) uint8 tensor (None when N == 0), else ValueError."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"{split} images must be a uint8 tensor")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"{split} images must have shape (N, 3, S, S), got {tuple(images.shape)}")
    return int(images.shape[2]) if len(images) else None


def write_pool(out_dir, train: torch.Tensor, val: torch.Tensor, meta: dict,
               shard_size: int = 10000) -> pathlib.Path:
    """Write train-00000.pt ..., val-00000.pt ... and then manifest.json; return the manifest path.

    Each shard is a contiguous uint8 tensor of at most shard_size images. Every file is written
    atomically and the manifest last, so a killed run leaves no manifest (and no half file).
    """
    sizes = {s for s in (_check_images("train", train), _check_images("val", val)) if s}
    if len(sizes) != 1:
        raise ValueError(f"train and val need >= 1 image in total and one image size, got {sizes}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    # An old manifest must never describe shards that are being rewritten.
    manifest_path.unlink(missing_ok=True)

    splits = {}
    for split, images in (("train", train), ("val", val)):
        shards = []
        for index, start in enumerate(range(0, len(images), shard_size)):
            file = f"{split}-{index:05d}.pt"
            # clone: a slice would save the whole parent storage; this stores exactly the shard.
            shard = images[start:start + shard_size].clone(memory_format=torch.contiguous_format)
            digest = _atomic_write(out_dir / file, lambda f, t=shard: torch.save(t, f))
            shards.append({"file": file, "count": len(shard), "sha256": digest})
        splits[split] = {"count": len(images), "shards": shards}

    manifest = {
        "format": MANIFEST_FORMAT,
        "image_size": sizes.pop(),
        "channels": 3,
        "dtype": "uint8",
        "splits": splits,
        "meta": meta,
    }
    text = json.dumps(manifest, indent=2, default=_jsonable) + "\n"
    _atomic_write(manifest_path, lambda f: f.write(text.encode("utf-8")))

    # Shards of an earlier, larger pool in the same folder are no longer listed: remove them.
    listed = {s["file"] for entry in splits.values() for s in entry["shards"]}
    for path in out_dir.iterdir():
        if _SHARD_NAME.match(path.name) and path.name not in listed:
            path.unlink(missing_ok=True)
    return manifest_path


def read_pool(pool_dir, split: str = "train", mmap: bool = True) -> torch.Tensor:
    """uint8 (N, 3, S, S) of one split, checked against the manifest.

    Shards are loaded with torch.load(mmap=..., weights_only=True); one shard is returned as
    loaded (no copy, memory-mapped), several are concatenated.
    """
    manifest_path = pathlib.Path(pool_dir) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PoolError(f"no pool manifest at {manifest_path}: build the pool first "
                        "(it is written last, so an interrupted build has none).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        size = int(manifest["image_size"])
        splits = manifest["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PoolError(f"unreadable pool manifest {manifest_path} ({e}); rebuild the pool.") from e
    if split not in splits:
        raise PoolError(f"pool manifest {manifest_path} has no split {split!r}; "
                        f"it has {', '.join(splits)}.")

    mismatch = f"does not match pool manifest {manifest_path}; rebuild the pool."
    parts = []
    for shard in splits[split]["shards"]:
        name = str(shard["file"])
        path = manifest_path.parent / name
        if pathlib.Path(name).name != name or not path.is_file():
            raise PoolError(f"shard {path} listed in pool manifest {manifest_path} is missing; "
                            "rebuild the pool.")
        try:
            images = torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
        except Exception as e:
            raise PoolError(f"cannot load shard {path} ({type(e).__name__}: {e}); "
                            f"it {mismatch}") from e
        expected = (int(shard["count"]), 3, size, size)
        if (not isinstance(images, torch.Tensor) or images.dtype != torch.uint8
                or tuple(images.shape) != expected):
            got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor)
                   else type(images).__name__)
            raise PoolError(f"shard {path} holds {got}, expected uint8 {expected}; it {mismatch}")
        parts.append(images)

    total = sum(len(p) for p in parts)
    if total != int(splits[split]["count"]):
        raise PoolError(f"split {split!r} has {total} images in its shards but "
                        f"{splits[split]['count']} in the manifest; it {mismatch}")
    if not parts:
        return torch.empty((0, 3, size, size), dtype=torch.uint8)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def read_pools(pool_dirs, split: str) -> torch.Tensor:
    """uint8 (N, 3, S, S) of one split of several pools, in the order given (`read_pool` each, then
    concatenated): what a step that feeds on pools (synthesis, the denoiser, the test bed) reads."""
    dirs = list(pool_dirs)
    return torch.cat([read_pool(d, split) for d in dirs]) if len(dirs) > 1 else read_pool(dirs[0], split)


def to_unit_range(x_uint8: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Map uint8 [0, 255] to [-1, 1] (0 -> -1, 255 -> 1 exactly), as generators expect."""
    if x_uint8.dtype != torch.uint8:
        raise TypeError(f"to_unit_range expects a uint8 tensor, got {x_uint8.dtype}")
    return x_uint8.to(dtype).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_unit_range`: [-1, 1] floats (clamped) rounded to uint8, as a saved image."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def as_unit_range(x: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Images for a network: uint8 mapped to [-1, 1] (`to_unit_range`), floats (already in
    [-1, 1], e.g. a resized pool) only cast to `dtype`."""
    return to_unit_range(x, dtype) if x.dtype == torch.uint8 else x.to(dtype)
