"""Adapter from a σ-conditioned network to the ``Φθ(y_t, t)`` callable the loss and sampler use."""

from __future__ import annotations

from torch import Tensor, nn

from ..degradations.base import TimeLike, batch_times
from ..degradations.noise import GeometricNoiseSchedule


class Reconstructor(nn.Module):
    """``Φθ(y_t, t) = net(y_t, σ(t))`` (paper eq. 11 with the reference's σ conditioning)."""

    def __init__(self, net: nn.Module, noise: GeometricNoiseSchedule) -> None:
        super().__init__()
        self.net = net
        self.noise = noise

    def forward(self, y: Tensor, t: TimeLike) -> Tensor:
        return self.net(y, self.noise(batch_times(t, y.shape[0], y)))
