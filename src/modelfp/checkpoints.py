"""Checkpoint files: atomic writes and reads that name the file when it is not what was expected.

Every model file of the workflow (synthetic models, the denoiser, test-bed generators) is a dict
saved with torch.save and read with weights_only=True (no pickled code runs on load).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

# what to do about a damaged file of the workflow; callers for people pass their own `hint`
REBUILD = "delete it and rerun the rule that makes it"
ZIP_MAGIC = b"PK\x03\x04"     # torch.save writes a zip archive


def save(payload: dict, path) -> None:
    """torch.save to a temporary name in the same folder, then rename: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read(path, what: str, device="cpu", hint: str | None = None):
    """The object in a torch file, or ValueError: one line naming the file, what it is not, and
    `hint` (what to do). A file that is not a torch file at all (an image, a text, an empty file)
    is said to be so; a damaged torch file gets the first line of torch's reason and the hint, by
    default to rebuild it."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file (a {what} was expected)" + (f"; {hint}" if hint else ""))
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a {what}" + (f"; {hint}" if hint else ""))
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        with open(path, "rb") as f:
            torch_file = f.read(4) == ZIP_MAGIC
        if not torch_file:
            kind = "an empty file" if path.stat().st_size == 0 else "not a file written by torch.save"
            raise ValueError(f"{path}: not a {what} ({kind})" + (f"; {hint}" if hint else "")) from err
        raise ValueError(f"{path}: not a readable {what} ({_reason(err)}); {hint or REBUILD}") from err


def _reason(err: Exception) -> str:
    """torch.load's error in a few words (its messages run to paragraphs of advice)."""
    text = str(err).strip()
    if "Weights only load failed" in text:
        return "it holds Python objects, not only tensors and plain values"
    return text.splitlines()[0].split(". ")[0] if text else type(err).__name__


def load(path, fmt: str, what: str, device="cpu", hint: str | None = None) -> dict:
    """A dict written by this package in format `fmt`, or ValueError naming the file (see `read`)."""
    payload = read(path, f"modelfp {what}", device, hint)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"{path}: not a modelfp {what} (format {fmt} expected)"
                         + (f"; {hint}" if hint else ""))
    return payload
