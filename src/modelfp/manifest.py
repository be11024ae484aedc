"""A manifest of a zoo slice: one line per synthetic checkpoint (path, size, SHA-256).

Jobs that read hundreds of checkpoints (the extractors, the zoo's spectra and summary) declare the
36 slice manifests as their inputs instead of the 864 checkpoints, so Snakemake's scheduler stats
36 files per job, not 864, at every scheduling round (issue 24: it took a sixth of the demo's CPU).
A manifest is made by its own rule from the slice's checkpoints, so a changed checkpoint remakes
its manifest and, through it, every job that reads it; the reading job checks each checkpoint
against its digest, so it never trains on a file its manifest does not describe.
Light to import (no torch).
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

COLUMNS = ("path", "bytes", "sha256")


def digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write(paths, out) -> None:
    """The manifest of `paths` at `out`, atomically (a temporary name, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for p in paths:
            w.writerow([str(p), Path(p).stat().st_size, digest(p)])
    os.replace(tmp, out)


def read(manifests) -> dict[str, str]:
    """{checkpoint path: sha256} over the manifests; ValueError naming a malformed file."""
    entries = {}
    for m in manifests:
        with open(m, newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if not rows or tuple(rows[0]) != COLUMNS or any(len(r) != len(COLUMNS) for r in rows[1:]):
            raise ValueError(f"{m}: not a zoo manifest (a header {'/'.join(COLUMNS)} and one tab-separated "
                             f"line per checkpoint); delete it and rerun, the workflow remakes it")
        entries.update({r[0]: r[2] for r in rows[1:]})
    return entries


def verified(paths, manifests) -> list[str]:
    """`paths`, each checked to be listed in one of `manifests` with its current digest."""
    entries = read(manifests)
    for p in paths:
        p = str(p)
        if not Path(p).is_file():
            raise ValueError(f"{p}: no such file (a synthetic-model checkpoint was expected)")
        if p not in entries:
            raise ValueError(f"{p}: not listed in any of the {len(manifests)} zoo manifest(s) given "
                             f"({', '.join(map(str, manifests[:2]))}{', ...' if len(manifests) > 2 else ''})")
        if digest(p) != entries[p]:
            raise ValueError(f"{p}: changed after its manifest was written; rerun the workflow, which "
                             f"remakes the manifest (and everything that reads it) when a checkpoint is newer")
    return [str(p) for p in paths]
