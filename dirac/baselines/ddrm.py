"""DDRM (Kawar et al. 2022, "Denoising Diffusion Restoration Models") in the variance-exploding form.

In the spectral basis of ``A = U diag(s) V^T`` (:mod:`.spectral`) with ``ȳ = diag(s)^+ U^T y``, ``x̄ = V^T x`` and
noise levels ``σ_1 > … > σ_N`` (then 0), every step denoises ``x̂0 = D(x_t, σ_t)`` and draws each coordinate
(paper eq. 7–8, VE form of App. B):

* ``s_i = 0``:                 ``x̄_{t−1} = x̄0 + √(1−η²) σ_{t−1} (x̄_t − x̄0)/σ_t + η σ_{t−1} ε``
* ``σ_{t−1} < σ_y/s_i``:       ``x̄_{t−1} = x̄0 + √(1−η²) σ_{t−1} (ȳ − x̄0)/(σ_y/s_i) + η σ_{t−1} ε``
* ``σ_{t−1} ≥ σ_y/s_i``:       ``x̄_{t−1} = (1−η_b) x̄0 + η_b ȳ + √(σ_{t−1}² − η_b² σ_y²/s_i²) ε``

starting from ``x̄_1 = ȳ + √(σ_1² − σ_y²/s_i²) ε`` where ``σ_1 ≥ σ_y/s_i`` and ``σ_1 ε`` elsewhere. The output
is the last ``x̂0`` (the step to σ = 0 returns it). One network evaluation per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..degradations.base import GeneratorLike, standard_normal
from .prior import Denoiser, sigma_batch
from .spectral import SpectralOperator

ZERO = 1e-6  # singular values below this (relative to the largest) count as 0: the measurement holds nothing there


def _noise(like: Tensor, generator: GeneratorLike) -> Tensor:
    return standard_normal(like.shape, generator, like.device, like.dtype)


def ddrm(
    denoiser: Denoiser,
    spec: SpectralOperator,
    y: Tensor,
    sigma_y: float,
    sigmas: Tensor,
    eta: float = 0.85,
    eta_b: float = 1.0,
    generator: GeneratorLike = None,
) -> Tensor:
    """DDRM restoration of ``y = A x + σ_y z`` on the decreasing noise grid ``sigmas`` (one NFE per level)."""
    s = spec.s.to(y)
    keep = s > ZERO * float(s.max())
    y_bar = torch.where(keep, spec.ut(y) / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(y))
    noise_of = torch.where(keep, sigma_y / torch.where(keep, s, torch.ones_like(s)), torch.full_like(s, float("inf")))
    sig = [float(v) for v in sigmas] + [0.0]
    informed = keep & (sig[0] >= noise_of)
    z = _noise(y, generator)
    x_bar = torch.where(informed, y_bar + (sig[0] ** 2 - noise_of.clamp_max(sig[0]) ** 2).sqrt() * z, sig[0] * z)
    x0 = y
    for t, (s_t, s_next) in enumerate(zip(sig[:-1], sig[1:], strict=True)):
        x0 = denoiser(spec.v_(x_bar), sigma_batch(s_t, y))
        if t == len(sig) - 2:
            break
        x0_bar, z = spec.vt(x0), _noise(y, generator)
        c = (1 - eta**2) ** 0.5 * s_next
        free = x0_bar + c * (x_bar - x0_bar) / s_t + eta * s_next * z
        below = x0_bar + c * (y_bar - x0_bar) / noise_of.clamp_min(1e-12) + eta * s_next * z
        var_above = (s_next**2 - eta_b**2 * noise_of.clamp_max(s_next) ** 2).clamp_min(0.0)
        above = (1 - eta_b) * x0_bar + eta_b * y_bar + var_above.sqrt() * z
        x_bar = torch.where(~keep, free, torch.where(s_next < noise_of, below, above))
    return x0
