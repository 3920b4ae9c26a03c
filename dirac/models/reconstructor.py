"""Adapter from a σ-conditioned network to the ``Φθ(y_t, t)`` callable the loss and sampler use."""

from __future__ import annotations

from torch import Tensor, nn

from ..degradations.base import TimeLike, batch_times
from ..degradations.noise import GeometricNoiseSchedule
from ..tiling import crop, pad_to_multiple


class Reconstructor(nn.Module):
    """``Φθ(y_t, t) = net(y_t, σ(t))`` (paper eq. 11 with the reference's σ conditioning).

    Any image size: ``y_t`` is reflect-padded on the bottom/right to the network's multiple
    (``net.config.downsample_factor``) and the prediction cropped back exactly.
    """

    def __init__(self, net: nn.Module, noise: GeometricNoiseSchedule) -> None:
        super().__init__()
        self.net = net
        self.noise = noise

    @property
    def multiple(self) -> int:
        """Side lengths the network takes are multiples of this."""
        return int(getattr(getattr(self.net, "config", None), "downsample_factor", 1))

    def forward(self, y: Tensor, t: TimeLike) -> Tensor:
        return self.at_sigma(y, self.noise(batch_times(t, y.shape[0], y)))

    def at_sigma(self, y: Tensor, sigma: TimeLike) -> Tensor:
        """``net(y, σ)`` for a noise level given directly (a denoiser ``D(x, σ)`` when trained on the identity
        process: the unconditional prior of DPS, DDRM and DiffPIR), with the same padding as :meth:`forward`."""
        sigma = batch_times(sigma, y.shape[0], y)
        if self.multiple == 1:
            return self.net(y, sigma)
        padded, box = pad_to_multiple(y, self.multiple)
        return crop(self.net(padded, sigma), box)
