"""Points of the uncertainty–perception (UP) plane and the factor-2 check (Cohen et al., NeurIPS 2024).

For an estimator ``X̂`` of ``X`` from ``Y``: uncertainty ``U = N(X̂ − X | Y)`` (entropy power of the error,
:func:`~.gaussian.patch_entropy_power`), perception ``P = D_½(p_X̂, p_X)`` (:func:`~.gaussian.patch_renyi_half`).
A posterior sampler has ``P = 0`` and ``U = 2·N(X|Y)``; the MMSE estimator has ``U = N(X|Y)``; every estimator
with perception index ``P`` satisfies ``U ≥ η(P)·N(X|Y)`` (:func:`~.gaussian.eta`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .gaussian import eta, patch_entropy_power, patch_renyi_half


def up_point(x_hat: Tensor, clean: Tensor, patch: int) -> dict[str, float]:
    """``{"uncertainty": U, "perception": P}`` of reconstructions ``(B, C, H, W)`` against their ground truth."""
    if x_hat.shape != clean.shape:
        raise ValueError(f"reconstructions {tuple(x_hat.shape)} and ground truth {tuple(clean.shape)} differ")
    return {
        "uncertainty": patch_entropy_power(x_hat - clean, patch),
        "perception": patch_renyi_half(x_hat, clean, patch),
    }


def uncertainty_ratio(samples: Tensor, clean: Tensor, patch: int) -> dict[str, Any]:
    """The factor-2 rule from ``K`` posterior samples per measurement ``(N, K, C, H, W)``.

    ``ratio = N(X̂_sample − X) / N(X̄_K − X)`` with the error patches of every sample pooled, and ``X̄_K`` the mean
    of the K samples (the MMSE estimate). For a Gaussian posterior ``Cov(X̄_K − X) = (1 + 1/K)·Σ_post`` and
    ``Cov(X̂ − X) = 2·Σ_post``, so the expected ratio is ``2 / (1 + 1/K)``; ``ratio·(1 + 1/K)`` estimates the
    paper's factor (posterior sampler over the exact MMSE estimator, expected 2).
    """
    if samples.ndim != 5 or samples.shape[1] < 2:
        raise ValueError(
            f"need (N, K >= 2, C, H, W) samples (samples_per_measurement >= 2), got {tuple(samples.shape)}"
        )
    n, k = samples.shape[:2]
    if samples.shape[0] != clean.shape[0] or samples.shape[2:] != clean.shape[1:]:
        raise ValueError(f"samples {tuple(samples.shape)} do not match ground truth {tuple(clean.shape)}")
    mean = samples.mean(1)
    errs = (samples - clean[:, None]).reshape(n * k, *clean.shape[1:])
    n_sample = patch_entropy_power(errs, patch)
    n_mean = patch_entropy_power(mean - clean, patch)
    ratio = n_sample / n_mean
    return {
        "uncertainty_ratio_posterior_over_mmse": ratio,
        "reported_ratio": "N(one posterior sample − x) / N(mean of the K samples − x), error patches pooled",
        "samples_per_measurement": k,
        "expected_ratio_for_K": 2.0 / (1.0 + 1.0 / k),
        "factor_vs_exact_mmse": ratio * (1.0 + 1.0 / k),
        "factor_vs_exact_mmse_meaning": "ratio·(1 + 1/K): posterior sampler over the exact MMSE estimator "
        "(Gaussian-posterior correction for the finite-K mean; the paper's rule says 2)",
        "entropy_power_sample": n_sample,
        "entropy_power_mmse": n_mean,
    }


def bound_curve(perception: list[float], n_mmse: float, d: int) -> list[float]:
    """``η(P)·N(X|Y)`` at each ``P`` (the lower edge of the attainable UP region)."""
    return [float(v) for v in eta(torch.tensor(perception, dtype=torch.float64), d) * n_mmse]
