"""Calibration of pixelwise posterior uncertainty and the hallucination map.

* :func:`coverage`: the fraction of ground-truth pixels inside ``mean ± k·std`` for each ``k``;
  a calibrated Gaussian posterior gives :func:`gaussian_coverage` ``= erf(k/√2)`` (68.3 % at k = 1);
* :func:`finite_sample_coverage`: what a calibrated Gaussian posterior gives when mean and std are themselves
  estimated from ``K`` samples: ``(x − x̄)/s ~ t_{K−1}·sqrt(1 + 1/K)``, so ``P(|t_{K−1}| ≤ k/sqrt(1 + 1/K))``;
* :func:`hallucination`: pixels whose error exceeds ``k·std`` (errors the uncertainty map did not flag) and the
  fraction of squared error in covered pixels, ``Σ_{|e|≤kσ} e² / Σ e²``; a calibrated Gaussian gives
  :func:`gaussian_explained` ``= erf(k/√2) − 2kφ(k)`` (97.1 % at k = 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _check_ks(ks: Sequence[float]) -> list[float]:
    ks = [float(k) for k in ks]
    if not ks or any(not math.isfinite(k) or k <= 0 for k in ks):
        raise ValueError(f"coverage levels k must be positive numbers (e.g. up.ks=[1,2,3]), got {ks}")
    return ks


def coverage(mean: Tensor, std: Tensor, x: Tensor, ks: Sequence[float]) -> dict[float, float]:
    """``{k: fraction of pixels with |x − mean| ≤ k·std}`` over every pixel of the batch."""
    if mean.shape != std.shape or mean.shape != x.shape:
        raise ValueError(f"mean, std and x must have one shape, got {tuple(mean.shape)}, {tuple(std.shape)}, "
                         f"{tuple(x.shape)}")  # fmt: skip
    err = (x - mean).abs()
    return {k: float((err <= k * std).double().mean()) for k in _check_ks(ks)}


def gaussian_coverage(k: float) -> float:
    """``P(|Z| ≤ k) = erf(k/√2)`` for a standard normal ``Z``."""
    return math.erf(k / math.sqrt(2.0))


def student_t_coverage(b: float, nu: int, points: int = 20001) -> float:
    """``P(|T| ≤ b)`` for Student's t with ``nu`` degrees of freedom (trapezoid rule on the density)."""
    if nu < 1:
        raise ValueError(f"Student t needs nu >= 1 degrees of freedom (K >= 2 samples), got {nu}")
    t = torch.linspace(0.0, b, points, dtype=torch.float64)
    logc = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    pdf = torch.exp(logc - (nu + 1) / 2 * torch.log1p(t * t / nu))
    return float(2.0 * torch.trapezoid(pdf, t))


def finite_sample_coverage(k: float, samples: int) -> float:
    """Expected coverage of ``x̄ ± k·s`` (mean and unbiased std of ``samples`` draws) for a calibrated Gaussian."""
    return student_t_coverage(k / math.sqrt(1.0 + 1.0 / samples), samples - 1)


def gaussian_explained(k: float) -> float:
    """``E[Z² 1{|Z| ≤ k}] = erf(k/√2) − 2kφ(k)``: the squared error a calibrated Gaussian std explains at ``k``."""
    return gaussian_coverage(k) - 2.0 * k * math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)


def hallucination(err: Tensor, std: Tensor, k: float = 3.0) -> tuple[Tensor, float, float]:
    """``(map, unflagged fraction of pixels, explained fraction of squared error)`` for errors ``err`` and a
    posterior std ``std`` of one shape. ``map = |e|·1{|e| > k·std}`` (channel-mean of the per-pixel values,
    ``(B, 1, H, W)``): where the error is larger than the uncertainty map admits."""
    if err.shape != std.shape:
        raise ValueError(f"err and std must have one shape, got {tuple(err.shape)} and {tuple(std.shape)}")
    k = _check_ks([k])[0]
    out = err.abs() > k * std
    sq = err.double() ** 2
    total = float(sq.sum())
    explained = float(sq[~out].sum()) / total if total > 0 else 1.0
    hmap = (err.abs() * out).mean(1, keepdim=True)
    return hmap, float(out.double().mean()), explained
