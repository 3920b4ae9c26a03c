"""Greedy, data-dependent degradation scheduling (paper Sec. 3.9, App. B, Alg. 2).

Given candidate severities ``s_0 < … < s_N`` and a batch of images, pick ``K + 1`` of them (the end
points always) so that the largest image-quality distance between neighbouring picked severities is
small, then map ``t_k = k / K -> s_(k)`` with linear interpolation in between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .degradations.base import DegradationProcess
from .degradations.severity import SeveritySchedule

ImageDistance = Callable[[Tensor, Tensor], Tensor]
"""``d(a, b)`` between two image batches: per-image values ``(B,)`` or a scalar (averaged over the batch)."""


def mse_distance(a: Tensor, b: Tensor) -> Tensor:
    """Per-image mean squared error."""
    return (a - b).pow(2).flatten(1).mean(1)


class _PairDistances:
    """Cached ``d(s_i, s_j)`` over a candidate grid; only the picked severities' degraded batches are kept,
    so memory stays ``O(K)`` batches while a split search streams over the candidates in between."""

    def __init__(self, process: DegradationProcess, images: Tensor, candidates: Tensor, distance: ImageDistance):
        self.process, self.images, self.candidates, self.distance = process, images, candidates, distance
        self.kept: dict[int, Tensor] = {}
        self._dist: dict[tuple[int, int], float] = {}

    def degrade(self, i: int) -> Tensor:
        if i in self.kept:
            return self.kept[i]
        s = self.candidates[i].expand(self.images.shape[0]).to(self.images)
        return self.process.apply(self.images, s)

    def keep(self, i: int) -> None:
        self.kept[i] = self.degrade(i)

    def __call__(self, i: int, j: int, yi: Tensor | None = None) -> float:
        key = (min(i, j), max(i, j))
        if key not in self._dist:
            a = yi if yi is not None else self.degrade(i)
            self._dist[key] = float(self.distance(a, self.degrade(j)).mean())
        return self._dist[key]

    def split_cost(self, a: int, c: int, b: int) -> float:
        """``max(d(a, c), d(c, b))`` degrading candidate ``c`` at most once."""
        if (min(a, c), max(a, c)) in self._dist and (min(c, b), max(c, b)) in self._dist:
            return max(self(a, c), self(c, b))
        yc = self.degrade(c)
        return max(self(c, a, yc), self(c, b, yc))


@torch.no_grad()
def greedy_severity_indices(
    process: DegradationProcess,
    images: Tensor,
    candidates: Tensor,
    num_steps: int,
    distance: ImageDistance = mse_distance,
) -> tuple[list[int], list[float]]:
    """Alg. 2: indices into ``candidates`` of the ``num_steps + 1`` picked severities, and the max adjacent
    distance after each insertion (non-increasing).

    Repeat ``num_steps - 1`` times: take the adjacent pair with the largest distance that still has a
    candidate between them and insert the candidate ``c`` minimising ``max(d(a, c), d(c, b))``.
    """
    n = candidates.numel()
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if n < num_steps + 1:
        raise ValueError(f"need at least num_steps + 1 = {num_steps + 1} candidate severities, got {n}")
    d = _PairDistances(process, images, candidates, distance)
    picked = [0, n - 1]
    d.keep(0)
    d.keep(n - 1)
    history = [d(0, n - 1)]
    for _ in range(num_steps - 1):
        gaps = [(d(a, b), k) for k, (a, b) in enumerate(zip(picked, picked[1:], strict=False)) if b - a > 1]
        if not gaps:
            break
        _, k = max(gaps)
        a, b = picked[k], picked[k + 1]
        best = min(range(a + 1, b), key=lambda c: (d.split_cost(a, c, b), c))
        picked.insert(k + 1, best)
        d.keep(best)
        history.append(max(d(p, q) for p, q in zip(picked, picked[1:], strict=False)))
    return picked, history


def greedy_schedule(
    process: DegradationProcess,
    images: Tensor,
    candidates: Tensor | Sequence[float] | None = None,
    num_steps: int = 100,
    distance: ImageDistance = mse_distance,
    num_candidates: int = 400,
) -> SeveritySchedule:
    """A greedy ``SeveritySchedule`` for ``process`` on ``images`` (paper Alg. 2).

    ``candidates`` defaults to ``num_candidates`` points evenly spaced between the process's current
    ``s(0)`` and ``s(1)``. The result maps ``t_k = k / K`` to the k-th picked severity.
    """
    if candidates is None:
        candidates = torch.linspace(process.schedule.s_min, process.schedule.s_max, num_candidates, dtype=torch.float64)
    candidates = torch.as_tensor(candidates, dtype=torch.float64).flatten()
    if (candidates[1:] <= candidates[:-1]).any():
        raise ValueError("candidate severities must be strictly increasing")
    picked, _ = greedy_severity_indices(process, images, candidates.to(images.dtype), num_steps, distance)
    k = len(picked) - 1
    return SeveritySchedule([i / k for i in range(k + 1)], [float(candidates[i]) for i in picked], kind="greedy")
