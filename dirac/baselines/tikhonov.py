"""Tikhonov-regularised least squares on the SDP's own operators (a Wiener-like linear baseline).

``x̂ = argmin_x ‖A_1 x − y‖² + λ ‖L x‖²``, i.e. the solution of the normal equations
``(A^T A + λ L^T L) x = A^T y``, solved per image by batched conjugate gradient with the process's
``apply``/``apply_adjoint`` (exact adjoints, reflect padding included), so no periodic-boundary (FFT)
approximation is made. Regularisers (``regulariser=``):

* ``"laplacian"`` (default): ``L = −Δ_N``, the 5-point Laplacian with Neumann (zero-flux) boundary. We
  build it as ``−Δ_N = D^T D`` from Neumann forward differences ``D`` (:mod:`.linalg`), so it is exactly
  symmetric and ``L^T L = (D^T D)^2`` is applied as two Laplacians. Its null space (per-channel
  constants) is seen by every process here (blur preserves constants, masks are not identically zero),
  so the normal matrix is positive definite.
* ``"gradient"``: ``‖∇x‖² = ‖D x‖²``, i.e. ``L^T L = D^T D`` (first-order smoothing).
* ``"identity"``: ``‖x‖²`` (ridge / plain Tikhonov).

λ may be a float or a per-sample ``(B,)`` tensor. The objective uses sums (not means) over pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import Tensor

from dirac.degradations import DegradationProcess

from ._common import check_truth, default_lambdas, initial_guess, operators, sweep_lambdas
from .linalg import CGInfo, conjugate_gradient, neg_laplacian, per_sample

__all__ = [
    "REGULARISERS",
    "TIKHONOV_LAMBDAS",
    "best_lambda_tikhonov",
    "regulariser_gram",
    "tikhonov",
    "tikhonov_operator",
]

REGULARISERS = ("laplacian", "gradient", "identity")
TIKHONOV_LAMBDAS = default_lambdas(-4.0, 1.0)


def regulariser_gram(name: str) -> Callable[[Tensor], Tensor]:
    """``x -> L^T L x`` for a regulariser name in :data:`REGULARISERS`."""
    if name == "laplacian":
        return lambda x: neg_laplacian(neg_laplacian(x))
    if name == "gradient":
        return neg_laplacian
    if name == "identity":
        return lambda x: x
    raise ValueError(f"unknown regulariser {name!r}; choose one of {REGULARISERS}")


def tikhonov_operator(
    proc: DegradationProcess,
    y: Tensor,
    lam: float | Tensor,
    regulariser: str = "laplacian",
    t: float | Tensor = 1.0,
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """The normal operator ``M = A_t^T A_t + λ L^T L`` (symmetric PSD) and right-hand side ``A_t^T y``."""
    forward, adjoint = operators(proc, y, t)
    gram = regulariser_gram(regulariser)
    lam_b = per_sample(lam, y.shape[0], y)
    if bool((lam_b < 0).any()):
        raise ValueError("the regularisation weight λ must be non-negative")

    def normal(x: Tensor) -> Tensor:
        return adjoint(forward(x)) + lam_b * gram(x)

    return normal, adjoint(y)


def tikhonov(
    proc: DegradationProcess,
    y: Tensor,
    lam: float | Tensor,
    regulariser: str = "laplacian",
    t: float | Tensor = 1.0,
    tol: float = 1e-5,
    max_iter: int = 500,
    x_init: Tensor | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, CGInfo]:
    """Tikhonov reconstruction ``argmin ‖A_t x − y‖² + λ ‖L x‖²`` of a batch of measurements ``y``.

    Args:
        proc: the degradation process whose operator ``A_t`` (default t = 1, the measurement) is inverted.
        y: measurements ``(B, C, H, W)``.
        lam: regularisation weight λ >= 0, float or ``(B,)``.
        regulariser: ``"laplacian"``, ``"gradient"`` or ``"identity"`` (see the module docstring).
        tol, max_iter: CG stopping rule, ``‖r_i‖ <= tol ‖A^T y_i‖`` per image.
        x_init: CG starting point; default ``y`` (or ``A^T y`` if ``A`` changes the shape).
        return_info: also return the per-sample :class:`~.linalg.CGInfo`.

    Returns the unclamped estimate (and the CG info when asked).
    """
    normal, rhs = tikhonov_operator(proc, y, lam, regulariser, t)
    x0 = initial_guess(proc, y, operators(proc, y, t)[1]) if x_init is None else x_init
    x, info = conjugate_gradient(normal, rhs, x0=x0, tol=tol, max_iter=max_iter)
    return (x, info) if return_info else x


def best_lambda_tikhonov(
    proc: DegradationProcess,
    x_true: Tensor,
    y: Tensor,
    lambdas: Iterable[float] = TIKHONOV_LAMBDAS,
    regulariser: str = "laplacian",
    **kwargs,
) -> tuple[float, dict[float, float], Tensor]:
    """Oracle λ selection: the single λ of ``lambdas`` with the best mean PSNR against the ground truth.

    This uses ``x_true``, which a real reconstruction cannot, so the result is an **oracle upper bound**
    for this baseline (one λ shared by the whole batch, picked on the evaluated images themselves).
    Default grid: 10^-4 .. 10^1, four points per decade. Extra keyword arguments go to :func:`tikhonov`.

    Returns ``(best_lambda, {λ: mean PSNR dB}, reconstruction at best_lambda)``.
    """
    check_truth(x_true, y)

    def solve(lam: float) -> Tensor:
        return tikhonov(proc, y, lam, regulariser=regulariser, **kwargs)

    return sweep_lambdas(solve, x_true, lambdas)
