"""modelfp: Model Synthesis for Zero-Shot Model Attribution (Yang et al., IEEE TMM 2025)."""

__version__ = "0.1.0"
