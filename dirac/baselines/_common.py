"""Helpers shared by the classical baselines (private): operators at a fixed t, initial guesses, λ sweeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from dirac.degradations import DegradationProcess, check_images


def default_lambdas(lo: float, hi: float, per_decade: int = 4) -> tuple[float, ...]:
    """Log-spaced grid from ``10**lo`` to ``10**hi`` with ``per_decade`` points per decade (both ends kept)."""
    n = round((hi - lo) * per_decade) + 1
    return tuple(float(v) for v in torch.logspace(lo, hi, n, dtype=torch.float64))


def operators(
    proc: DegradationProcess, y: Tensor, t: float | Tensor
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """``A_t`` and ``A_t^T`` of ``proc`` as closures with the per-sample severity evaluated once."""
    check_images(y, "y")
    severity = proc.severity(t, y.shape[0], like=y)

    def forward(x: Tensor) -> Tensor:
        return proc.apply(x, severity)

    def adjoint(v: Tensor) -> Tensor:
        return proc.apply_adjoint(v, severity)

    return forward, adjoint


def initial_guess(proc: DegradationProcess, y: Tensor, adjoint: Callable[[Tensor], Tensor]) -> Tensor:
    """``y`` itself when ``A`` keeps the image shape (a good start for blur and masks), else ``A^T y``."""
    if tuple(proc.output_shape(tuple(y.shape))) == tuple(y.shape):
        return y.clone()
    return adjoint(y)


def sweep_lambdas(
    solve: Callable[[float], Tensor], x_true: Tensor, lambdas: Iterable[float]
) -> tuple[float, dict[float, float], Tensor]:
    """Run ``solve(λ)`` for every λ and keep the one with the best mean PSNR against ``x_true``.

    Returns ``(best λ, {λ: mean PSNR in dB}, reconstruction at the best λ)``. PSNR is
    :func:`dirac.metrics.psnr` (estimates clamped to [0, 1], data range 1); the reconstruction is returned
    unclamped. Ties keep the first (smallest listed) λ.
    """
    from dirac.metrics.fidelity import psnr

    scores: dict[float, float] = {}
    best_lam, best_score, best_x = None, -float("inf"), None
    for lam in lambdas:
        lam = float(lam)
        x = solve(lam)
        score = float(psnr(x, x_true).mean())
        scores[lam] = score
        if score > best_score:
            best_lam, best_score, best_x = lam, score, x
    if best_x is None:
        raise ValueError("lambdas must contain at least one value (and give a finite PSNR)")
    return best_lam, scores, best_x


def check_truth(x_true: Tensor, y: Tensor) -> None:
    check_images(x_true, "x_true")
    if x_true.shape[0] != y.shape[0]:
        raise ValueError(f"x_true and y must have the same batch size, got {x_true.shape[0]} and {y.shape[0]}")
    if not bool(torch.isfinite(x_true).all()):
        raise ValueError("x_true contains non-finite values")
