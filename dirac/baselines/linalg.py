"""Batched linear algebra shared by the classical baselines: conjugate gradient, finite differences.

Everything acts on image batches ``(B, C, H, W)`` and treats each image as an independent linear system
(per-sample inner products, step sizes and stopping), without a Python loop over the batch.

Finite differences use the **Neumann** (zero-flux) boundary: ``D`` is the forward difference along H and W
with the difference across the last row/column set to zero, ``D^T`` its exact adjoint (a negative backward
divergence) and ``D^T D`` the symmetric positive-semidefinite 5-point operator ``-Δ`` whose boundary
behaves like replicate ("half-sample symmetric") padding. Its null space is the per-channel constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "CGInfo",
    "batch_dot",
    "conjugate_gradient",
    "gradient",
    "gradient_adjoint",
    "neg_laplacian",
    "per_sample",
]


def batch_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product ``<a_i, b_i>`` over all non-batch dimensions -> shape ``(B,)``."""
    return (a * b).flatten(1).sum(dim=1)


def per_sample(value: float | Tensor, batch: int, like: Tensor) -> Tensor:
    """Broadcast a float, 0-d or ``(B,)`` tensor to ``(B, 1, 1, 1)`` on ``like``'s device and dtype."""
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if v.ndim == 0:
        v = v.expand(batch)
    if v.shape != (batch,):
        raise ValueError(f"expected a scalar or a ({batch},) tensor, got shape {tuple(v.shape)}")
    return v.reshape(batch, *([1] * (like.ndim - 1)))


def gradient(x: Tensor) -> Tensor:
    """Forward differences with Neumann boundary: ``(B, C, H, W) -> (B, C, 2, H, W)`` (d/dH, d/dW).

    The difference across the last row (column) is zero.
    """
    g = x.new_zeros(x.shape[0], x.shape[1], 2, x.shape[2], x.shape[3])
    g[:, :, 0, :-1, :] = x[:, :, 1:, :] - x[:, :, :-1, :]
    g[:, :, 1, :, :-1] = x[:, :, :, 1:] - x[:, :, :, :-1]
    return g


def gradient_adjoint(g: Tensor) -> Tensor:
    """Exact adjoint ``D^T`` of :func:`gradient`: ``(B, C, 2, H, W) -> (B, C, H, W)`` (= minus the divergence)."""
    gh, gw = g[:, :, 0], g[:, :, 1]
    out = torch.zeros_like(gh)
    out[:, :, :-1, :] -= gh[:, :, :-1, :]
    out[:, :, 1:, :] += gh[:, :, :-1, :]
    out[:, :, :, :-1] -= gw[:, :, :, :-1]
    out[:, :, :, 1:] += gw[:, :, :, :-1]
    return out


def neg_laplacian(x: Tensor) -> Tensor:
    """``-Δ x = D^T D x``: the 5-point Laplacian (negated) with Neumann boundary, symmetric PSD.

    Interior pixels get ``4 x - (sum of the 4 neighbours)``; a neighbour outside the image is replaced by
    the pixel itself (replicate padding), which is what makes the matrix exactly symmetric. Computed as
    ``D^T (D x)``, which is that stencil exactly.
    """
    return gradient_adjoint(gradient(x))


@dataclass
class CGInfo:
    """Per-sample outcome of :func:`conjugate_gradient` (all tensors of shape ``(B,)``)."""

    iterations: Tensor  # iterations each system took (stops counting once it converged)
    residual: Tensor  # final recursive residual norm relative to ||b||
    converged: Tensor  # residual <= tol


def conjugate_gradient(
    op: Callable[[Tensor], Tensor],
    b: Tensor,
    x0: Tensor | None = None,
    tol: float = 1e-5,
    max_iter: int = 200,
) -> tuple[Tensor, CGInfo]:
    """Solve ``M x = b`` independently for every sample of a batch by conjugate gradient.

    ``op`` applies a symmetric positive-(semi)definite ``M`` to a whole batch; each sample has its own step
    ``alpha_i``, direction update ``beta_i`` and stopping test ``||r_i|| <= tol ||b_i||``. A sample that has
    converged keeps its iterate (its steps are zeroed) while the others continue; the loop ends when all
    samples have converged or after ``max_iter`` iterations. ``b`` may have any shape ``(B, ...)``.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - op(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = batch_dot(r, r)
    b_norm = batch_dot(b, b).sqrt()
    thresh = tol * b_norm
    active = rs.sqrt() > thresh
    iterations = torch.zeros(b.shape[0], dtype=torch.long, device=b.device)
    shape = (-1,) + (1,) * (b.ndim - 1)
    tiny = torch.finfo(b.dtype).tiny
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        ap = op(p)
        p_ap = batch_dot(p, ap)
        ok = active & (p_ap > 0)
        alpha = torch.where(ok, rs / p_ap.clamp_min(tiny), torch.zeros_like(rs))
        x = x + alpha.view(shape) * p
        r = r - alpha.view(shape) * ap
        rs_new = batch_dot(r, r)
        beta = torch.where(ok, rs_new / rs.clamp_min(tiny), torch.zeros_like(rs))
        p = r + beta.view(shape) * p
        rs = torch.where(ok, rs_new, rs)
        iterations = iterations + ok.long()
        active = ok & (rs.sqrt() > thresh)
    residual = rs.sqrt() / b_norm.clamp_min(tiny)
    return x, CGInfo(iterations=iterations, residual=residual, converged=rs.sqrt() <= thresh)
