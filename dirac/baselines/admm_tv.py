"""Total-variation reconstruction by ADMM on the SDP's own operators.

``x̂ = argmin_x ½ ‖A_1 x − y‖² + λ TV(x)`` with the split ``z = D x`` (``D``: Neumann forward differences,
:mod:`.linalg`) and the scaled-form ADMM iteration, for a fixed number of iterations, batched over images:

* x-update: ``(A^T A + ρ D^T D) x = A^T y + ρ D^T (z − u)`` by a few warm-started CG steps
  (inexact ADMM; ``cg_iterations``) with the process's ``apply``/``apply_adjoint``;
* z-update: shrinkage of ``v = D x + u`` with threshold ``λ / ρ``;
* dual update: ``u ← v − z``.

TV variants (``isotropic=``):

* isotropic (default): ``TV(x) = Σ_c Σ_pixels sqrt((∂_h x_c)² + (∂_w x_c)²)``, each colour channel on its
  own (no coupling between channels); z-update = group (2-vector) soft thresholding per pixel and channel;
* anisotropic: ``TV(x) = Σ |∂_h x| + |∂_w x|``; z-update = entrywise soft thresholding.

Sums (not means) over pixels define the objective, so λ is on the scale of one pixel's squared error.
The penalty ``ρ`` defaults to ``rho_scale · λ`` (the threshold λ/ρ is then fixed at ``1 / rho_scale``
per gradient entry in the first iterations); λ and ρ may be floats or per-sample ``(B,)`` tensors.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from dirac.degradations import DegradationProcess

from ._common import check_truth, default_lambdas, initial_guess, operators, sweep_lambdas
from .linalg import conjugate_gradient, gradient, gradient_adjoint, per_sample

__all__ = ["TV_LAMBDAS", "admm_tv", "best_lambda_tv", "shrink", "total_variation", "tv_objective"]

TV_LAMBDAS = default_lambdas(-3.0, 0.0)


def total_variation(x: Tensor, isotropic: bool = True) -> Tensor:
    """Per-image total variation with Neumann forward differences (see the module docstring) -> ``(B,)``."""
    g = gradient(x)
    if isotropic:
        return g.square().sum(dim=2).sqrt().flatten(1).sum(dim=1)
    return g.abs().flatten(1).sum(dim=1)


def shrink(v: Tensor, threshold: Tensor, isotropic: bool = True) -> Tensor:
    """Proximal map of ``threshold · ‖·‖`` on gradient fields ``(B, C, 2, H, W)``.

    Isotropic: group soft thresholding of each 2-vector ``v_p ← max(1 − τ / |v_p|, 0) v_p``;
    anisotropic: entrywise ``sign(v) max(|v| − τ, 0)``. ``threshold`` broadcasts against ``v``.
    """
    if isotropic:
        norm = v.square().sum(dim=2, keepdim=True).sqrt()
        scale = (1 - threshold / norm.clamp_min(torch.finfo(v.dtype).tiny)).clamp_min(0.0)
        return scale * v
    return v.sign() * (v.abs() - threshold).clamp_min(0.0)


def tv_objective(
    proc: DegradationProcess,
    x: Tensor,
    y: Tensor,
    lam: float | Tensor,
    isotropic: bool = True,
    t: float | Tensor = 1.0,
) -> Tensor:
    """Per-image objective ``½ ‖A_t x − y‖² + λ TV(x)`` -> ``(B,)``."""
    forward, _ = operators(proc, y, t)
    lam_b = per_sample(lam, y.shape[0], y).flatten()
    return 0.5 * (forward(x) - y).square().flatten(1).sum(dim=1) + lam_b * total_variation(x, isotropic)


def admm_tv(
    proc: DegradationProcess,
    y: Tensor,
    lam: float | Tensor,
    iterations: int = 100,
    rho: float | Tensor | None = None,
    rho_scale: float = 10.0,
    isotropic: bool = True,
    cg_iterations: int = 10,
    cg_tol: float = 1e-6,
    t: float | Tensor = 1.0,
    x_init: Tensor | None = None,
    return_history: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """ADMM-TV reconstruction of a batch of measurements ``y`` (see the module docstring).

    Args:
        proc: the degradation process whose ``A_t`` (default t = 1) is inverted.
        y: measurements ``(B, C, H, W)``.
        lam: TV weight λ > 0, float or ``(B,)``.
        iterations: number of ADMM iterations (fixed; no early exit).
        rho: ADMM penalty; default ``rho_scale · λ``.
        isotropic: isotropic (default) or anisotropic TV.
        cg_iterations, cg_tol: CG budget of each x-update (warm-started from the previous x).
        x_init: starting point; default ``y`` (or ``A^T y`` if ``A`` changes the shape).
        return_history: also return the objective ``(B, iterations + 1)`` at the start and after each x-update.

    Returns the unclamped estimate ``x`` (and the objective history when asked).
    """
    if iterations < 0 or cg_iterations < 1:
        raise ValueError(f"need iterations >= 0 and cg_iterations >= 1, got {iterations}, {cg_iterations}")
    forward, adjoint = operators(proc, y, t)
    b = y.shape[0]
    lam_b = per_sample(lam, b, y)
    if bool((lam_b <= 0).any()):
        raise ValueError("the TV weight λ must be positive")
    rho_b = rho_scale * lam_b if rho is None else per_sample(rho, b, y)
    if bool((rho_b <= 0).any()):
        raise ValueError("the ADMM penalty rho must be positive")
    thresh = (lam_b / rho_b)[..., None]  # broadcasts against gradient fields (B, C, 2, H, W)

    def normal(x: Tensor) -> Tensor:
        return adjoint(forward(x)) + rho_b * gradient_adjoint(gradient(x))

    aty = adjoint(y)
    x = initial_guess(proc, y, adjoint) if x_init is None else x_init.clone()
    z = gradient(x)
    u = torch.zeros_like(z)
    history = [tv_objective(proc, x, y, lam, isotropic, t)] if return_history else []
    for _ in range(iterations):
        rhs = aty + rho_b * gradient_adjoint(z - u)
        x, _ = conjugate_gradient(normal, rhs, x0=x, tol=cg_tol, max_iter=cg_iterations)
        v = gradient(x) + u
        z = shrink(v, thresh, isotropic)
        u = v - z
        if return_history:
            history.append(tv_objective(proc, x, y, lam, isotropic, t))
    return (x, torch.stack(history, dim=1)) if return_history else x


def best_lambda_tv(
    proc: DegradationProcess,
    x_true: Tensor,
    y: Tensor,
    lambdas: Iterable[float] = TV_LAMBDAS,
    **kwargs,
) -> tuple[float, dict[float, float], Tensor]:
    """Oracle λ selection for :func:`admm_tv`: the single λ with the best mean PSNR against ``x_true``.

    Uses the ground truth, so the result is an **oracle upper bound** for this baseline (one λ for the
    whole batch, picked on the evaluated images). Default grid: 10^-3 .. 10^0, four points per decade.
    Extra keyword arguments go to :func:`admm_tv`.

    Returns ``(best_lambda, {λ: mean PSNR dB}, reconstruction at best_lambda)``.
    """
    check_truth(x_true, y)

    def solve(lam: float) -> Tensor:
        return admm_tv(proc, y, lam, **kwargs)

    return sweep_lambdas(solve, x_true, lambdas)
