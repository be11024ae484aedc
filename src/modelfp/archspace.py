"""The synthetic architecture space of the paper (Section III-B): options K, L, S, U, A, N.

An architecture id spells its options in a fixed order, e.g. ``K2-L1-Spost-Ubilinear-Arelu-Nbn``.
`parse` and `format_id` are the one pair that reads and writes it; file names, tables and plots
all use this id.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Option values, in the order the paper lists them. K=3 is the Figure 8 extension only.
BLOCKS = (1, 2)                                        # K: down/up block pairs
BLOCKS_EXTENDED = (3,)                                 # K=3: Figure 8, "maximum block count 3"
LAYERS = (1, 2)                                        # L: conv layers per up block
ORDERS = ("post", "pre")                               # S: post = conv-norm-act, pre = norm-act-conv
UPSAMPLINGS = ("nearest", "bilinear", "transposed")    # U: interpolation or ConvTranspose2d(k2, s2)
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")      # A
NORMALIZATIONS = ("none", "bn", "in")                  # N: none, BatchNorm, InstanceNorm

_OPTIONS = (("K", BLOCKS + BLOCKS_EXTENDED), ("L", LAYERS), ("S", ORDERS), ("U", UPSAMPLINGS),
            ("A", ACTIVATIONS), ("N", NORMALIZATIONS))
# No capturing groups: the same pattern constrains Snakemake's {arch} wildcard.
ID_PATTERN = "-".join(f"{letter}(?:{'|'.join(map(str, values))})" for letter, values in _OPTIONS)
_ID_RE = re.compile(ID_PATTERN)


@dataclass(frozen=True, order=True)
class Arch:
    blocks: int
    layers: int
    order: str
    upsampling: str
    activation: str
    normalization: str

    def __post_init__(self):
        for field, allowed in (
            ("blocks", BLOCKS + BLOCKS_EXTENDED), ("layers", LAYERS), ("order", ORDERS),
            ("upsampling", UPSAMPLINGS), ("activation", ACTIVATIONS),
            ("normalization", NORMALIZATIONS),
        ):
            if getattr(self, field) not in allowed:
                raise ValueError(f"architecture option {field}={getattr(self, field)!r} not in {allowed}")

    @property
    def id(self) -> str:
        return format_id(self)

    @property
    def family(self) -> str:
        """The options that set the spectrum most (U, A, N): used to group FLOP and speed figures."""
        return f"K{self.blocks}-L{self.layers}-U{self.upsampling}"


def format_id(arch: Arch) -> str:
    return (f"K{arch.blocks}-L{arch.layers}-S{arch.order}-U{arch.upsampling}"
            f"-A{arch.activation}-N{arch.normalization}")


def parse(arch_id: str) -> Arch:
    match = _ID_RE.fullmatch(arch_id)
    if match is None:
        raise ValueError(
            f"not an architecture id: {arch_id!r}; expected e.g. 'K2-L1-Spost-Ubilinear-Arelu-Nbn' "
            f"(pattern {ID_PATTERN})")
    k, layers, order, up, act, norm = (part[1:] for part in arch_id.split("-"))
    return Arch(int(k), int(layers), order, up, act, norm)


# Synthesis jobs (rule synthesize): one per *slice*, the 12 architectures that share K, L, S and U
# and differ in A and N. One process trains them one after another, so Python, torch and the pools
# load once per 12 architectures instead of once per architecture (README: "The synthetic models").
SLICE_MEMBERS = tuple(f"A{a}-N{n}" for a in ACTIVATIONS for n in NORMALIZATIONS)
SLICE_PATTERN = "-".join(ID_PATTERN.split("-")[:4])


def slice_id(arch: Arch) -> str:
    """The slice an architecture is trained in, e.g. ``K2-L1-Spost-Ubilinear``."""
    return format_id(arch).rsplit("-", 2)[0]


def slice_archs(slice_name: str) -> list[Arch]:
    """The architectures of a slice, in SLICE_MEMBERS order; an unknown slice is an error."""
    if re.fullmatch(SLICE_PATTERN, slice_name) is None:
        raise ValueError(f"not a slice id: {slice_name!r}; expected e.g. 'K2-L1-Spost-Ubilinear' "
                         f"(pattern {SLICE_PATTERN})")
    return [parse(f"{slice_name}-{member}") for member in SLICE_MEMBERS]


def space(blocks=BLOCKS) -> list[Arch]:
    """Every architecture with the given block counts, in a fixed order (K, L, S, U, A, N)."""
    return [Arch(*options) for options in itertools.product(
        blocks, LAYERS, ORDERS, UPSAMPLINGS, ACTIVATIONS, NORMALIZATIONS)]


# Ablation subsets (Tables II and IV): each keeps one value of the option it removes.
SUBSETS = {
    "all": lambda a: True,
    "wo_K": lambda a: a.blocks == 1,
    "wo_L": lambda a: a.layers == 1,
    "wo_S": lambda a: a.order == "post",
    "wo_U": lambda a: a.upsampling == "bilinear",
    "wo_A": lambda a: a.activation == "none",
    "wo_N": lambda a: a.normalization == "none",
}


def subset(name: str, archs: list[Arch] | None = None) -> list[Arch]:
    """The architectures of an ablation subset (default: the 288 of K in {1, 2})."""
    if name not in SUBSETS:
        raise ValueError(f"unknown architecture subset {name!r}; known: {sorted(SUBSETS)}")
    return [a for a in (space() if archs is None else archs) if SUBSETS[name](a)]


def max_blocks(k: int) -> list[Arch]:
    """Figure 8: architectures with at most k blocks (k=3 adds 144 architectures to the 288)."""
    return space(tuple(b for b in BLOCKS + BLOCKS_EXTENDED if b <= k))


def first_seeds(n: int, seeds: int) -> list[int]:
    """The seeds of Table V's n-seed variant out of a zoo of `seeds` seeds per architecture."""
    if not 1 <= n <= seeds:
        raise ValueError(f"Table V variant with {n} seeds needs 1 <= n <= {seeds} (the zoo's seeds)")
    return list(range(n))
