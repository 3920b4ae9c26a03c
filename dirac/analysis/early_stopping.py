"""Early-stopping sweep: metrics of x̂0(t_i) along one reverse trajectory -> DO and PO stopping points.

The paper's central observation: PSNR of ``x̂0(t) = Φθ(y_t, t)`` is best early (large t, a posterior-mean-like
estimate, distortion-optimised "DO"), while perceptual quality improves as the reverse process adds detail
(perception-optimised "PO"). One reverse run per measurement that records x̂0 at every grid point gives the
whole perception–distortion curve at the cost of one run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..metrics import psnr, ssim

Perceptual = Callable[[Tensor, Tensor], float]
"""Distribution-level perceptual distance ``d(reconstructions, clean)`` (lower = more realistic)."""


def per_step_metrics(
    trajectory: dict[int, Tensor], clean: Tensor, t_grid: Tensor, perceptual: Perceptual | None = None
) -> dict[str, list[float]]:
    """Mean PSNR / SSIM (and the perceptual distance) of the recorded ``x̂0(t_i)`` over all images.

    ``trajectory[i]`` holds x̂0 at grid index i for every image, shape like ``clean``.
    """
    idx = sorted(trajectory)
    out: dict[str, list[float]] = {"index": idx, "t": [float(t_grid[i]) for i in idx], "psnr": [], "ssim": []}
    if perceptual is not None:
        out["perceptual"] = []
    for i in idx:
        x = trajectory[i].clamp(0, 1)
        out["psnr"].append(float(psnr(x, clean).mean()))
        out["ssim"].append(float(ssim(x, clean).mean()))
        if perceptual is not None:
            out["perceptual"].append(float(perceptual(x, clean)))
    return out


def choose_stopping_points(curves: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """DO = the grid point with the best mean PSNR; PO = the one with the lowest perceptual distance."""
    pos_do = max(range(len(curves["psnr"])), key=lambda k: curves["psnr"][k])
    choice = {"do": _point(curves, pos_do)}
    if "perceptual" in curves:
        pos_po = min(range(len(curves["perceptual"])), key=lambda k: curves["perceptual"][k])
        choice["po"] = _point(curves, pos_po)
    return choice


def _point(curves: dict[str, list[float]], k: int) -> dict[str, float]:
    return {name: values[k] for name, values in curves.items()}


def peak_before_end(curves: dict[str, list[float]], tol_db: float = 0.05) -> bool:
    """Whether PSNR along the trajectory peaks before its end (t_stop > 0) by more than ``tol_db``."""
    p = curves["psnr"]
    return max(p) > p[-1] + tol_db


def stack_trajectories(parts: list[dict[int, Tensor]]) -> dict[int, Tensor]:
    """Concatenate per-batch trajectories (same grid indices) along the batch axis."""
    return {i: torch.cat([p[i] for p in parts]) for i in parts[0]}
