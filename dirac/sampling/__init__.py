"""Reverse sampling: the DiracDiffusion sampler, guidance rules, early stopping and trajectories."""

from .guidance import ErrorScaledGuidance, Guidance, StdScaledGuidance, build_guidance
from .sampler import OUTPUTS, STEP_TYPES, ReverseSampler, SamplerOutput, data_consistency, time_grid

__all__ = [
    "ErrorScaledGuidance",
    "Guidance",
    "OUTPUTS",
    "ReverseSampler",
    "STEP_TYPES",
    "SamplerOutput",
    "StdScaledGuidance",
    "build_guidance",
    "data_consistency",
    "time_grid",
]
