"""Checkpoint files: atomic writes and reads that name the file when it is not what was expected.

Every model file of the workflow (synthetic models, the denoiser, test-bed generators) is a dict
saved with torch.save and read with weights_only=True (no pickled code runs on load).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save(payload: dict, path) -> None:
    """torch.save to a temporary name in the same folder, then rename: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read(path, what: str, device="cpu"):
    """The object in a torch file, or ValueError naming the file, what was expected and the fix."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path}: not a readable {what} ({err}); delete it and rerun the rule "
                         f"that makes it") from err


def load(path, fmt: str, what: str, device="cpu") -> dict:
    """A dict written by this package in format `fmt`, or ValueError naming the file."""
    payload = read(path, what, device)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"{path}: not a modelfp {what} (format {fmt} expected)")
    return payload
