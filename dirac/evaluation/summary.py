"""Summaries of a run as plain JSON-ready dicts: metrics against the ground truth, data consistency, timing.

Data consistency is ``‖A_1(x̂) − y‖ / √n`` per image (compare with the noise floor σ_y); metrics come from the
registry (:mod:`dirac.metrics.registry`): per-image ones are averaged over images (and over posterior samples),
distribution ones are computed on the whole set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..degradations import DegradationProcess
from ..metrics.registry import Metric
from ..sampling import data_consistency


def mean_data_consistency(process: DegradationProcess, outputs: Sequence[Tensor], ys: Sequence[Tensor]) -> float:
    """Mean over images of ``‖A_1(x̂) − y‖/√n`` for the first sample of each ``(S, C, H, W)`` output."""
    vals = [data_consistency(process, out[:1], y.unsqueeze(0)) for out, y in zip(outputs, ys, strict=True)]
    return float(torch.cat(vals).mean())


def metric_values(x: Tensor, clean: Tensor, metrics: Sequence[Metric]) -> dict[str, float]:
    """``{name: mean value}`` of every metric for the batch ``x`` against ``clean``."""
    return {m.name: m.mean(x, clean) for m in metrics}


def per_image_rows(x: Tensor, y: Tensor, clean: Tensor, metrics: Sequence[Metric]) -> list[dict[str, float]]:
    """One row per image: each per-image metric for the reconstruction and for the measurement."""
    rows: list[dict[str, Any]] = [{"index": i} for i in range(len(x))]
    for m in (m for m in metrics if m.per_image):
        pairs = [(m.name, x)] + ([(f"measurement_{m.name}", y)] if y.shape == clean.shape else [])
        for key, vals in ((k, m(v, clean)) for k, v in pairs):
            for row, v in zip(rows, vals.tolist(), strict=True):
                row[key] = v
    return rows


def summarise(
    outputs: Sequence[Tensor],
    ys: Sequence[Tensor],
    process: DegradationProcess,
    clean: Tensor | None = None,
    metrics: Sequence[Metric] = (),
) -> dict[str, Any]:
    """Summary of per-image ``(S, C, H, W)`` outputs; metrics only when ``clean`` (same-size images) is given."""
    samples = int(outputs[0].shape[0])
    summary: dict[str, Any] = {
        "num_images": len(outputs),
        "samples_per_measurement": samples,
        "data_consistency": mean_data_consistency(process, outputs, ys),
        "sigma_y": float(process.sigma_y),
    }
    if clean is None or not metrics:
        return summary
    out = torch.stack(list(outputs))  # (N, S, C, H, W)
    per_sample = [metric_values(out[:, s], clean, metrics) for s in range(samples)]
    summary.update({m.name: sum(p[m.name] for p in per_sample) / samples for m in metrics})
    if samples > 1:
        summary["mean_of_samples"] = metric_values(out.mean(1), clean, metrics)
        summary["mean_pixel_std"] = float(out.std(1).mean())
    summary["per_image"] = per_image_rows(out[:, 0], torch.stack(list(ys)), clean, metrics)
    return summary


def measurement_summary(ys: Tensor, clean: Tensor, metrics: Sequence[Metric]) -> dict[str, float]:
    """The metrics of the measurements themselves (the number every method must beat)."""
    return metric_values(ys, clean, metrics) if ys.shape == clean.shape else {}
