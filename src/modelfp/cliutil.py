"""What both command lines share: the people's (`modelfp`, `modelfp.cli`) and the workflow's
(`python -m modelfp.steps`, `modelfp.steps`).

It sits below both doors and imports neither, so no module that registers verbs has to import a
door (no import circle). Cheap to import: torch loads only when a verb asks for a device.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("modelfp")


def counted(n: int, noun: str) -> str:
    """"1 image", "2 images": a count with its noun in the number it takes (nouns with a plain -s)."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# ---------------------------------------------------------------------------------------------
# a door: the parser and the run of one verb

def new_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A door's parser with -v/--verbose and its verbs' sub-parsers (one verb required)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser, parser.add_subparsers(dest="command", required=True)


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse `argv`, run the verb, and return the exit code: the verb's own (the people's commands
    return 1 when some inputs failed), else 0; an expected failure (bad input, a missing file) is
    one line on stderr and code 2, without a traceback."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        code = args.func(args)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    return code if isinstance(code, int) else 0


# ---------------------------------------------------------------------------------------------
# options several verbs share

def compute_args(p) -> None:
    """Where a computing verb runs: --device (auto = CUDA when present) and torch threads."""
    p.add_argument("--device", required=True, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None)


def figure_outputs(p) -> None:
    """A figure verb's three files: the plot as png and pdf, and its numbers as csv."""
    for kind in ("png", "pdf", "csv"):
        p.add_argument(f"--out-{kind}", required=True)


def device(name: str):
    """The torch device of a --device value; auto is CUDA when present, else the CPU."""
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(n: int | None) -> None:
    """torch's CPU threads from --threads (None or 0: torch's default, all cores)."""
    import torch
    if n:
        torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# reading and writing at the edge

@contextlib.contextmanager
def reading(what: str):
    """Errors of reading an input (a missing or unreadable folder, a bad file) name what it is for:
    '<what>: <error>' (the error itself names the path)."""
    try:
        yield
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"{what}: {err}") from err


def zoo_checkpoints(paths, manifests) -> list[str]:
    """Synthetic checkpoints, each checked against the slice manifests the rule declared
    (modelfp.manifest: the jobs' inputs are the manifests, not the hundreds of checkpoints)."""
    from . import manifest
    if not manifests:
        raise ValueError("synthetic checkpoints need --manifest: the zoo manifests that list them "
                         "(results/synthetic/slices/<slice>.tsv)")
    return manifest.verified(paths, manifests)


def all_row(path, columns) -> dict:
    """The "all" row of an evaluation csv (the verb evaluate's), or ValueError naming the file and what it lacks."""
    from .tables import read_evaluation
    row = read_evaluation(path).get("all", {})
    missing = [k for k in columns if k not in row]
    if missing:
        raise ValueError(f"{path}: no {' or '.join(missing)} in an \"all\" row; rerun the evaluate rule that "
                         f"writes it")
    return row


def save_npz(path, **arrays) -> None:
    """An npz written atomically (a temporary name, then os.replace), its folder made."""
    import numpy as np
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
