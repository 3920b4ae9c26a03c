"""Restorers for the peers on the same operators: Wiener, DDRM, DiffPIR, DPS (:mod:`dirac.baselines`) and the
supervised regressor. Each reads ``A_1`` and ``σ_y`` from the Dirac checkpoint's process, so every method sees
the very measurements Dirac sees."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..baselines.ddrm import ddrm
from ..baselines.diffpir import diffpir
from ..baselines.dps import dps
from ..baselines.prior import prior_denoiser, sigma_grid
from ..baselines.spectral import SpectralOperator, spectral_operator
from ..baselines.wiener import wiener
from ..degradations import DegradationProcess
from ..models.gaussian_prior import fit_gaussian_prior, gaussian_input, require_mask_process
from ..reconstruction import GeneratorLike, Reconstruction, Restorer


class _Spectral:
    """The exact SVD of ``A_1`` per image size, built on first use."""

    def __init__(self, process: DegradationProcess) -> None:
        self.process = process
        self._cache: dict[tuple, SpectralOperator] = {}

    def spectral(self, y: Tensor) -> SpectralOperator:
        key = (*y.shape[1:], str(y.device))
        if key not in self._cache:
            self._cache[key] = spectral_operator(self.process, tuple(y.shape[1:]), y.device)
        return self._cache[key]


class WienerRestorer(_Spectral, Restorer):
    """Wiener filter with noise-to-signal ratio ``nsr`` (:func:`dirac.baselines.wiener.wiener`)."""

    name = "wiener"

    def __init__(self, process: DegradationProcess, nsr: float) -> None:
        super().__init__(process)
        self.params = {"nsr": float(nsr)}

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        return Reconstruction(wiener(self.spectral(y), y, self.params["nsr"]))


class _PriorSampler(_Spectral, Restorer):
    """A diffusion peer on the unconditional prior: ``steps`` noise levels from the prior's σ_max down to
    ``sigma_min`` (Karras ρ = 7 grid), one network evaluation each."""

    def __init__(self, process: DegradationProcess, prior: nn.Module, steps: int, sigma_min: float | None, **params):
        super().__init__(process)
        self.denoiser, prior_min, self.sigma_max = prior_denoiser(prior)
        self.prior = prior
        self.steps = int(steps)
        self.sigmas = sigma_grid(self.steps, self.sigma_max, float(sigma_min or prior_min))
        self.params: dict[str, Any] = {"steps": self.steps, **params}

    @property
    def stochastic(self) -> bool:
        return True

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        with torch.no_grad():
            x = self.restore(y, generator)
        return Reconstruction(x, nfe=self.steps)

    def restore(self, y: Tensor, generator: GeneratorLike) -> Tensor:
        raise NotImplementedError


class DdrmRestorer(_PriorSampler):
    """DDRM (:func:`dirac.baselines.ddrm.ddrm`) with ``eta`` and ``eta_b``."""

    name = "ddrm"

    def __init__(self, process, prior, steps=20, eta=0.85, eta_b=1.0, sigma_min=None) -> None:
        super().__init__(process, prior, steps, sigma_min, eta=float(eta), eta_b=float(eta_b))

    def restore(self, y: Tensor, generator: GeneratorLike) -> Tensor:
        p, spec = self.params, self.spectral(y)
        return ddrm(self.denoiser, spec, y, self.process.sigma_y, self.sigmas, p["eta"], p["eta_b"], generator)


class DiffPirRestorer(_PriorSampler):
    """DiffPIR (:func:`dirac.baselines.diffpir.diffpir`) with ``lam`` and ``zeta``."""

    name = "diffpir"

    def __init__(self, process, prior, steps=20, lam=7.0, zeta=0.3, sigma_min=None) -> None:
        super().__init__(process, prior, steps, sigma_min, lam=float(lam), zeta=float(zeta))

    def restore(self, y: Tensor, generator: GeneratorLike) -> Tensor:
        p, spec = self.params, self.spectral(y)
        return diffpir(self.denoiser, spec, y, self.process.sigma_y, self.sigmas, p["lam"], p["zeta"], generator)


class DpsRestorer(_PriorSampler):
    """DPS (:func:`dirac.baselines.dps.dps`) with step size ``zeta``; needs only ``A_1`` (no SVD)."""

    name = "dps"

    def __init__(self, process, prior, steps=50, zeta=1.0, sigma_min=None) -> None:
        super().__init__(process, prior, steps, sigma_min, zeta=float(zeta))

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        return Reconstruction(self.restore(y, generator), nfe=self.steps, extras={"backward_passes": self.steps})

    def restore(self, y: Tensor, generator: GeneratorLike) -> Tensor:
        severity = self.process.severity(1.0, y.shape[0], like=y)
        return dps(self.denoiser, lambda x: self.process.apply(x, severity), y, self.sigmas, self.params["zeta"],
                   generator)  # fmt: skip


class GaussianPriorRestorer(Restorer):
    """The learned linear peer: the posterior mean ``μ + Σ M (M Σ M + σ_y² I)⁻¹ (y − m ⊙ μ)`` under a Gaussian prior
    fitted on the Dirac checkpoint's training images, its covariance shrunk toward a smoothness covariance
    (:mod:`dirac.models.gaussian_prior`; mask processes at the training size)."""

    name = "gaussian"

    def __init__(self, process: DegradationProcess, images: Tensor, shrinkage: float, smoothness: float) -> None:
        require_mask_process(process)
        self.process = process
        self.mean, self.cov = fit_gaussian_prior(images, shrinkage, smoothness)
        self.params: dict[str, Any] = {"shrinkage": float(shrinkage), "smoothness": float(smoothness)}

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        ones = torch.ones(len(y), device=y.device)
        x = gaussian_input(self.process, y, ones, self.mean.to(y.device), self.cov.to(y.device))
        return Reconstruction(x, extras=dict(self.params))  # type: ignore[arg-type]


class RegressorRestorer(Restorer):
    """The supervised end-to-end regressor: ``x̂ = Φθ(y, t = 1)`` with a network trained only at t = 1 (MSE)."""

    name = "regressor"

    def __init__(self, process: DegradationProcess, model: nn.Module) -> None:
        self.process, self.model = process, model
        self.params: dict[str, Any] = {}

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        with torch.no_grad():
            return Reconstruction(self.model(y, 1.0), nfe=1)
