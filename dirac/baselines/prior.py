"""The unconditional prior the diffusion peers share: a variance-exploding denoiser and its noise grid.

Parametrisation (``experiment=prior_photos`` / ``prior_faces``): images in [0, 1], ``x_σ = x + σ z``, and the
network trained on the identity SDP predicts ``D(x_σ, σ) ≈ E[x | x_σ]`` for σ in ``[σ_min, σ_max]``
(``Reconstructor.at_sigma``). Conversions the peers use: score ``∇ log p_σ(x) = (D(x, σ) − x) / σ²``; DDPM's
``ε̂ = (x − D(x, σ)) / σ``; a DDPM ``ᾱ`` corresponds to ``σ² = (1 − ᾱ) / ᾱ`` after scaling by ``1/√ᾱ``, so the
DDPM-form algorithms (DPS, DDRM, DiffPIR) are written here directly in this VE form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""``D(x, σ) -> x̂0`` for images ``(B, C, H, W)`` and noise levels ``(B,)``."""


def sigma_grid(steps: int, sigma_max: float, sigma_min: float, rho: float = 7.0) -> Tensor:
    """``σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ``, i = 0…N−1 (Karras et al. 2022, eq. 5),
    decreasing, float64. One step gives ``[σ_max]``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min} and {sigma_max}")
    if steps == 1:
        return torch.tensor([float(sigma_max)], dtype=torch.float64)
    i = torch.linspace(0, 1, steps, dtype=torch.float64)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (a + i * (b - a)) ** rho


def prior_denoiser(prior: nn.Module) -> tuple[Denoiser, float, float]:
    """``(D, σ_min, σ_max)`` from a ``Reconstructor`` trained on the identity process (its noise range)."""
    noise = getattr(prior, "noise", None)
    if not hasattr(prior, "at_sigma") or noise is None:
        raise ValueError("the prior must be a Reconstructor (dirac.factory.load_checkpoint) of an identity-process run")
    return prior.at_sigma, float(noise.sigma_min), float(noise.sigma_max)


def sigma_batch(sigma: float | Tensor, like: Tensor) -> Tensor:
    """A noise level as a ``(B,)`` tensor on ``like``'s device and dtype."""
    return torch.full((like.shape[0],), float(sigma), dtype=like.dtype, device=like.device)
