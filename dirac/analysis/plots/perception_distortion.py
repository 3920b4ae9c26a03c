"""Perception–distortion curve of the early-stopping sweep: PSNR against a perceptual score, one point per t."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .figure_io import new_figure, save_figure
from .inputs import floats, fmt, index_or_none, pair, same_length
from .style import MARKERS, PALETTE, STYLE

_DEFAULT_TITLE = "Perception–distortion trade-off along the reverse trajectory"


def label_indices(n: int, parts: int = 5) -> list[int]:
    """About ``parts + 1`` evenly spread indices including both ends."""
    if n <= 0:
        return []
    return sorted({int(round(k)) for k in np.linspace(0, n - 1, min(n, parts + 1))})


def label_offset(x: np.ndarray, y: np.ndarray, i: int, dist: float = 7.0) -> tuple[float, float]:
    """Offset (points) for the label of point ``i``: perpendicular to the curve, away from its centroid."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or not ok[i]:
        return dist, dist
    xs, ys = x[ok], y[ok]
    sx, sy = float(np.ptp(xs)) or 1.0, float(np.ptp(ys)) or 1.0
    lo, hi = max(i - 1, 0), min(i + 1, len(x) - 1)
    d = np.array([(x[hi] - x[lo]) / sx, (y[hi] - y[lo]) / sy])
    if not np.isfinite(d).all() or np.linalg.norm(d) < 1e-12:
        return dist, dist
    nrm = np.array([d[1], -d[0]]) / np.linalg.norm(d)
    away = np.array([(x[i] - xs.mean()) / sx, (y[i] - ys.mean()) / sy])
    if float(nrm @ away) < 0:
        nrm = -nrm
    return float(dist * nrm[0]), float(dist * nrm[1])


def _extra_points(extra_points: dict[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    return {
        str(name): pair(pt, f"extra_points[{name!r}]", "(perceptual, psnr)")
        for name, pt in (extra_points or {}).items()
        if pt is not None
    }


def _t_norm(t: np.ndarray) -> Normalize:
    finite = t[np.isfinite(t)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Normalize(vmin=lo - 0.5, vmax=hi + 0.5) if hi == lo else Normalize(vmin=lo, vmax=hi)


def _draw_trajectory(fig: Figure, ax: Axes, x: np.ndarray, y: np.ndarray, t: np.ndarray) -> None:
    """The curve coloured by t (segments and dots) with a ``t_stop`` colour bar."""
    norm = _t_norm(t)
    if len(x) > 1:
        segs = np.stack([np.column_stack([x[:-1], y[:-1]]), np.column_stack([x[1:], y[1:]])], axis=1)
        lc = LineCollection(segs, cmap="viridis", norm=norm, linewidths=2.0, alpha=0.9, zorder=2)
        lc.set_array(0.5 * (t[:-1] + t[1:]))
        ax.add_collection(lc)
    dots = ax.scatter(x, y, c=t, cmap="viridis", norm=norm, s=14, zorder=3, edgecolors="none")
    fig.colorbar(dots, ax=ax, pad=0.01, fraction=0.05).set_label("t_stop")


def _label_points(ax: Axes, x: np.ndarray, y: np.ndarray, t: list[float], labelled: list[int]) -> None:
    for i in labelled:
        dx, dy = label_offset(x, y, i)
        ax.annotate(
            f"t={fmt(t[i])}",
            (x[i], y[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            ha="left" if dx > 2 else ("right" if dx < -2 else "center"),
            va="bottom" if dy > 2 else ("top" if dy < -2 else "center"),
            fontsize=7,
            color="#333333",
            zorder=4,
        )


def _mark_do_po(ax: Axes, psnr: list[float], perc: list[float], t: list[float], do: int | None, po: int | None) -> None:
    """Distortion-optimal point as a star, perception-optimal point as a diamond, both in the legend."""
    for idx, marker, colour, size, tag in ((do, "*", PALETTE[1], 220, "DO"), (po, "D", PALETTE[3], 80, "PO")):
        if idx is None:
            continue
        label = f"{tag} t={fmt(t[idx])} ({fmt(psnr[idx])} dB, {fmt(perc[idx])})"
        ax.scatter(
            [perc[idx]],
            [psnr[idx]],
            marker=marker,
            s=size,
            color=colour,
            edgecolors="black",
            linewidths=0.7,
            zorder=6,
            label=label,
        )


def _draw_extra_points(ax: Axes, extras: dict[str, tuple[float, float]]) -> None:
    for k, (name, (px, py)) in enumerate(extras.items()):
        colour = PALETTE[(k + 4) % len(PALETTE)]
        marker = MARKERS[k % len(MARKERS)]
        label = f"{name} ({fmt(py)} dB, {fmt(px)})"
        style = {"s": 55, "color": colour, "edgecolors": "black", "linewidths": 0.6, "zorder": 5}
        ax.scatter([px], [py], marker=marker, label=label, **style)


def _finish_axes(ax: Axes, perceptual_name: str, with_legend: bool) -> None:
    ax.autoscale_view()
    ax.margins(0.08)
    ax.set_xlabel(perceptual_name)
    ax.set_ylabel("PSNR (dB, higher = less distortion)")
    ax.text(0.01, 0.99, "↖ better", transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#555555")
    if with_legend:  # below the plot: inside it, the legend tends to hide the DO end of the curve
        handles, labels = ax.get_legend_handles_labels()
        ax.figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=7.5)


def plot_perception_distortion(
    psnr: Sequence[float],
    perceptual: Sequence[float],
    t: Sequence[float],
    path: str | Path,
    do_index: int | None,
    po_index: int | None,
    perceptual_name: str = "SWD (×1e3, lower = more realistic)",
    extra_points: dict[str, tuple[float, float]] | None = None,
    title: str | None = _DEFAULT_TITLE,
    caption: str | None = None,
) -> Path:
    """PSNR (y) against a perceptual score (x), one point per early-stopping time ``t``, coloured by ``t``.

    ``do_index``/``po_index`` index the distortion-optimal (star) and perception-optimal (diamond) points
    (DO = best PSNR, PO = best perceptual score along the trajectory); ``extra_points`` maps a name to
    ``(perceptual, psnr)`` for reference methods (measurement, Tikhonov, …). ``caption`` (e.g. split and
    checkpoint) is a small line under the title. Writes ``path`` (PNG) and its JSON; returns the PNG path.
    """
    psnr_l, perc_l, t_l = floats(psnr, "psnr"), floats(perceptual, "perceptual"), floats(t, "t")
    n = same_length(psnr=psnr_l, perceptual=perc_l, t=t_l)
    do_i, po_i = index_or_none(do_index, n, "do_index"), index_or_none(po_index, n, "po_index")
    extras = _extra_points(extra_points)
    x, y, tt = np.asarray(perc_l), np.asarray(psnr_l), np.asarray(t_l)
    labelled = [i for i in label_indices(n) if i not in (do_i, po_i)]
    with mpl.rc_context(STYLE):
        fig = new_figure((6.4, 4.6), title, caption)
        ax = fig.add_subplot()
        _draw_trajectory(fig, ax, x, y, tt)
        _label_points(ax, x, y, t_l, labelled)
        _mark_do_po(ax, psnr_l, perc_l, t_l, do_i, po_i)
        _draw_extra_points(ax, extras)
        _finish_axes(ax, perceptual_name, do_i is not None or po_i is not None or bool(extras))
        data = _pd_data(psnr_l, perc_l, t_l, do_i, po_i, extras, labelled, perceptual_name)
        return save_figure(fig, path, data, title, caption)


def _pd_data(
    psnr: list[float],
    perc: list[float],
    t: list[float],
    do_i: int | None,
    po_i: int | None,
    extras: dict[str, tuple[float, float]],
    labelled: list[int],
    perceptual_name: str,
) -> dict[str, Any]:
    def point(i: int | None) -> dict[str, float] | None:
        return None if i is None else {"index": i, "t": t[i], "psnr": psnr[i], "perceptual": perc[i]}

    return {
        "kind": "perception_distortion",
        "psnr": psnr,
        "perceptual": perc,
        "t": t,
        "perceptual_name": perceptual_name,
        "do_index": do_i,
        "po_index": po_i,
        "do": point(do_i),
        "po": point(po_i),
        "extra_points": {k: {"perceptual": v[0], "psnr": v[1]} for k, v in extras.items()},
        "labelled_indices": labelled,
    }
