"""Noise schedules of the stochastic degradation process."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class GeometricNoiseSchedule:
    """Geometric noise level ``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t`` (the paper's σ(t), Sec. 3).

    ``sigma(1) = sigma_max`` is the measurement noise ``sigma_y``.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 0.05) -> None:
        if not (0.0 < sigma_min <= sigma_max):
            raise ValueError(
                f"noise schedule needs 0 < sigma_min <= sigma_max, got sigma_min={sigma_min}, "
                f"sigma_max={sigma_max}; set both to positive values (paper: 0.01 and 0.05)."
            )
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def __call__(self, t: Tensor) -> Tensor:
        """sigma(t) for a tensor of severities t in [0, 1]."""
        log_ratio = math.log(self.sigma_max / self.sigma_min)
        return self.sigma_min * torch.exp(t * log_ratio)

    @property
    def sigma_y(self) -> float:
        """The measurement noise level sigma(1)."""
        return self.sigma_max

    def to_dict(self) -> dict:
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    @classmethod
    def from_dict(cls, d: dict) -> GeometricNoiseSchedule:
        return cls(float(d["sigma_min"]), float(d["sigma_max"]))

    def __repr__(self) -> str:
        return f"GeometricNoiseSchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"
