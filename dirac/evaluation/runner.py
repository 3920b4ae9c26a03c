"""Run a restorer over a set of measurements in batches (optionally several samples per measurement).

Noise: with ``per_image_noise`` every image ``i`` gets its own generator seeded from ``(seed, i)`` (a list of
generators, diffusers' convention), so its result does not depend on the batch size or on its position;
otherwise one generator seeded with ``seed`` serves all batches in order (the sampler's original behaviour).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..distributed import gather, is_main, shard, to_cpu, world
from ..reconstruction import Restorer


@dataclass
class RunResult:
    """``output``: ``(N, S, C, H, W)`` (S samples per measurement); ``extras``: one dict per batch."""

    output: Tensor
    nfe_per_image: int
    seconds: float
    batches: int
    extras: list[dict[str, Any]] = field(default_factory=list)

    @property
    def timing(self) -> dict[str, float]:
        n = self.output.shape[0] * self.output.shape[1]
        return {
            "wall_s": self.seconds,
            "images_per_s": n / self.seconds if self.seconds > 0 else float("inf"),
            "nfe_per_image": self.nfe_per_image,
            "batches": self.batches,
        }


def image_generators(
    seed: int, keys: Sequence[tuple[int, int]], device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per ``(image index, sample index)``, seeded from those and ``seed`` only, so an image's noise
    does not depend on the batch size or on its position in a batch."""
    return [torch.Generator(device=device).manual_seed(int(seed) * 1_000_003 + i * 1009 + s) for i, s in keys]


def run_restorer(
    restorer: Restorer,
    y: Tensor,
    batch_size: int,
    samples: int = 1,
    seed: int = 0,
    per_image_noise: bool = False,
    device: torch.device | str = "cpu",
    indices: Sequence[int] | None = None,
) -> RunResult:
    """Reconstruct each of the ``N`` measurements ``y`` (one size) ``samples`` times, ``batch_size`` at a time.

    ``indices``: the images' indices in the whole set (default 0…N−1), which seed their per-image noise.
    Under several processes (:mod:`dirac.distributed`) each rank reconstructs a contiguous shard of ``y`` and
    every rank receives all outputs in order: with ``per_image_noise`` (or a deterministic restorer) the result
    equals a single-process run's; a shared generator cannot be split, so then every rank runs the whole set.
    """
    if batch_size < 1 or samples < 1:
        raise ValueError(f"batch_size and samples must be >= 1, got {batch_size} and {samples}")
    ids = list(range(len(y))) if indices is None else list(indices)
    split = world()[1] > 1 and (per_image_noise or not restorer.stochastic)
    part = shard(len(y)) if split else range(len(y))
    start = time.perf_counter()
    out, extras, nfe = _run_part(restorer, y[part.start : part.stop], batch_size, samples, seed, per_image_noise,
                                 torch.device(device), ids[part.start : part.stop])  # fmt: skip
    seconds = time.perf_counter() - start
    if split:
        parts = [p for p in gather((out, to_cpu(extras), nfe, seconds)) if p[0] is not None]
        out, extras = torch.cat([p[0] for p in parts]), [e for p in parts for e in p[1]]
        nfe, seconds = parts[0][2], max(p[3] for p in parts)
    out = out.view(len(y), samples, *out.shape[1:])
    return RunResult(out, nfe, seconds, len(extras), extras)


def _run_part(
    restorer: Restorer,
    y: Tensor,
    batch_size: int,
    samples: int,
    seed: int,
    per_image_noise: bool,
    device: torch.device,
    ids: list[int],
) -> tuple[Tensor | None, list[dict[str, Any]], int]:
    """The batches of one process: ``(outputs (N·S, C, H, W) on the CPU or None when N = 0, extras, NFE)``."""
    reps = y.repeat_interleave(samples, dim=0)
    shared = None if per_image_noise else torch.Generator(device=device).manual_seed(int(seed))
    keys = [(ids[k // samples], k % samples) for k in range(len(reps))]
    outs, extras, nfe = [], [], 0
    label = getattr(restorer, "name", type(restorer).__name__)
    batches = range(0, len(reps), batch_size)
    for lo in tqdm(batches, desc=f"dirac {label}", unit="batch", leave=False, disable=None if is_main() else True):
        idx = range(lo, min(lo + batch_size, len(reps)))
        gen = shared if shared is not None else image_generators(seed, keys[idx.start : idx.stop], device)
        rec = restorer(reps[idx.start : idx.stop].to(device), gen)
        outs.append(rec.x.detach().cpu())
        extras.append(rec.extras)
        nfe = rec.nfe
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (torch.cat(outs) if outs else None), extras, nfe


def size_groups(images: Sequence[Tensor]) -> list[list[int]]:
    """Indices of ``images`` grouped by ``(C, H, W)``, groups in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(tuple(x.shape), []).append(i)
    return list(groups.values())


def run_mixed_sizes(
    restorer: Restorer, images: Sequence[Tensor], batch_size: int, **kwargs: Any
) -> tuple[list[Tensor], list[RunResult]]:
    """:func:`run_restorer` on each size group of ``(C, H, W)`` images; returns per-image ``(S, C, H, W)``
    outputs in the input order and the runs of the groups."""
    per_image: list[Tensor | None] = [None] * len(images)
    runs = []
    for group in size_groups(images):
        run = run_restorer(restorer, torch.stack([images[i] for i in group]), batch_size, indices=group, **kwargs)
        runs.append(run)
        for k, i in enumerate(group):
            per_image[i] = run.output[k]
    return per_image, runs  # type: ignore[return-value]


def require_finite(x: Tensor, what: str) -> None:
    """Refuse non-finite reconstructions (they would be written as black images)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum()) if x.ndim > 1 else 1
        raise ValueError(
            f"{what}: {bad} reconstruction(s) contain NaN or Inf (diverged weights or input); nothing was written — "
            f"check the checkpoint and the measurements"
        )
