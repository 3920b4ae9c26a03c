"""Line figures: the severity schedule of a degradation process and generic named curves (benchmarks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, NullFormatter

from .figure_io import new_figure, save_figure
from .inputs import floats, fmt, pair, same_length, series_like
from .style import MARKERS, PALETTE, STYLE, line_colour


def plot_schedule(
    t_knots: Sequence[float],
    severities: Sequence[float],
    path: str | Path,
    severity_name: str = "blur std (px)",
    linear: tuple[float, float] | None = None,
    title: str | None = "Severity schedule",
    caption: str | None = None,
) -> Path:
    """Severity against ``t`` for a (greedy, Sec. 3.9 / Alg. 2) schedule, knots as dots, with the linear
    schedule from ``linear = (s_min, s_max)`` (``s_min`` at t = 0, ``s_max`` at t = 1) as a dashed reference."""
    t_l, s_l = floats(t_knots, "t_knots"), floats(severities, "severities")
    same_length(t_knots=t_l, severities=s_l)
    lin = None if linear is None else list(pair(linear, "linear", "(s_min, s_max)"))
    order = np.argsort(np.asarray(t_l), kind="stable")
    ts, ss = np.asarray(t_l)[order], np.asarray(s_l)[order]
    with mpl.rc_context(STYLE):
        fig = new_figure((5.6, 3.8), title, caption)
        ax = fig.add_subplot()
        knots = f"schedule ({len(ts)} knots)"
        size = 2.5 if len(ts) > 60 else 3.5
        ax.plot(ts, ss, color=PALETTE[0], linewidth=1.8, marker="o", markersize=size, label=knots, zorder=3)
        if lin is not None:
            ref = f"linear {fmt(lin[0])} → {fmt(lin[1])}"
            ax.plot([0.0, 1.0], lin, linestyle="--", color=PALETTE[1], linewidth=1.3, label=ref, zorder=2)
        if ts.min() >= 0 and ts.max() <= 1:
            ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("t (forward time: 0 = clean, 1 = measurement)")
        ax.set_ylabel(severity_name)
        ax.legend(loc="best")
        data = {"kind": "schedule", "t_knots": t_l, "severities": s_l, "severity_name": severity_name, "linear": lin}
        return save_figure(fig, path, data, title, caption)


def _log_axes(ax: Axes, x: list[float], logx: bool, logy: bool) -> None:
    """Log scales with plain tick labels (1, 2, 4 … rather than 10^0.3); every x value ticked when few."""
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        pos = sorted({v for v in x if math.isfinite(v) and v > 0})
        if 1 < len(pos) <= 12:
            ax.set_xticks(pos)
            ax.xaxis.set_minor_formatter(NullFormatter())
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
    if logx or logy:
        ax.grid(True, which="minor", alpha=0.1)


def plot_curves(
    x: Sequence[float],
    curves: dict[str, Sequence[float]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
    caption: str | None = None,
) -> Path:
    """Generic line plot: one named curve per entry of ``curves`` against the shared ``x``."""
    x_l = floats(x, "x")
    ys = series_like(x_l, curves, "x", "curves")
    with mpl.rc_context(STYLE):
        fig = new_figure((5.6, 3.8), title, caption)
        ax = fig.add_subplot()
        for k, (name, vals) in enumerate(ys.items()):
            marker = MARKERS[k % len(MARKERS)] if len(x_l) <= 40 else None
            ax.plot(x_l, vals, marker=marker, markersize=4, color=line_colour(k), label=name)
        _log_axes(ax, x_l, logx, logy)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(ys) > 1 or next(iter(ys)) != ylabel:
            ax.legend(loc="best")
        data = {"kind": "curves", "x": x_l, "curves": ys, "xlabel": xlabel, "ylabel": ylabel}
        return save_figure(fig, path, {**data, "logx": logx, "logy": logy}, title, caption)
