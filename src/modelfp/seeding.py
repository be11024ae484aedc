"""Seeds derived from identities, so no two models share a start by accident.

A model's seed is a stable function of what it is (an architecture id and seed index, a test
model's name), not of its position in a list: the same name gives the same seed on every run and
machine (SHA-256, not Python's salted `hash`), and two names give unrelated seeds. Light to import
(no torch): the workflow's plan uses it at Snakemake start-up.
"""

from __future__ import annotations

import hashlib

SPAN = 2**31 - 1        # fits torch.manual_seed, numpy's default_rng and 32-bit C ints


def derive(*parts) -> int:
    """A seed in [0, 2**31 - 1) from the parts' text, e.g. derive("K2-L1-...-Nbn", 0)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % SPAN


def synthetic_seed(arch_id: str, seed_index: int) -> int:
    """Initial weights and image order of synthetic model (arch, seed index): distinct per model."""
    return derive("synthetic", arch_id, seed_index)


def generator_seed(name: str, base_seed: int = 0) -> int:
    """Training and sampling seed of a test-bed or validation generator without an explicit
    `seed`: derived from its name (offset by the preset's `testbed.seed`)."""
    return derive("generator", name, base_seed)
