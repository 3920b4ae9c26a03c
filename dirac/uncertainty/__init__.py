"""Measured uncertainty of restorers: Gaussian patch statistics for the uncertainty–perception plane
(:mod:`.gaussian`) and calibration / hallucination of pixelwise posterior std maps (:mod:`.calibration`)."""

from .calibration import coverage, finite_sample_coverage, gaussian_coverage, gaussian_explained, hallucination
from .gaussian import (
    entropy_power,
    eta,
    extract_patches,
    gaussian_fit,
    patch_entropy_power,
    patch_renyi_half,
    renyi_half,
)

__all__ = [
    "coverage",
    "entropy_power",
    "eta",
    "extract_patches",
    "finite_sample_coverage",
    "gaussian_coverage",
    "gaussian_explained",
    "gaussian_fit",
    "hallucination",
    "patch_entropy_power",
    "patch_renyi_half",
    "renyi_half",
]
