"""DiffPIR (Zhu et al. 2023, "Denoising Diffusion Models for Plug-and-Play Image Restoration"), VE form.

On noise levels ``σ_1 > … > σ_N`` (then 0), each step: denoise ``x̂0 = D(x_t, σ_t)``; solve the data
sub-problem ``x̂0' = argmin_x ‖y − A x‖² + ρ_t ‖x − x̂0‖²`` with ``ρ_t = λ σ_y² / σ_t²`` (paper eq. 13), exactly in
the SVD basis: ``V^T x̂0' = (s ⊙ U^T y + ρ_t V^T x̂0) / (s² + ρ_t)``; then re-noise with the effective noise
``ε̂ = (x_t − x̂0') / σ_t`` mixed with fresh noise (eq. 15): ``x_{t−1} = x̂0' + σ_{t−1} (√(1−ζ) ε̂ + √ζ ε)``.
Starts from ``x_1 = σ_1 ε``; returns the last ``x̂0'``. One network evaluation per step; λ and ζ are tuned.
"""

from __future__ import annotations

from torch import Tensor

from ..degradations.base import GeneratorLike, standard_normal
from .prior import Denoiser, sigma_batch
from .spectral import SpectralOperator


def data_proximal(spec: SpectralOperator, y: Tensor, x0: Tensor, rho: float) -> Tensor:
    """``argmin_x ‖y − A x‖² + ρ ‖x − x0‖²`` in closed form (``ρ > 0``)."""
    s = spec.s.to(y)
    return spec.v_((s * spec.ut(y) + rho * spec.vt(x0)) / (s**2 + rho))


def diffpir(
    denoiser: Denoiser,
    spec: SpectralOperator,
    y: Tensor,
    sigma_y: float,
    sigmas: Tensor,
    lam: float = 7.0,
    zeta: float = 0.3,
    generator: GeneratorLike = None,
) -> Tensor:
    """DiffPIR restoration of ``y = A x + σ_y z`` on the decreasing grid ``sigmas`` (one NFE per level)."""
    if lam <= 0 or not 0 <= zeta <= 1:
        raise ValueError(f"DiffPIR needs lam > 0 and zeta in [0, 1], got lam={lam}, zeta={zeta}")
    sig = [float(v) for v in sigmas] + [0.0]
    x = sig[0] * standard_normal(y.shape, generator, y.device, y.dtype)
    x0 = y
    for s_t, s_next in zip(sig[:-1], sig[1:], strict=True):
        x0 = data_proximal(spec, y, denoiser(x, sigma_batch(s_t, y)), lam * sigma_y**2 / s_t**2)
        if s_next == 0.0:
            break
        eps_hat = (x - x0) / s_t
        z = standard_normal(y.shape, generator, y.device, y.dtype)
        x = x0 + s_next * ((1 - zeta) ** 0.5 * eps_hat + zeta**0.5 * z)
    return x0
