"""Adapter from a σ-conditioned network to the ``Φθ(y_t, t)`` callable the loss and sampler use."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..baselines.tikhonov import tikhonov
from ..degradations.base import DegradationProcess, TimeLike, batch_times
from ..degradations.noise import GeometricNoiseSchedule
from ..tiling import crop, pad_to_multiple
from .gaussian_prior import gaussian_input, require_mask_process
from .ncsnpp import GAUSSIAN_INPUTS

# CG tolerance of the Tikhonov input: 1e-3 is within 0.01 dB of the converged solve (1e-5) on the blur
# validation crops at half the iterations (16 against 34; measured with blur_default's process).
TIKHONOV_INPUT_TOL = 1e-3
TIKHONOV_INPUT_MAX_ITER = 100


def tikhonov_input(process: DegradationProcess, y: Tensor, t: Tensor, lam_final: float) -> Tensor:
    """``argmin_x ‖A_t x − y_t‖² + λ(t) ‖Δx‖²`` with ``λ(t) = λ₁ (σ(t)/σ_y)²``: the deconvolved image a
    ``model.input=tikhonov`` network refines (Laplacian regulariser, batched CG, dirac.baselines.tikhonov).

    λ grows with the noise variance as the MAP weight of a Gaussian smoothness prior does, so one λ₁ (the
    validation-chosen Tikhonov λ at t = 1) serves every t. A deep-unrolling idea (one data step, then a learned
    refiner; Zhang et al. 2017 IRCNN, Dong et al. 2020 DWDN) on the SDP's own operator, reflect boundary included.
    """
    sigma = process.sigma(t).to(y)
    lam = lam_final * (sigma / process.sigma_y) ** 2
    return tikhonov(process, y, lam, t=t, tol=TIKHONOV_INPUT_TOL, max_iter=TIKHONOV_INPUT_MAX_ITER)


class Reconstructor(nn.Module):
    """``Φθ(y_t, t) = net(y_t, σ(t))`` (paper eq. 11 with the reference's σ conditioning).

    Any image size: ``y_t`` is reflect-padded on the bottom/right to the network's multiple
    (``net.config.downsample_factor``) and the prediction cropped back exactly. A network configured with
    ``input="tikhonov"`` gets :func:`tikhonov_input` of ``y_t`` instead, one configured with ``input="gaussian"``
    the :func:`~dirac.models.gaussian_prior.gaussian_input` estimate, one with ``input="tikhonov_gaussian"`` both
    stacked on the channel axis (``process`` is then required).
    """

    def __init__(
        self, net: nn.Module, noise: GeometricNoiseSchedule, process: DegradationProcess | None = None
    ) -> None:
        super().__init__()
        self.net = net
        self.noise = noise
        if self.input != "measurement":
            if process is None:
                raise ValueError(f"a network with model.input={self.input} needs the degradation process")
            if type(process).draw is not DegradationProcess.draw:
                raise ValueError(
                    f"model.input={self.input} needs fixed operators; the {process.kind} process draws new ones "
                    "for every batch: use model.input=measurement"
                )
            if self.input in GAUSSIAN_INPUTS:
                require_mask_process(process, self.input)
        self.process = process

    @property
    def input(self) -> str:
        """What the network sees: its config's ``input`` (``"measurement"``, i.e. y_t, by default)."""
        return getattr(getattr(self.net, "config", None), "input", "measurement")

    @property
    def multiple(self) -> int:
        """Side lengths the network takes are multiples of this."""
        return int(getattr(getattr(self.net, "config", None), "downsample_factor", 1))

    def forward(self, y: Tensor, t: TimeLike) -> Tensor:
        t = batch_times(t, y.shape[0], y)
        if self.input != "measurement":  # CG / Cholesky solves: float32+ even under mixed precision (bf16 stalls)
            with torch.autocast(y.device.type, enabled=False):
                y = self._estimates(y, t)
        return self._padded(y, self.noise(t))

    def _estimates(self, y: Tensor, t: Tensor) -> Tensor:
        """The estimates of ``x0`` from ``y_t`` the network refines, stacked on the channel axis."""
        cfg, net = self.net.config, self.net
        out = []
        if self.input in ("tikhonov", "tikhonov_gaussian"):
            out.append(tikhonov_input(self.process, y.float(), t.float(), cfg.tikhonov_lambda).to(y.dtype))
        if self.input in GAUSSIAN_INPUTS:
            out.append(gaussian_input(self.process, y, t, net.prior_mean, net.prior_cov, self.input))
        return torch.cat(out, dim=1)

    def at_sigma(self, y: Tensor, sigma: TimeLike) -> Tensor:
        """``net(y, σ)`` for a noise level given directly (a denoiser ``D(x, σ)`` when trained on the identity
        process: the unconditional prior of DPS, DDRM and DiffPIR), with the same padding as :meth:`forward`."""
        if self.input != "measurement":
            raise ValueError(f"a model.input={self.input} network is not a denoiser D(x, σ); use a prior checkpoint")
        return self._padded(y, sigma)

    def _padded(self, y: Tensor, sigma: TimeLike) -> Tensor:
        sigma = batch_times(sigma, y.shape[0], y)
        if self.multiple == 1:
            return self.net(y, sigma)
        padded, box = pad_to_multiple(y, self.multiple)
        return crop(self.net(padded, sigma), box)
