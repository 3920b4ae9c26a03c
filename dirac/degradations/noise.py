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


def check_measurement_noise(sigma_y: float | None, noise: GeometricNoiseSchedule, checkpoint: str) -> float | None:
    """``sampler.noise_sigma`` checked against what the checkpoint was trained for: ``0 <= sigma_y <= sigma(1)``.

    A measurement with ``sigma_y <= sigma(1)`` becomes exactly an SDP sample at t = 1 by :func:`top_up_noise`; a
    noisier one was never seen in training. ``None`` (the default) means ``sigma_y = sigma(1)``.
    """
    if sigma_y is None:
        return None
    hi = noise.sigma_y
    if isinstance(sigma_y, bool) or not isinstance(sigma_y, (int, float)) or not (0.0 <= float(sigma_y) <= hi):
        raise ValueError(
            f"sampler.noise_sigma={sigma_y!r} is outside what checkpoint {checkpoint} was trained for: measurement "
            f"noise in [0, {hi:g}] (its sigma(1); training covered sigma in [{noise.sigma_min:g}, {hi:g}]); "
            f"use a value in that range or a checkpoint trained with degradation.noise.sigma_max >= {sigma_y}"
        )
    return float(sigma_y)


def top_up_noise(y: Tensor, sigma_y: float, sigma_target: float, generator: torch.Generator | None = None) -> Tensor:
    """``y + sqrt(sigma_target² − sigma_y²) z``: a measurement of noise ``sigma_y`` made as noisy as the SDP at t = 1
    (the sum of independent Gaussians is exactly ``N(A x, sigma_target² I)``)."""
    if sigma_y > sigma_target:
        raise ValueError(f"cannot lower the noise of a measurement: sigma_y={sigma_y} > sigma(1)={sigma_target}")
    extra = math.sqrt(max(sigma_target**2 - sigma_y**2, 0.0))
    if extra == 0.0:
        return y
    device = generator.device if generator is not None else y.device
    return y + extra * torch.randn(y.shape, generator=generator, device=device, dtype=y.dtype).to(y.device)
