"""Data-consistency guidance weights λ_t (paper Sec. 3.6).

The guidance term of a step from t to t' is
``g = −(σ(t)² − σ(t')²) · λ_t · ∇_{y_t} ‖y − A_1(Φθ(y_t, t))‖²``, a descent on the data-consistency error.
(The released reference code adds the gradient with a positive sign, which ascends it; we follow the maths.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor


class Guidance(ABC):
    """Chooses the per-sample step weight ``λ_t`` from the current residual norm ``‖y − A_1 x̂0‖``."""

    @abstractmethod
    def weight(self, residual_norm: Tensor, sigma_y: float) -> Tensor:
        """``λ_t`` as a ``(B,)`` tensor."""


class StdScaledGuidance(Guidance):
    """``λ_t = ρ / (2 σ_y²)`` (the likelihood weight of Gaussian measurement noise, scaled by ρ)."""

    kind = "std"

    def __init__(self, rho: float = 0.5) -> None:
        if rho < 0:
            raise ValueError(f"guidance strength rho must be >= 0, got {rho}")
        self.rho = float(rho)

    def weight(self, residual_norm: Tensor, sigma_y: float) -> Tensor:
        return residual_norm.new_full(residual_norm.shape, self.rho / (2.0 * sigma_y**2))


class ErrorScaledGuidance(Guidance):
    """``λ_t = ζ / ‖y − A_1(x̂0)‖`` per sample (DPS-style step size)."""

    kind = "error"

    def __init__(self, zeta: float = 1.0) -> None:
        if zeta < 0:
            raise ValueError(f"guidance strength zeta must be >= 0, got {zeta}")
        self.zeta = float(zeta)

    def weight(self, residual_norm: Tensor, sigma_y: float) -> Tensor:
        return self.zeta / residual_norm.clamp_min(1e-8)


def build_guidance(kind: str | None, strength: float) -> Guidance | None:
    """``kind`` in {None, "none", "std", "error"}; ``strength`` is ρ (std) or ζ (error)."""
    if kind not in (None, "none", "off", "std", "error"):
        raise ValueError(f"unknown guidance kind {kind!r}; choose 'none', 'std' (ρ) or 'error' (ζ)")
    if kind in (None, "none", "off") or strength == 0:
        return None
    return StdScaledGuidance(strength) if kind == "std" else ErrorScaledGuidance(strength)
