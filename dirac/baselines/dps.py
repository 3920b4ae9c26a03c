"""DPS (Chung et al. 2023, "Diffusion Posterior Sampling for General Noisy Inverse Problems"), VE form.

On noise levels ``σ_1 > … > σ_N`` (then 0), each step: ``x̂0 = D(x_t, σ_t)`` with the graph kept; the
unconditional ancestral step ``x' = x̂0 + (σ_{t−1}²/σ_t²)(x_t − x̂0) + σ_{t−1} √(1 − σ_{t−1}²/σ_t²) ε`` (the exact
posterior of the VE forward process); then the likelihood step of Alg. 1 with the step size normalised by the
residual, ``x_{t−1} = x' − ζ ∇_{x_t} ‖y − A x̂0‖`` (= ``ζ/(2‖y − A x̂0‖) ∇‖y − A x̂0‖²``, i.e. the paper's
``ζ_i = ζ'/‖y − A x̂0‖`` with ζ' = ζ/2). Starts from ``x_1 = σ_1 ε``; returns the last ``x̂0``. One forward
and one backward pass per step; only ``A`` is needed (no SVD).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..degradations.base import GeneratorLike, standard_normal
from .prior import Denoiser, sigma_batch


def dps(
    denoiser: Denoiser,
    forward: Callable[[Tensor], Tensor],
    y: Tensor,
    sigmas: Tensor,
    zeta: float = 1.0,
    generator: GeneratorLike = None,
) -> Tensor:
    """DPS restoration of ``y`` with the operator ``forward = A`` on the decreasing grid ``sigmas``."""
    if zeta < 0:
        raise ValueError(f"the DPS step size zeta must be >= 0, got {zeta}")
    sig = [float(v) for v in sigmas] + [0.0]
    x = sig[0] * standard_normal(y.shape, generator, y.device, y.dtype)
    x0 = y
    for s_t, s_next in zip(sig[:-1], sig[1:], strict=True):
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            x0 = denoiser(x_in, sigma_batch(s_t, y))
            residual = (y - forward(x0)).flatten(1).norm(dim=1)
            (grad,) = torch.autograd.grad(residual.sum(), x_in)
        x0 = x0.detach()
        if s_next == 0.0:
            break
        ratio = s_next**2 / s_t**2
        z = standard_normal(y.shape, generator, y.device, y.dtype)
        x = x0 + ratio * (x - x0) + s_next * (1 - ratio) ** 0.5 * z - zeta * grad
    return x0
