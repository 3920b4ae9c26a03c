"""Figures of a run, all through :mod:`dirac.analysis.plots` (PNG + JSON each, captions naming split and
checkpoint): the paged comparison grid (ground truth / measurement / DO / PO / std) and the sweep's curves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..analysis import plots
from ..degradations import DegradationProcess

NAMES = {"do": "DO", "po": "PO", "full": "full run (t=0)"}
SEVERITY = {"blur": "blur std (px)", "inpaint": "mask width w (px)"}


def column_name(label: str) -> str:
    """``do`` -> ``DO``, ``po`` -> ``PO``, ``t0.25`` -> ``t_stop=0.25``, baselines unchanged."""
    if label.startswith("t") and label[1:].replace(".", "", 1).isdigit():
        return f"t_stop={label[1:]}"
    return NAMES.get(label, label)


def grid_columns(clean: Tensor | None, y: Tensor, outputs: Mapping[str, Tensor]) -> dict[str, Tensor | None]:
    """Columns ground truth / measurement / one per method (first sample) / ``std (LABEL)`` for the last
    method drawn with several samples (pixelwise posterior std)."""
    cols: dict[str, Tensor | None] = {"ground truth": clean, "measurement": y.clamp(0, 1)}
    std = None
    for label, out in outputs.items():
        cols[column_name(label)] = out[:, 0]
        if out.shape[1] > 1:
            std = (column_name(label), out.std(1))
    if std is not None:
        cols[f"std ({std[0]})"] = std[1]
    return cols


def comparison_grid(
    stem: Path, clean: Tensor | None, y: Tensor, outputs: Mapping[str, Tensor], caption: str
) -> list[Path]:
    """Every image on pages ``STEM_001.png`` … with one shared std scale and colour bar (see the plots)."""
    cols = grid_columns(clean, y, outputs)
    return plots.plot_image_grid_pages(cols, stem, title="Reconstructions", caption=caption)


def sweep_figures(
    folder: Path, curves: dict[str, list[float]], choice: dict[str, Any], process: DegradationProcess,
    perceptual_label: str, caption: str, extra_points: dict[str, tuple[float, float]] | None = None,
) -> list[Path]:  # fmt: skip
    """Perception–distortion curve, metrics along t, data consistency and the severity schedule."""
    t = curves["t"]
    i_do = t.index(choice["do"]["t"])
    i_po = t.index(choice["po"]["t"]) if "po" in choice else None
    marks = {"DO": choice["do"]["t"], **({"PO": choice["po"]["t"]} if "po" in choice else {})}
    sched = process.schedule
    return [
        plots.plot_perception_distortion(
            curves["psnr"], curves["perceptual"], t, folder / "perception_distortion.png", do_index=i_do,
            po_index=i_po, perceptual_name=perceptual_label, extra_points=extra_points, caption=caption,
        ),
        plots.plot_metrics_vs_t(
            t, {"PSNR (dB)": curves["psnr"], "SSIM": curves["ssim"], perceptual_label: curves["perceptual"]},
            folder / "metrics_vs_t.png", higher_is_better={"PSNR (dB)": True, "SSIM": True, perceptual_label: False},
            marks=marks, caption=caption,
        ),
        plots.plot_data_consistency(
            curves["dc_t"], curves["data_consistency"], folder / "data_consistency.png", sigma_y=process.sigma_y,
            dc_std=curves["data_consistency_std"], caption=caption,
        ),
        plots.plot_schedule(
            sched.t_knots, sched.severities, folder / "schedule.png", caption=caption,
            severity_name=SEVERITY.get(process.kind, "severity"), linear=(sched.s_min, sched.s_max),
        ),
    ]  # fmt: skip
