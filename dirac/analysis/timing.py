"""Wall-clock helpers for speed reports: the bare network forward a sampler's overhead is measured against."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def bare_forward_seconds(model: Callable, y: torch.Tensor, reps: int = 3) -> float:
    """Median wall time of one ``model(y, t=1)`` call on the batch ``y`` (after one warm-up call)."""
    t = torch.ones(y.shape[0], device=y.device)
    model(y, t)
    times = []
    for _ in range(reps):
        _sync(y.device)
        start = time.perf_counter()
        model(y, t)
        _sync(y.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Stopwatch:
    """``with Stopwatch(device) as sw: …`` then ``sw.seconds`` (synchronises CUDA at both ends)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        _sync(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        _sync(self.device)
        self.seconds += time.perf_counter() - self._start
