"""modelfp: Model Synthesis for Zero-Shot Model Attribution (Yang et al., IEEE TMM 2025)."""

__version__ = "0.1.0"

# The Python API for people (`from modelfp import Attributor`), imported on first use: torch loads
# with it, and neither command line (`modelfp`, `python -m modelfp.steps`) may pay for it at start-up.
_API = ("Attributor", "Identification", "Candidate", "Verification", "GalleryUpdate", "Gallery")


def __getattr__(name):
    if name in _API:
        from . import attributor
        return getattr(attributor, name)
    raise AttributeError(f"module 'modelfp' has no attribute {name!r}")
