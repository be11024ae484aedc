"""The authors' evaluation lists: identification on a given support/test split and verification on a
given pair list (/work/shared/paper/baselines.md, "The authors' evaluation lists"), instead of the
seeded protocol of modelfp.evaluate.

Files (config `evaluation.lists`, verb options `--lists-root --support --test --pairs`):
- support and test lists: one image a line, `path<TAB>label`;
- pair list: one pair a line, `path1<TAB>path2<TAB>label`, label 1 (same model) or 0 (different);
- paths relative to the lists' root; blank lines and lines starting with '#' are skipped.

The label rule: the first component of a list path is the model's folder under the root, named as
the model is named in the config (testbed.models); a support/test label must equal it. (The
authors' lists number their models: replace the numbers by the names.) An image is found among a
model's embedded images by the rest of its path without suffix (modelfp.splits.image_key), so the
perturbed copies of a view (same names, PNG) match too. A pair's label must agree with its two
models. Every error names the list file and line.

Identification: each model's gallery is exactly its support images, the queries are exactly the
test images; verification scores exactly the listed pairs; the scoring is modelfp.evaluate's
(`evaluate.evaluate_split_details`, on the rows `locate` finds; `evaluate.evaluate_groups` runs it
per group). Parsing is pure (text in, entries out); only `read_lists`, `embedded_keys` and
`listed_images` (which images of a model folder `embed` reads) read files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .splits import TRAIN, image_key, side

log = logging.getLogger(__name__)

KINDS = ("support", "test", "pairs")


@dataclass(frozen=True)
class Image:
    """One image of a list line: its model (first path component) and its key within the model."""
    where: str          # "FILE:LINE", for errors
    model: str
    key: str


@dataclass
class Lists:
    support: list[Image]
    test: list[Image]
    pairs: list[tuple[Image, Image, bool]]


def _image(path: str, where: str) -> Image:
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) < 2 or parts[0] in ("/", "..") or ".." in parts:
        raise ValueError(f"{where}: path {path!r} must be <model folder>/<image> relative to the lists' root")
    return Image(where, parts[0], PurePosixPath(*parts[1:]).with_suffix("").as_posix())


def _lines(text: str, file: str, n_fields: int):
    """(where, fields) of every data line; a line of another field count is an error naming it."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        where = f"{file}:{number}"
        if len(fields) != n_fields or not all(f.strip() for f in fields):
            shape = "path<TAB>label" if n_fields == 2 else "path1<TAB>path2<TAB>label"
            raise ValueError(f"{where}: malformed line {line!r}; expected {shape}")
        yield where, [f.strip() for f in fields]


def parse_image_list(text: str, file: str) -> list[Image]:
    """A support or test list: each label must equal the model folder of its path."""
    images = []
    for where, (path, label) in _lines(text, file, 2):
        image = _image(path, where)
        if label != image.model:
            raise ValueError(f"{where}: label {label!r} differs from the model folder {image.model!r} of "
                             f"{path!r}; the label must be the model's name (its folder under the root)")
        images.append(image)
    return images


def parse_pair_list(text: str, file: str) -> list[tuple[Image, Image, bool]]:
    """A pair list: label 1 or 0, which must agree with whether the two model folders are one."""
    pairs = []
    for where, (path1, path2, label) in _lines(text, file, 3):
        if label not in ("0", "1"):
            raise ValueError(f"{where}: pair label {label!r} must be 1 (same model) or 0 (different)")
        a, b = _image(path1, where), _image(path2, where)
        if (a.model == b.model) != (label == "1"):
            raise ValueError(f"{where}: label {label} but the images are of models {a.model!r} and {b.model!r}")
        pairs.append((a, b, label == "1"))
    return pairs


def read_lists(root, support, test, pairs) -> Lists:
    """The three lists, parsed; duplicates between support and test are an error."""
    for f in (support, test, pairs):
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such evaluation list (evaluation.lists)")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such folder (evaluation.lists.root)")
    lists = Lists(parse_image_list(Path(support).read_text(), str(support)),
                  parse_image_list(Path(test).read_text(), str(test)),
                  parse_pair_list(Path(pairs).read_text(), str(pairs)))
    seen = {}
    for image in lists.support + lists.test:
        first = seen.setdefault((image.model, image.key), image.where)
        if first != image.where:
            raise ValueError(f"{image.where}: image {image.model}/{image.key} is listed before at {first}")
    return lists


def images_of(lists: Lists) -> list[Image]:
    """Every image the lists name (support, test, both sides of each pair), each once per line."""
    return lists.support + lists.test + [x for a, b, _ in lists.pairs for x in (a, b)]


def check_models(lists: Lists, models) -> None:
    """Every list image's model folder must be one of `models` (the evaluated test models)."""
    models = set(models)
    for image in images_of(lists):
        if image.model not in models:
            raise ValueError(f"{image.where}: model folder {image.model!r} is not an evaluated test model "
                             f"(testbed.models: {sorted(models)})")


def npz_keys(paths, folder=None) -> list[str]:
    """Keys (modelfp.splits.image_key) of an embeddings file's `paths` under the folder it embedded
    (`folder`, stored by `embed`; older files: the common folder of the paths)."""
    paths = [Path(str(p)) for p in paths]
    if folder is None:
        folder = os.path.commonpath([str(p.parent) for p in paths])
    return [image_key(p, folder) for p in paths]


def embedded_keys(folder, names) -> list[tuple[str, str]]:
    """(model, key) of every row of `modelfp.evaluate.read_embeddings(folder, names)`, in its order."""
    out = []
    for name in names:
        data = np.load(Path(folder) / f"{name}.npz")
        if "paths" not in data:
            raise ValueError(f"{folder}/{name}.npz stores no image paths; rerun the embed rule")
        own = str(data["folder"]) if "folder" in data else None
        out += [(name, k) for k in npz_keys(data["paths"], own)]
    return out


def locate(lists: Lists, keys, names) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows (of embeddings whose rows are `keys`) of the support and test images and the pairs of the
    models `names`; a list image of one of these models that is not embedded is an error naming its line."""
    row = {k: r for r, k in enumerate(keys)}
    names = set(names)

    def find(image: Image) -> int:
        if (image.model, image.key) not in row:
            raise ValueError(f"{image.where}: image {image.model}/{image.key} is not among the embedded "
                             f"images of model {image.model!r}")
        return row[(image.model, image.key)]

    support = np.array([find(x) for x in lists.support if x.model in names], dtype=np.int64)
    test = np.array([find(x) for x in lists.test if x.model in names], dtype=np.int64)
    pairs = [(find(a), find(b), s) for a, b, s in lists.pairs if a.model in names and b.model in names]
    i, j, same = (np.array(c, dtype=t) for c, t in zip(zip(*pairs) if pairs else ([], [], []),
                                                          (np.int64, np.int64, bool)))
    return support, test, (i, j, same)


def listed_images(lists: Lists, name: str, folder, train_fraction: float) -> list[Path]:
    """With evaluation lists, a model's images are exactly those the lists name (either side of
    modelfp.splits: the user's lists decide), found in its folder by key; [] if it is in no list.
    A listed image missing from the folder is an error naming its list line; listed images on the
    training side (which fine-tuning and the baselines read) are counted in a warning."""
    from .pools import list_images
    wanted = {}
    for image in images_of(lists):
        if image.model == name:
            wanted.setdefault(image.key, image.where)
    if not wanted:
        return []
    by_key = {image_key(p, folder): p for p in list_images(folder)}
    for key, where in wanted.items():
        if key not in by_key:
            raise FileNotFoundError(f"{where}: image {name}/{key} is not in the folder {folder} of model {name!r}")
    on_train = sum(side(k, train_fraction) == TRAIN for k in wanted)
    if on_train:
        log.warning("  %s: %d of the %d listed images lie on the training side that fine-tuning and the "
                    "baselines read (modelfp.splits)", name, on_train, len(wanted))
    return sorted(by_key[k] for k in wanted)
