"""95 % percentile-bootstrap confidence intervals over the evaluated images.

* per-image metrics (PSNR, SSIM): resample the per-image values with replacement ``resamples`` times and take the
  2.5 / 97.5 percentiles of the resampled means (:func:`bootstrap_mean`);
* set-level metrics (SWD compares two *sets* of images): resample the image indices, recompute the metric on the
  resampled set (reconstructions and references resampled together) and take the percentiles
  (:func:`bootstrap_set`). Each resample costs a full metric evaluation, so callers cap it (e.g. 200).

Both are seeded (one ``numpy`` generator per call), hence deterministic. The reported value is the statistic on
the full set; a percentile interval can miss it for a skewed or biased statistic (SWD grows with duplicated
images), so the interval is widened to include the value: ``lo <= value <= hi`` always holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _check(n: int, resamples: int, level: float) -> None:
    if n < 1:
        raise ValueError("bootstrap needs at least one image")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap needs resamples >= 1 and 0 < level < 1, got {resamples} and {level}")


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` indices drawn with replacement, from a generator seeded with ``seed`` only."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(stats: np.ndarray, value: float, level: float) -> tuple[float, float]:
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(stats, [tail, 100.0 - tail])
    return float(min(lo, value)), float(max(hi, value))


def bootstrap_mean(
    values: Sequence[float], resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (one value per image)."""
    x = np.asarray(values, dtype=np.float64)
    _check(len(x), resamples, level)
    means = x[resample_indices(len(x), resamples, seed)].mean(axis=1)
    return _interval(means, float(x.mean()), level)


def bootstrap_set(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a set-level ``statistic(indices)`` over ``n`` images (value: all images)."""
    _check(n, resamples, level)
    value = float(statistic(np.arange(n)))
    stats = np.array([float(statistic(idx)) for idx in resample_indices(n, resamples, seed)])
    return _interval(stats, value, level)
