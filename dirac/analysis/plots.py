"""Figures for the evaluation: perception–distortion curves, metrics along the reverse trajectory, data
consistency, severity schedules, image grids and generic benchmark curves.

Every function draws on a fresh :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot, no global state;
the style is applied through a temporary ``rc_context``), writes a PNG (``dpi=150``) **and** a JSON file
with the exact data behind the figure (same stem, ``.json``), and returns the PNG path.

Inputs are plain: sequences of floats (lists, tuples, 1-D tensors or arrays), dicts and floats; image grids
take ``(B, C, H, W)`` tensors in [0, 1]. Nothing is read from disk. Non-finite values are drawn as gaps and
stored as ``null`` in the JSON (strict JSON, no ``NaN``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from torch import Tensor

__all__ = [
    "PALETTE",
    "plot_perception_distortion",
    "plot_metrics_vs_t",
    "plot_data_consistency",
    "plot_schedule",
    "plot_image_grid",
    "plot_curves",
]

DPI = 150

# Okabe–Ito colour-blind-safe palette (yellow last: it is hard to see on white).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
_MARKERS = ["s", "^", "v", "P", "X", "h", "<", ">"]

_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "lines.linewidth": 1.6,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}

# Names whose metric is better when higher (used when ``higher_is_better`` does not say).
_HIGHER_IS_BETTER = ("psnr", "ssim", "accuracy", "images/s", "throughput")


# ----------------------------------------------------------------------------------------------- helpers


def _floats(values: Any, name: str, allow_empty: bool = False) -> list[float]:
    """A 1-D sequence of numbers (list, tuple, tensor, array) -> list of Python floats."""
    if isinstance(values, Tensor):
        if values.dim() > 1:
            raise ValueError(f"{name} must be 1-D, got a tensor of shape {tuple(values.shape)}")
        values = values.detach().cpu().reshape(-1).tolist()
    elif isinstance(values, np.ndarray):
        if values.ndim > 1:
            raise ValueError(f"{name} must be 1-D, got an array of shape {values.shape}")
        values = values.reshape(-1).tolist()
    elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must contain only numbers ({e})") from None
    if not out and not allow_empty:
        raise ValueError(f"{name} is empty")
    return out


def _same_length(**seqs: list[float]) -> int:
    lengths = {k: len(v) for k, v in seqs.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"len({k})={n}" for k, n in lengths.items())
        raise ValueError(f"length mismatch: {desc}; all must be equal")
    return next(iter(lengths.values()))


def _index(i: int | None, n: int, name: str) -> int | None:
    if i is None:
        return None
    if isinstance(i, bool) or not isinstance(i, int | np.integer):
        raise ValueError(f"{name} must be an int or None, got {type(i).__name__}")
    if not -n <= i < n:
        raise ValueError(f"{name}={i} out of range for {n} points")
    return int(i) % n


def _jsonable(x: Any) -> Any:
    """Floats stay floats (non-finite -> None); tensors/arrays -> lists; tuples -> lists; keys -> str."""
    if isinstance(x, Tensor):
        return _jsonable(x.detach().cpu().tolist())
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, bool | str) or x is None:
        return x
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, Sequence):
        return [_jsonable(v) for v in x]
    return str(x)


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png") if path.suffix == "" else path.with_suffix(".png")
    return path, path.with_suffix(".json")


def _new_figure(figsize: tuple[float, float]) -> Figure:
    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | Path, data: dict[str, Any]) -> Path:
    png, js = _paths(path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=DPI)
    js.write_text(json.dumps(_jsonable(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    return png


def _nan_arg(values: list[float], higher: bool) -> int | None:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).any():
        return None
    arr = np.where(np.isfinite(arr), arr, -np.inf if higher else np.inf)
    return int(np.argmax(arr) if higher else np.argmin(arr))


def _fmt(v: float) -> str:
    """Short, readable number: 3 significant digits, no scientific notation for ordinary ranges."""
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.3g}" if a < 100 else f"{v:.1f}"


def _label_indices(n: int, parts: int = 5) -> list[int]:
    """About ``parts + 1`` evenly spread indices including both ends."""
    if n <= 0:
        return []
    return sorted({int(round(k)) for k in np.linspace(0, n - 1, min(n, parts + 1))})


def _invert_t_axis(ax, t: list[float]) -> None:
    finite = [v for v in t if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.05, hi + 0.05
    pad = 0.02 * (hi - lo)
    ax.set_xlim(hi + pad, lo - pad)


def _label_offset(x: np.ndarray, y: np.ndarray, i: int, dist: float = 7.0) -> tuple[float, float]:
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


# ----------------------------------------------------------------------------------------------- figures


def plot_perception_distortion(
    psnr: Sequence[float],
    perceptual: Sequence[float],
    t: Sequence[float],
    path: str | Path,
    do_index: int | None,
    po_index: int | None,
    perceptual_name: str = "SWD (×1e3, lower = more realistic)",
    extra_points: dict[str, tuple[float, float]] | None = None,
    title: str | None = "Perception–distortion trade-off along the reverse trajectory",
) -> Path:
    """PSNR (y) against a perceptual score (x), one point per early-stopping time, coloured by ``t``.

    ``do_index``/``po_index`` index the distortion-optimal (star) and perception-optimal (diamond) points;
    ``extra_points`` maps a name to ``(perceptual, psnr)`` for reference methods (measurement, Tikhonov, …).
    """
    psnr_l = _floats(psnr, "psnr")
    perc_l = _floats(perceptual, "perceptual")
    t_l = _floats(t, "t")
    n = _same_length(psnr=psnr_l, perceptual=perc_l, t=t_l)
    do_i = _index(do_index, n, "do_index")
    po_i = _index(po_index, n, "po_index")
    extras: dict[str, tuple[float, float]] = {}
    for name, pt in (extra_points or {}).items():
        if pt is None:
            continue
        vals = _floats(list(pt), f"extra_points[{name!r}]")
        if len(vals) != 2:
            raise ValueError(f"extra_points[{name!r}] must be (perceptual, psnr), got {len(vals)} values")
        extras[str(name)] = (vals[0], vals[1])

    x, y, tt = np.asarray(perc_l), np.asarray(psnr_l), np.asarray(t_l)
    labelled = [i for i in _label_indices(n) if i not in (do_i, po_i)]
    with mpl.rc_context(_STYLE):
        fig = _new_figure((6.4, 4.6))
        ax = fig.add_subplot()
        finite_t = tt[np.isfinite(tt)]
        tmin, tmax = (float(finite_t.min()), float(finite_t.max())) if finite_t.size else (0.0, 1.0)
        if tmax == tmin:
            tmin, tmax = tmin - 0.5, tmax + 0.5
        norm = Normalize(vmin=tmin, vmax=tmax)
        if n > 1:
            segs = np.stack([np.column_stack([x[:-1], y[:-1]]), np.column_stack([x[1:], y[1:]])], axis=1)
            lc = LineCollection(segs, cmap="viridis", norm=norm, linewidths=2.0, alpha=0.9, zorder=2)
            lc.set_array(0.5 * (tt[:-1] + tt[1:]))
            ax.add_collection(lc)
        sc = ax.scatter(x, y, c=tt, cmap="viridis", norm=norm, s=14, zorder=3, edgecolors="none")
        cbar = fig.colorbar(sc, ax=ax, pad=0.01, fraction=0.05)
        cbar.set_label("t_stop")
        for i in labelled:
            dx, dy = _label_offset(x, y, i)
            ax.annotate(
                f"t={_fmt(t_l[i])}",
                (x[i], y[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 2 else ("right" if dx < -2 else "center"),
                va="bottom" if dy > 2 else ("top" if dy < -2 else "center"),
                fontsize=7,
                color="#333333",
                zorder=4,
            )
        for idx, marker, colour, size, tag in ((do_i, "*", PALETTE[1], 220, "DO"), (po_i, "D", PALETTE[3], 80, "PO")):
            if idx is None:
                continue
            ax.scatter(
                [x[idx]],
                [y[idx]],
                marker=marker,
                s=size,
                color=colour,
                edgecolors="black",
                linewidths=0.7,
                zorder=6,
                label=f"{tag} t={_fmt(t_l[idx])} ({_fmt(psnr_l[idx])} dB, {_fmt(perc_l[idx])})",
            )
        for k, (name, (px, py)) in enumerate(extras.items()):
            ax.scatter(
                [px],
                [py],
                marker=_MARKERS[k % len(_MARKERS)],
                s=55,
                color=PALETTE[(k + 4) % len(PALETTE)],
                edgecolors="black",
                linewidths=0.6,
                zorder=5,
                label=f"{name} ({_fmt(py)} dB, {_fmt(px)})",
            )
        ax.autoscale_view()
        ax.margins(0.08)
        ax.set_xlabel(perceptual_name)
        ax.set_ylabel("PSNR (dB, higher = less distortion)")
        ax.text(0.01, 0.99, "↖ better", transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#555555")
        if title:
            ax.set_title(title)
        if do_i is not None or po_i is not None or extras:
            ax.legend(loc="best")

        def point(i: int | None) -> dict[str, float] | None:
            return None if i is None else {"index": i, "t": t_l[i], "psnr": psnr_l[i], "perceptual": perc_l[i]}

        data = {
            "kind": "perception_distortion",
            "psnr": psnr_l,
            "perceptual": perc_l,
            "t": t_l,
            "perceptual_name": perceptual_name,
            "do_index": do_i,
            "po_index": po_i,
            "do": point(do_i),
            "po": point(po_i),
            "extra_points": {k: {"perceptual": v[0], "psnr": v[1]} for k, v in extras.items()},
            "labelled_indices": labelled,
            "title": title,
        }
        return _save(fig, path, data)


def plot_metrics_vs_t(
    t: Sequence[float],
    metrics: dict[str, Sequence[float]],
    path: str | Path,
    higher_is_better: dict[str, bool] | None = None,
    marks: dict[str, float] | None = None,
    title: str | None = "Metrics along the reverse trajectory",
) -> Path:
    """One panel per metric against ``t`` (x from 1 on the left to 0 on the right), best value marked.

    ``higher_is_better`` defaults per name: PSNR/SSIM-like names higher, everything else lower.
    ``marks`` draws labelled vertical dashed lines, e.g. ``{"DO": 1.0, "PO": 0.25}``.
    """
    t_l = _floats(t, "t")
    if not metrics:
        raise ValueError("metrics is empty: need at least one metric")
    series = {str(k): _floats(v, f"metrics[{k!r}]") for k, v in metrics.items()}
    for name, vals in series.items():
        if len(vals) != len(t_l):
            raise ValueError(f"length mismatch: len(t)={len(t_l)} but len(metrics[{name!r}])={len(vals)}")
    hib = dict(higher_is_better or {})
    resolved = {k: bool(hib.get(k, any(s in k.lower() for s in _HIGHER_IS_BETTER))) for k in series}
    marks_d = {str(k): float(v) for k, v in (marks or {}).items()}

    best: dict[str, Any] = {}
    n_m = len(series)
    with mpl.rc_context(_STYLE):
        fig = _new_figure((6.4, 1.2 + 1.9 * n_m))
        axes = fig.subplots(n_m, 1, sharex=True, squeeze=False)[:, 0]
        for k, (ax, (name, vals)) in enumerate(zip(axes, series.items(), strict=True)):
            colour = PALETTE[k % (len(PALETTE) - 1)]
            ax.plot(t_l, vals, color=colour, marker="o" if len(t_l) <= 30 else None, markersize=3)
            i = _nan_arg(vals, resolved[name])
            if i is not None:
                best[name] = {"index": i, "t": t_l[i], "value": vals[i]}
                ax.scatter(
                    [t_l[i]],
                    [vals[i]],
                    marker="*",
                    s=150,
                    color=colour,
                    edgecolors="black",
                    linewidths=0.7,
                    zorder=5,
                    label=f"best {_fmt(vals[i])} @ t={_fmt(t_l[i])}",
                )
            else:
                best[name] = None
            for j, (mname, mt) in enumerate(marks_d.items()):
                ax.axvline(
                    mt,
                    linestyle="--",
                    linewidth=1.1,
                    color=PALETTE[(j + 4) % len(PALETTE)],
                    label=f"{mname} (t={_fmt(mt)})" if k == 0 else None,
                    zorder=1,
                )
            arrow = "↑" if resolved[name] else "↓"
            ax.set_ylabel(f"{name}\n({arrow} better)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=7)
        _invert_t_axis(axes[0], t_l + list(marks_d.values()))
        axes[-1].set_xlabel("t (reverse time →)")
        if title:
            fig.suptitle(title, fontsize=10, fontweight="bold")
        data = {
            "kind": "metrics_vs_t",
            "t": t_l,
            "metrics": series,
            "higher_is_better": resolved,
            "best": best,
            "marks": marks_d,
            "title": title,
        }
        return _save(fig, path, data)


def plot_data_consistency(
    t: Sequence[float],
    dc_mean: Sequence[float],
    path: str | Path,
    sigma_y: float,
    dc_std: Sequence[float] | None = None,
    label: str = "‖A₁(x̂₀) − y‖/√n",
    logy: bool = False,
    title: str | None = "Data consistency along the reverse trajectory",
) -> Path:
    """Data-consistency error against ``t`` (x inverted: reverse time runs left to right), ±std band and
    a dashed horizontal line at the noise floor ``sigma_y``."""
    t_l = _floats(t, "t")
    mean_l = _floats(dc_mean, "dc_mean")
    std_l = None if dc_std is None else _floats(dc_std, "dc_std")
    if std_l is None:
        _same_length(t=t_l, dc_mean=mean_l)
    else:
        _same_length(t=t_l, dc_mean=mean_l, dc_std=std_l)
    sigma = float(sigma_y)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma_y must be a finite non-negative float, got {sigma_y}")

    with mpl.rc_context(_STYLE):
        fig = _new_figure((6.4, 3.8))
        ax = fig.add_subplot()
        ax.plot(
            t_l,
            mean_l,
            color=PALETTE[0],
            marker="o" if len(t_l) <= 30 else None,
            markersize=3,
            label=f"{label} (mean)" if std_l is not None else label,
        )
        if std_l is not None:
            m, s = np.asarray(mean_l), np.asarray(std_l)
            lo = m - s
            if logy:
                lo = np.maximum(lo, m * 1e-3)
            ax.fill_between(t_l, lo, m + s, color=PALETTE[0], alpha=0.2, linewidth=0, label="± 1 std")
        ax.axhline(
            sigma, linestyle="--", color=PALETTE[1], linewidth=1.3, label=rf"noise floor $\sigma_y$ = {_fmt(sigma)}"
        )
        if logy:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        _invert_t_axis(ax, t_l)
        ax.set_xlabel("t (reverse time →)")
        ax.set_ylabel(f"{label} (pixel units, [0, 1] scale)")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
        data = {
            "kind": "data_consistency",
            "t": t_l,
            "dc_mean": mean_l,
            "dc_std": std_l,
            "sigma_y": sigma,
            "label": label,
            "logy": logy,
            "title": title,
        }
        return _save(fig, path, data)


def plot_schedule(
    t_knots: Sequence[float],
    severities: Sequence[float],
    path: str | Path,
    severity_name: str = "blur std (px)",
    linear: tuple[float, float] | None = None,
    title: str | None = "Severity schedule",
) -> Path:
    """Severity against ``t`` for a (greedy) schedule, knots as dots, with the linear schedule from
    ``linear = (s_min, s_max)`` (``s_min`` at t = 0, ``s_max`` at t = 1) as a dashed reference."""
    t_l = _floats(t_knots, "t_knots")
    s_l = _floats(severities, "severities")
    _same_length(t_knots=t_l, severities=s_l)
    lin = None
    if linear is not None:
        lin = _floats(list(linear), "linear")
        if len(lin) != 2:
            raise ValueError(f"linear must be (s_min, s_max), got {len(lin)} values")

    order = np.argsort(np.asarray(t_l), kind="stable")
    ts, ss = np.asarray(t_l)[order], np.asarray(s_l)[order]
    with mpl.rc_context(_STYLE):
        fig = _new_figure((5.6, 3.8))
        ax = fig.add_subplot()
        ax.plot(
            ts,
            ss,
            color=PALETTE[0],
            linewidth=1.8,
            marker="o",
            markersize=2.5 if len(ts) > 60 else 3.5,
            label=f"schedule ({len(ts)} knots)",
            zorder=3,
        )
        if lin is not None:
            ax.plot(
                [0.0, 1.0],
                lin,
                linestyle="--",
                color=PALETTE[1],
                linewidth=1.3,
                label=f"linear {_fmt(lin[0])} → {_fmt(lin[1])}",
                zorder=2,
            )
        if ts.min() >= 0 and ts.max() <= 1:
            ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("t (forward time: 0 = clean, 1 = measurement)")
        ax.set_ylabel(severity_name)
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
        data = {
            "kind": "schedule",
            "t_knots": t_l,
            "severities": s_l,
            "severity_name": severity_name,
            "linear": lin,
            "title": title,
        }
        return _save(fig, path, data)


def _image_array(img: Tensor, name: str) -> np.ndarray:
    c = img.shape[0]
    if c == 1:
        return img[0].numpy()
    if c == 3:
        return img.permute(1, 2, 0).numpy()
    raise ValueError(f"column {name!r} has {c} channels: image columns must be grey (1) or RGB (3)")


def plot_image_grid(
    columns: dict[str, Tensor | None],
    path: str | Path,
    max_rows: int = 8,
    scale: float | None = None,
    title: str | None = None,
) -> Path:
    """A labelled grid: one column per named ``(B, C, H, W)`` batch in [0, 1] (grey or RGB), one row per
    sample (at most ``max_rows``; the shortest batch bounds the rows). ``None`` columns are skipped.

    A column whose name starts with ``"std"`` is an uncertainty map: channels are averaged and each image is
    shown with the ``magma`` colormap normalised to its own maximum (printed under the cell).
    ``scale`` is the size of one cell in inches (default: 1.1 in for images up to 48 px, larger for bigger).
    The JSON holds column names, shapes, the rows shown and per-image statistics, not the pixels.
    """
    cols = {str(k): v for k, v in columns.items() if v is not None}
    if not cols:
        raise ValueError("plot_image_grid: no columns to show (all missing or None)")
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    prepared: dict[str, Tensor] = {}
    for name, x in cols.items():
        if not isinstance(x, Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dim() != 4:
            raise ValueError(f"column {name!r} must be (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"column {name!r} is an empty batch")
        x = x.detach().float().cpu()
        if name.lower().startswith("std"):
            x = x.mean(dim=1, keepdim=True).clamp(min=0)
        elif x.shape[1] not in (1, 3):
            raise ValueError(f"column {name!r} has {x.shape[1]} channels: image columns must be grey (1) or RGB (3)")
        else:
            x = x.clamp(0, 1)
        prepared[name] = x
    rows = min(max_rows, *(x.shape[0] for x in prepared.values()))
    n_cols = len(prepared)
    max_side = max(max(x.shape[2], x.shape[3]) for x in prepared.values())
    cell = float(scale) if scale is not None else (1.1 if max_side <= 48 else min(2.6, 1.1 * max_side / 48))
    has_std = any(k.lower().startswith("std") for k in prepared)
    cap = 0.16 if has_std else 0.0  # room for the "max …" caption under std cells
    fig_w = n_cols * cell + 0.2
    fig_h = rows * (cell + cap) + 0.35 + (0.3 if title else 0.0)

    stats: dict[str, Any] = {}
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(fig_w, fig_h), dpi=DPI, layout="constrained")
        fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
        axes = fig.subplots(rows, n_cols, squeeze=False)
        for j, (name, x) in enumerate(prepared.items()):
            is_std = name.lower().startswith("std")
            col_stats = []
            for i in range(rows):
                ax = axes[i, j]
                img = x[i]
                if is_std:
                    vmax = float(img.max())
                    ax.imshow(
                        img[0].numpy(), cmap="magma", vmin=0.0, vmax=vmax if vmax > 0 else 1.0, interpolation="nearest"
                    )
                    ax.set_xlabel(f"max {_fmt(vmax)}", fontsize=6, labelpad=1)
                    col_stats.append({"mean": float(img.mean()), "max": vmax})
                else:
                    arr = _image_array(img, name)
                    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
                    col_stats.append({"mean": float(img.mean()), "min": float(img.min()), "max": float(img.max())})
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if i == 0:
                    ax.set_title(name, fontsize=8, fontweight="bold", pad=3)
            stats[name] = {
                "shape": list(cols[name].shape),
                "kind": "std" if is_std else ("grey" if x.shape[1] == 1 else "rgb"),
                "images": col_stats,
            }
        if title:
            fig.suptitle(title, fontsize=10, fontweight="bold")
        data = {
            "kind": "image_grid",
            "columns": list(prepared),
            "skipped": [str(k) for k, v in columns.items() if v is None],
            "rows": rows,
            "max_rows": max_rows,
            "cell_inches": cell,
            "stats": stats,
            "title": title,
        }
        return _save(fig, path, data)


def plot_curves(
    x: Sequence[float],
    curves: dict[str, Sequence[float]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
) -> Path:
    """Generic line plot: one named curve per entry of ``curves`` against the shared ``x``."""
    x_l = _floats(x, "x")
    if not curves:
        raise ValueError("curves is empty: need at least one curve")
    ys = {str(k): _floats(v, f"curves[{k!r}]") for k, v in curves.items()}
    for name, vals in ys.items():
        if len(vals) != len(x_l):
            raise ValueError(f"length mismatch: len(x)={len(x_l)} but len(curves[{name!r}])={len(vals)}")
    with mpl.rc_context(_STYLE):
        fig = _new_figure((5.6, 3.8))
        ax = fig.add_subplot()
        for k, (name, vals) in enumerate(ys.items()):
            ax.plot(
                x_l,
                vals,
                marker=_MARKERS[k % len(_MARKERS)] if len(x_l) <= 40 else None,
                markersize=4,
                color=PALETTE[k % (len(PALETTE) - 1)],
                label=name,
            )
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if logx or logy:
            ax.grid(True, which="minor", alpha=0.1)
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")
        if logx:
            ax.xaxis.set_major_formatter(plain)
            pos = sorted({v for v in x_l if math.isfinite(v) and v > 0})
            if 1 < len(pos) <= 12:
                ax.set_xticks(pos)
                ax.xaxis.set_minor_formatter(NullFormatter())
        if logy:
            ax.yaxis.set_major_formatter(plain)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(ys) > 1 or next(iter(ys)) != ylabel:
            ax.legend(loc="best")
        if title:
            ax.set_title(title)
        data = {
            "kind": "curves",
            "x": x_l,
            "curves": ys,
            "xlabel": xlabel,
            "ylabel": ylabel,
            "logx": logx,
            "logy": logy,
            "title": title,
        }
        return _save(fig, path, data)
