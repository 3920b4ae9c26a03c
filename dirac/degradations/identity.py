"""Identity process ``A_t = I``: plain denoising diffusion with the geometric noise schedule."""

from __future__ import annotations

from torch import Tensor

from .base import DegradationProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule


class IdentityProcess(DegradationProcess):
    """``y_t = x0 + sigma(t) z``; trains the unconditional prior the DPS/DDRM/PnP baselines need."""

    kind = "identity"

    def __init__(self, noise: GeometricNoiseSchedule | None = None, schedule: SeveritySchedule | None = None):
        super().__init__(noise or GeometricNoiseSchedule(), schedule or SeveritySchedule.linear(0.0, 0.0))

    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        return x

    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        return y
