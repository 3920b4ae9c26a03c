"""Evaluate several restorers on the same measurements with the same metrics: one summary per method."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..metrics.registry import Metric
from ..reconstruction import Restorer, RestorerWrapper
from .runner import RunResult, require_finite, run_restorer
from .summary import summarise

SplitLoader = Callable[[str], tuple[Tensor, Tensor]]
"""``load(split) -> (clean, y)``: ground truth and its measurements for a split."""


@dataclass
class RunSettings:
    """How restorers are run: batch size, seed and noise convention (see :mod:`.runner`), device, metrics."""

    batch_size: int = 32
    seed: int = 0
    per_image_noise: bool = False
    device: torch.device | str = "cpu"
    metrics: list[Metric] = field(default_factory=list)

    def run(self, restorer: Restorer, y: Tensor, samples: int = 1) -> RunResult:
        return run_restorer(restorer, y, self.batch_size, samples, self.seed, self.per_image_noise, self.device)


def describe(restorer: Restorer) -> dict[str, Any]:
    """The settings that identify a restorer's result (its name, t_stop, λ, hyper-parameters) for the summary."""
    info: dict[str, Any] = {"method": restorer.name}
    inner = restorer
    while isinstance(inner, RestorerWrapper):  # the innermost base's settings hold, however deep the wrappers
        inner = inner.base
    for key, attr in (("t_stop", "t_stop"), ("lambda", "lam")):
        if hasattr(inner, attr):
            info[key] = float(getattr(inner, attr))
    if hasattr(restorer, "group"):
        info["ensemble"] = restorer.group
    if isinstance(getattr(restorer, "params", None), dict):
        info["params"] = dict(restorer.params)
    return info


def compare(
    restorers: Mapping[str, tuple[Restorer, int]], clean: Tensor, y: Tensor, settings: RunSettings
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Run every ``label: (restorer, samples)`` on ``y``; returns ``({label: summary}, {label: (N, S, C, H, W)})``.

    Every output is checked finite before anything is summarised or written.
    """
    summaries: dict[str, Any] = {}
    outputs: dict[str, Tensor] = {}
    for label, (restorer, samples) in restorers.items():
        run = settings.run(restorer, y, samples)
        require_finite(run.output, f"{label} ({restorer.name})")
        s = summarise(list(run.output), list(y), restorer.process, clean, settings.metrics)
        summaries[label] = {**describe(restorer), **s, "timing": run.timing}
        outputs[label] = run.output
    return summaries, outputs
