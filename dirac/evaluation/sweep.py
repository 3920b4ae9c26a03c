"""The early-stopping sweep (paper §5): one reverse run per validation measurement records ``x̂0(t_i)`` at every
grid point; DO (best mean PSNR) and PO (lowest perceptual distance) are chosen there
(:mod:`dirac.analysis.early_stopping`); then DO, PO and the baselines (λ tuned on val) are evaluated on test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..analysis.early_stopping import choose_stopping_points, per_step_metrics, stack_trajectories
from ..metrics.registry import Metric
from ..reconstruction import Restorer
from ..stopping_choice import SAMPLER_KEYS
from .compare import RunSettings, SplitLoader
from .methods import Resources, get_method
from .restorers import SamplerRestorer
from .tuning import Tuned, tune_methods_on


def trajectory_curves(
    restorer: SamplerRestorer, clean: Tensor, y: Tensor, perceptual: Metric, settings: RunSettings
) -> dict[str, list[float]]:
    """PSNR / SSIM / perceptual distance / data consistency of ``x̂0(t_i)`` at every grid point ``t_i``."""
    restorer.record_x0 = "all"
    try:
        run = settings.run(restorer, y)
    finally:
        restorer.record_x0 = None
    traj = stack_trajectories([e["x0_trajectory"] for e in run.extras])
    curves = per_step_metrics(traj, clean, run.extras[0]["t_grid"], lambda x, ref: perceptual.mean(x, ref))
    dc = torch.cat([e["data_consistency"] for e in run.extras], dim=1)
    curves["data_consistency"] = dc.mean(1).tolist()
    curves["data_consistency_std"] = dc.std(1).tolist() if dc.shape[1] > 1 else [0.0] * len(dc)
    curves["dc_t"] = [float(t) for t in run.extras[0]["t_grid"][: len(dc)]]
    return curves


def make_choice(curves: dict[str, list[float]], sampler_cfg: dict[str, Any], **info: Any) -> dict[str, Any]:
    """The ``early_stopping.json`` content: DO/PO points, the sampler settings they hold for, and ``info``."""
    choice: dict[str, Any] = choose_stopping_points({k: v for k, v in curves.items() if k != "dc_t"})
    choice["sampler"] = {k: sampler_cfg[k] for k in SAMPLER_KEYS}
    return {**choice, **info}


def tune_methods(
    names: Sequence[str], resources: Resources, load: SplitLoader, split: str, batch_size: int, seed: int = 0
) -> tuple[dict[str, Restorer], dict[str, Tuned]]:
    """Each named method with its hyper-parameters chosen on ``split`` (validation): ``load`` is only ever asked
    for ``split``. Returns ``({name: restorer}, {name: Tuned})``."""
    methods = {name: get_method(name) for name in names}  # unknown names refused before any work
    if not methods:
        return {}, {}
    tuned = tune_methods_on(methods, resources, *load(split), batch_size, seed)
    return {name: t.restorer for name, t in tuned.items()}, tuned  # type: ignore[misc]


def oracle_methods(
    names: Sequence[str], resources: Resources, clean: Tensor, y: Tensor, batch_size: int, seed: int = 0
) -> dict[str, Restorer]:
    """``NAME_oracle``: hyper-parameters picked on the evaluated images themselves (an upper bound, reported,
    never chosen). Methods with nothing to tune have no oracle row."""
    methods = {name: get_method(name) for name in names}
    tuned = tune_methods_on(methods, resources, clean, y, batch_size, seed, gridless=False)
    return {f"{name}_oracle": t.restorer for name, t in tuned.items()}  # type: ignore[misc]


def dirac_points(
    make: Callable[[float], SamplerRestorer], choice: dict[str, Any], samples: dict[str, int]
) -> dict[str, tuple[Restorer, int]]:
    """``{"do": (restorer at DO, samples), "po": ...}`` for the points present in ``choice``."""
    return {lb: (make(float(choice[lb]["t"])), samples.get(lb, 1)) for lb in ("do", "po") if lb in choice}
