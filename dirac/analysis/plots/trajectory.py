"""Quantities along the reverse trajectory against t: metrics per early-stopping time, data consistency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes

from .figure_io import new_figure, save_figure
from .inputs import floats, fmt, same_length, series_like
from .style import HIGHER_IS_BETTER, PALETTE, STYLE, line_colour

T_AXIS_LABEL = "t (reverse time →)"


def invert_t_axis(ax: Axes, t: list[float]) -> None:
    """x from the largest t on the left to the smallest on the right (reverse time runs left to right)."""
    finite = [v for v in t if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.05, hi + 0.05
    pad = 0.02 * (hi - lo)
    ax.set_xlim(hi + pad, lo - pad)


def best_index(values: list[float], higher: bool) -> int | None:
    """Index of the best finite value (highest or lowest), ``None`` when no value is finite."""
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).any():
        return None
    arr = np.where(np.isfinite(arr), arr, -np.inf if higher else np.inf)
    return int(np.argmax(arr) if higher else np.argmin(arr))


def _metric_panel(ax: Axes, t: list[float], vals: list[float], higher: bool, colour: str) -> dict[str, Any] | None:
    """One metric against t with its best value starred; returns ``{index, t, value}`` of the best point."""
    ax.plot(t, vals, color=colour, marker="o" if len(t) <= 30 else None, markersize=3)
    i = best_index(vals, higher)
    if i is not None:
        label = f"best {fmt(vals[i])} @ t={fmt(t[i])}"
        style = {"s": 150, "color": colour, "edgecolors": "black", "linewidths": 0.7, "zorder": 5}
        ax.scatter([t[i]], [vals[i]], marker="*", label=label, **style)
    return None if i is None else {"index": i, "t": t[i], "value": vals[i]}


def _draw_marks(ax: Axes, marks: dict[str, float], with_labels: bool) -> None:
    """Dashed vertical lines at named times (e.g. DO and PO)."""
    for j, (name, mt) in enumerate(marks.items()):
        label = f"{name} (t={fmt(mt)})" if with_labels else None
        ax.axvline(mt, linestyle="--", linewidth=1.1, color=PALETTE[(j + 4) % len(PALETTE)], label=label, zorder=1)


def plot_metrics_vs_t(
    t: Sequence[float],
    metrics: dict[str, Sequence[float]],
    path: str | Path,
    higher_is_better: dict[str, bool] | None = None,
    marks: dict[str, float] | None = None,
    title: str | None = "Metrics along the reverse trajectory",
    caption: str | None = None,
) -> Path:
    """One panel per metric against ``t`` (x from 1 on the left to 0 on the right), best value starred.

    ``higher_is_better`` defaults per name: PSNR/SSIM-like names higher, everything else lower.
    ``marks`` draws labelled vertical dashed lines, e.g. ``{"DO": 1.0, "PO": 0.25}``; ``caption`` is a small
    line under the title (split, checkpoint, image count).
    """
    t_l = floats(t, "t")
    series = series_like(t_l, metrics, "t", "metrics")
    hib = dict(higher_is_better or {})
    resolved = {k: bool(hib.get(k, any(s in k.lower() for s in HIGHER_IS_BETTER))) for k in series}
    marks_d = {str(k): float(v) for k, v in (marks or {}).items()}
    with mpl.rc_context(STYLE):
        fig = new_figure((6.4, 0.9 + 1.9 * len(series)), title, caption)
        axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
        best = {}
        for k, (ax, (name, vals)) in enumerate(zip(axes, series.items(), strict=True)):
            best[name] = _metric_panel(ax, t_l, vals, resolved[name], line_colour(k))
            _draw_marks(ax, marks_d, with_labels=k == 0)
            ax.set_ylabel(f"{name}\n({'↑' if resolved[name] else '↓'} better)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=7)
        invert_t_axis(axes[0], t_l + list(marks_d.values()))
        axes[-1].set_xlabel(T_AXIS_LABEL)
        data = {"kind": "metrics_vs_t", "t": t_l, "metrics": series, "higher_is_better": resolved}
        return save_figure(fig, path, {**data, "best": best, "marks": marks_d}, title, caption)


def _dc_band(ax: Axes, t: list[float], mean: list[float], std: list[float], logy: bool) -> None:
    """±1 std band around the mean (on a log axis the lower edge stays positive)."""
    m, s = np.asarray(mean), np.asarray(std)
    lo = np.maximum(m - s, m * 1e-3) if logy else m - s
    ax.fill_between(t, lo, m + s, color=PALETTE[0], alpha=0.2, linewidth=0, label="± 1 std")


def plot_data_consistency(
    t: Sequence[float],
    dc_mean: Sequence[float],
    path: str | Path,
    sigma_y: float,
    dc_std: Sequence[float] | None = None,
    label: str = "‖A₁(x̂₀) − y‖/√n",
    logy: bool = False,
    title: str | None = "Data consistency along the reverse trajectory",
    caption: str | None = None,
) -> Path:
    """Data-consistency error ‖A_1(x̂0(t)) − y‖/√n against ``t`` (x inverted: reverse time runs left to right),
    a ±std band and a dashed line at the noise floor ``sigma_y`` (a consistent estimate sits near it)."""
    t_l, mean_l = floats(t, "t"), floats(dc_mean, "dc_mean")
    std_l = None if dc_std is None else floats(dc_std, "dc_std")
    same_length(t=t_l, dc_mean=mean_l, **({} if std_l is None else {"dc_std": std_l}))
    sigma = float(sigma_y)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma_y must be a finite non-negative float, got {sigma_y}")
    with mpl.rc_context(STYLE):
        fig = new_figure((6.4, 3.8), title, caption)
        ax = fig.add_subplot()
        curve_label = f"{label} (mean)" if std_l is not None else label
        ax.plot(t_l, mean_l, color=PALETTE[0], marker="o" if len(t_l) <= 30 else None, markersize=3, label=curve_label)
        if std_l is not None:
            _dc_band(ax, t_l, mean_l, std_l, logy)
        floor_label = rf"noise floor $\sigma_y$ = {fmt(sigma)}"
        ax.axhline(sigma, linestyle="--", color=PALETTE[1], linewidth=1.3, label=floor_label)
        if logy:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        invert_t_axis(ax, t_l)
        ax.set_xlabel(T_AXIS_LABEL)
        ax.set_ylabel(f"{label} (pixel units, [0, 1] scale)")
        ax.legend(loc="best")
        data = {"kind": "data_consistency", "t": t_l, "dc_mean": mean_l, "dc_std": std_l, "sigma_y": sigma}
        return save_figure(fig, path, {**data, "label": label, "logy": logy}, title, caption)
