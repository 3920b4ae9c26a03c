"""Wiener filter in the exact SVD basis of the operator (closed form, no boundary approximation).

The textbook deconvolution filter ``X̂(f) = H*(f) / (|H(f)|² + K) · Y(f)`` with a constant noise-to-signal ratio
``K`` (white signal spectrum), written for ``A = U diag(s) V^T`` instead of the FFT (our blur has a reflect
boundary, not a periodic one) and applied around the image's mean level ``μ`` (the least-squares constant,
``μ = ⟨A 1, y⟩ / ‖A 1‖²`` per image and channel), so masked pixels fall back to ``μ`` instead of 0:

    x̂ = μ 1 + V diag(s / (s² + K)) U^T (y − μ A 1)   =   μ 1 + (A^T A + K I)^{-1} A^T (y − μ A 1).

``K`` is tuned on the validation split (``METHODS["wiener"]``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .spectral import SpectralOperator

WIENER_NSR = tuple(float(v) for v in torch.logspace(-4, 0, 17, dtype=torch.float64))


def mean_level(spec: SpectralOperator, y: Tensor) -> Tensor:
    """``μ = ⟨A 1, y⟩ / ‖A 1‖²`` per image and channel, ``(B, C, 1, 1)``."""
    a1 = spec.forward(torch.ones_like(y))
    return (a1 * y).sum((2, 3), keepdim=True) / (a1 * a1).sum((2, 3), keepdim=True).clamp_min(1e-12)


def wiener(spec: SpectralOperator, y: Tensor, nsr: float) -> Tensor:
    """``μ + V diag(s/(s² + K)) U^T (y − μ A 1)`` with ``K = nsr`` > 0 (see the module docstring)."""
    if not nsr > 0:
        raise ValueError(f"the Wiener noise-to-signal ratio must be positive, got {nsr}")
    mu = mean_level(spec, y)
    base = mu * torch.ones_like(y)
    resid = spec.ut(y - spec.forward(base))
    return base + spec.v_(spec.s / (spec.s**2 + nsr) * resid)
