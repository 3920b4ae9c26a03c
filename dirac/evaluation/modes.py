"""What ``sample.py`` does in each mode, as library functions over a :class:`Context`.

* :func:`reconstruct_split`: degrade a split's clean images, reconstruct at every stopping point (``auto``: DO
  and PO), evaluate with the chosen metrics, write images, grid pages and the summary;
* :func:`reconstruct_folder`: the same for a folder of the user's own measurements (no metrics, any sizes);
* :func:`sweep`: choose DO/PO on val, write ``early_stopping.json`` (with the weights' fingerprint), evaluate
  DO, PO and the baselines (λ tuned on val; ``*_oracle`` rows tuned on test) on test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..degradations import DegradationProcess
from ..metrics.registry import Metric
from ..reconstruction import Restorer
from ..sampling.mismatch import consistency_ratios, warn_mismatch
from ..sampling.sampler import identical_samples_note
from ..stopping_choice import CHOICE_FILE, write_stopping_choice
from ..symmetry import SymmetryEnsemble
from .compare import RunSettings, SplitLoader, compare, describe
from .figures import column_name, comparison_grid, sweep_figures
from .methods import Resources
from .outputs import OutputFolder
from .restorers import SamplerRestorer
from .runner import require_finite, run_mixed_sizes, size_groups
from .summary import measurement_summary, summarise
from .sweep import dirac_points, make_choice, oracle_methods, trajectory_curves, tune_methods
from .write import write_measurements, write_reconstructions

MEANING = {
    "do": "distortion-optimised: stops where mean PSNR on the validation split peaked (sharpest fidelity)",
    "po": "perception-optimised: stops where the perceptual distance on val was lowest (more detail)",
    "full": "the full reverse run to t = 0 (no early-stopping choice file for this checkpoint)",
}


@dataclass
class Context:
    """Everything a mode needs: the restorer maker ``make(t_stop, sampler settings)``, the process, how to
    load a split's ``(clean, y)``, run settings, the output folder and a caption naming the checkpoint."""

    make: Callable[[float, dict[str, Any]], SamplerRestorer]
    process: DegradationProcess
    load: SplitLoader
    settings: RunSettings
    out: OutputFolder
    checkpoint: str
    save_images: bool = True


def point_restorers(
    ctx: Context, points: dict[str, tuple[float, dict]], samples: int, ensemble: str | None = None
) -> dict[str, tuple[Restorer, int]]:
    """``{label: (restorer, samples)}`` per stopping point, averaged over ``ensemble``'s symmetries if given."""

    def build(label: str, t: float, s: dict) -> Restorer:
        restorer = ctx.make(t, s)
        if samples > 1 and not restorer.stochastic:
            warnings.warn(identical_samples_note(restorer.sampler, f"point {label}", samples), stacklevel=3)
        return restorer if ensemble is None else SymmetryEnsemble(restorer, ensemble)

    return {label: (build(label, t, s), samples) for label, (t, s) in points.items()}


def _write(ctx: Context, outputs: dict[str, list[Tensor]], ys: list[Tensor], names: list[str]) -> dict[str, Any]:
    if not ctx.save_images:
        return {}
    files = {lb: write_reconstructions(ctx.out, lb, o, names) for lb, o in outputs.items()}
    write_measurements(ctx.out, ys, names)
    return files


def _grids(ctx: Context, clean: Tensor | None, ys: list[Tensor], outs: dict[str, list[Tensor]], split: str) -> None:
    if not ctx.save_images:
        return
    groups = size_groups(ys)
    for g in groups:
        h, w = ys[g[0]].shape[-2:]
        stem = "figures/grid" + (f"_{h}x{w}" if len(groups) > 1 else "")
        caption = f"{split} · checkpoint: {ctx.checkpoint} · {len(g)} images" + (
            f" of {h}x{w}" if len(groups) > 1 else ""
        )
        gt = None if clean is None else clean[g]
        y = torch.stack([ys[i] for i in g])
        cols = {lb: torch.stack([o[i] for i in g]) for lb, o in outs.items()}
        ctx.out.produce(comparison_grid, ctx.out.root / stem, gt, y, cols, caption)


def reconstruct_split(
    ctx: Context, split: str, points: dict, samples: int, ensemble: str | None = None
) -> dict[str, Any]:
    """Degrade ``split``, reconstruct at every point, evaluate, write; returns the summary."""
    clean, y = ctx.load(split)
    summaries, outputs = compare(point_restorers(ctx, points, samples, ensemble), clean, y, ctx.settings)
    outs = {lb: list(o) for lb, o in outputs.items()}
    names = [f"{i:04d}.png" for i in range(len(y))]
    files = _write(ctx, outs, list(y), names)
    _grids(ctx, clean, list(y), outs, f"split: {split}")
    meas = measurement_summary(y, clean, ctx.settings.metrics)
    return _summary(ctx, split, summaries, files, {"measurement": meas, "num_images": len(y)})


def reconstruct_folder(
    ctx: Context, ys: list[Tensor], names: list[str], points: dict, samples: int, ensemble: str | None = None
) -> dict[str, Any]:
    """Reconstruct the user's measurements (any sizes, batched per size) at every point; no ground truth."""
    summaries, outs = {}, {}
    for label, (restorer, n) in point_restorers(ctx, points, samples, ensemble).items():
        s = ctx.settings
        per_image, runs = run_mixed_sizes(restorer, ys, s.batch_size, samples=n, seed=s.seed,
                                          per_image_noise=s.per_image_noise, device=s.device)  # fmt: skip
        for o, name in zip(per_image, names, strict=True):
            require_finite(o, f"{label}: {name}")
        outs[label] = per_image
        timing = {"wall_s": sum(r.seconds for r in runs), "nfe_per_image": runs[0].nfe_per_image}
        summaries[label] = {
            "t_stop": describe(restorer)["t_stop"],
            **summarise(per_image, ys, ctx.process),
            "timing": timing,
        }
    files = _write(ctx, outs, ys, names)
    _grids(ctx, None, ys, outs, "your measurements")
    ratios = _check_consistency(ctx.process, outs.get("do", next(iter(outs.values()))), ys)
    extra = {"num_images": len(ys), "names": names, "consistency_ratio": ratios}
    return _summary(ctx, "measurements", summaries, files, extra)


def _check_consistency(process: DegradationProcess, outs: list[Tensor], ys: list[Tensor]) -> list[float]:
    """``‖A_1 x̂ − y‖ / (√n σ_y)`` per measurement (x̂: the mean of its ``(S, C, H, W)`` samples, as the pipeline
    checks it), with a mismatch warning when some leave the band."""
    pairs = zip(outs, ys, strict=True)
    ratios = torch.cat(
        [consistency_ratios(process, o.reshape(-1, *o.shape[-3:]).mean(0, keepdim=True), y.reshape(1, *y.shape[-3:]))
         for o, y in pairs]
    )  # fmt: skip
    warn_mismatch(ratios, process.sigma_y)
    return [float(r) for r in ratios]


def _summary(ctx: Context, split: str, points: dict, files: dict, extra: dict) -> dict[str, Any]:
    meaning = {lb: MEANING.get(lb, f"stopped at {column_name(lb)}") for lb in points}
    for lb, f in files.items():
        points[lb]["outputs"] = f
    return {"checkpoint": ctx.checkpoint, "split": split, "points": points, "meaning": meaning, **extra}


def sweep(ctx: Context, sampler_cfg: dict, cfg: dict, perceptual: Metric, fingerprint: str) -> dict[str, Any]:
    """Choose DO/PO on ``sweep.split``, write the choice file, evaluate DO/PO and baselines on ``sweep.eval_split``."""
    val_split, test_split = cfg["sweep"]["split"], cfg["sweep"]["eval_split"]
    val_clean, val_y = ctx.load(val_split)
    curves = trajectory_curves(ctx.make(0.0, sampler_cfg), val_clean, val_y, perceptual, ctx.settings)
    choice = make_choice(curves, sampler_cfg, split=val_split, perceptual=perceptual.label, checkpoint=ctx.checkpoint)
    ctx.out.produce(write_stopping_choice, ctx.out.root / CHOICE_FILE, choice, fingerprint)
    ctx.out.json("sweep_curves.json", curves)
    names = list(cfg["sweep"].get("baselines") or [])
    resources = Resources(ctx.process)
    baselines, tuned = tune_methods(names, resources, ctx.load, val_split, ctx.settings.batch_size, ctx.settings.seed)
    test_clean, test_y = ctx.load(test_split)
    methods = dirac_points(lambda t: ctx.make(t, sampler_cfg), choice, {"po": cfg["sweep"]["po_samples"]})
    methods.update({k: (r, 1) for k, r in baselines.items()})
    oracles = oracle_methods(names, resources, test_clean, test_y, ctx.settings.batch_size, ctx.settings.seed)
    methods.update({k: (r, 1) for k, r in oracles.items()})
    summaries, outputs = compare(methods, test_clean, test_y, ctx.settings)
    for k in summaries:
        summaries[k].pop("per_image", None)
    caption = f"split: {val_split} · checkpoint: {ctx.checkpoint} · {len(val_y)} images"
    ctx.out.produce(sweep_figures, ctx.out.root / "figures", curves, choice, ctx.process, perceptual.label, caption)
    dirac_outs = {k: v for k, v in outputs.items() if k in ("do", "po")}
    if ctx.save_images:
        cap = f"split: {test_split} · checkpoint: {ctx.checkpoint} · DO/PO chosen on {val_split}"
        ctx.out.produce(comparison_grid, ctx.out.root / "figures" / "samples", test_clean, test_y, dirac_outs, cap)
    test = {**summaries, "measurement": measurement_summary(test_y, test_clean, ctx.settings.metrics)}
    return {"checkpoint": ctx.checkpoint, "choice": choice, "scores_on_val": {k: t.scores for k, t in tuned.items()},
            "test_split": test_split, "test": test, "meaning": {k: MEANING[k] for k in dirac_outs}}  # fmt: skip
