"""Figures of the uncertainty tools: the uncertainty–perception plane, the calibration plot, uncertainty and
hallucination maps on one colour scale, and the perception–distortion curves of the few-shot OT control.
Each writes a PNG and the JSON of its data (:func:`~.figure_io.save_figure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from torch import Tensor

from .figure_io import new_figure, save_figure
from .inputs import floats, same_length
from .style import MARKERS, STYLE, line_colour

MAP_CMAP = "magma"


def plot_up_plane(
    trajectory: Mapping[str, Sequence[float]], points: Mapping[str, tuple[float, float]],
    bound: Mapping[str, Sequence[float]], path: str | Path, caption: str | None = None,
) -> Path:  # fmt: skip
    """Uncertainty ``U`` (y, log) against perception ``P`` (x): the trajectory coloured by ``t``, named points
    ``{name: (P, U)}``, the bound ``η(P)·N(X|Y)`` and the levels ``N(X|Y)`` and ``2·N(X|Y)``."""
    p, u, t = (floats(trajectory[k], f"trajectory[{k!r}]") for k in ("perception", "uncertainty", "t"))
    same_length(perception=p, uncertainty=u, t=t)
    bp, bu = floats(bound["perception"], "bound.perception"), floats(bound["uncertainty"], "bound.uncertainty")
    n_mmse = float(bound["n_mmse"][0])
    title = "Uncertainty–perception plane (Cohen et al. 2024)"
    with mpl.rc_context(STYLE):
        fig = new_figure((5.8, 4.0), title, caption)
        ax = fig.add_subplot()
        ax.fill_between(bp, [min(bu + u) * 0.5] * len(bp), bu, color="#bbbbbb", alpha=0.35, lw=0,
                        label="below the paper's bound η(P)·N(X|Y)")  # fmt: skip
        ax.plot(bp, bu, color="#444444", lw=1.4)
        ax.axhline(n_mmse, color="#444444", ls=":", lw=1, label="N(X|Y) (mean of K samples)")
        ax.axhline(2 * n_mmse, color="#444444", ls="--", lw=1, label="2·N(X|Y)")
        ax.plot(p, u, color="#999999", lw=1, zorder=2)
        dots = ax.scatter(p, u, c=t, cmap="viridis", s=14, zorder=3, edgecolors="none")
        fig.colorbar(dots, ax=ax, pad=0.01, fraction=0.05).set_label("t_stop (Dirac trajectory)")
        for k, (name, (px, uy)) in enumerate(points.items()):
            ax.scatter([px], [uy], marker=MARKERS[k % len(MARKERS)], s=55, color=line_colour(k + 1),
                       edgecolors="black", linewidths=0.6, zorder=4, label=name)  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("perception P = D½(patches of X̂ ‖ patches of X)  (nats, lower = more realistic)")
        ax.set_ylabel("uncertainty U = N(X̂ − X)  (entropy power)")
        ax.legend(loc="best", fontsize=7)
        data = {"kind": "up_plane", "trajectory": {"perception": p, "uncertainty": u, "t": t},
                "points": {k: list(v) for k, v in points.items()}, "bound": {"perception": bp, "uncertainty": bu},
                "n_mmse": n_mmse}  # fmt: skip
        return save_figure(fig, path, data, title, caption)


def plot_calibration(
    ks: Sequence[float], observed: Mapping[str, Sequence[float]], expected: Mapping[str, Sequence[float]],
    path: str | Path, caption: str | None = None,
) -> Path:  # fmt: skip
    """Coverage of the ground truth by ``mean ± k·std`` against ``k``: observed curves and expectations."""
    ks_l = floats(ks, "ks")
    title = "Calibration of the posterior std: coverage of the ground truth by mean ± k·std"
    with mpl.rc_context(STYLE):
        fig = new_figure((5.2, 3.6), title, caption)
        ax = fig.add_subplot()
        for j, (name, vals) in enumerate(expected.items()):
            ax.plot(ks_l, floats(vals, name), color="#444444", ls=(":", "--")[j % 2], lw=1.2, label=name)
        for k, (name, vals) in enumerate(observed.items()):
            ax.plot(ks_l, floats(vals, name), marker=MARKERS[k % len(MARKERS)], color=line_colour(k), label=name)
        ax.set_xlabel("k (interval half-width in posterior std)")
        ax.set_ylabel("fraction of pixels covered")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right", fontsize=7)
        data = {"kind": "calibration", "ks": ks_l, "observed": {k: list(v) for k, v in observed.items()},
                "expected": {k: list(v) for k, v in expected.items()}}  # fmt: skip
        return save_figure(fig, path, data, title, caption)


def _show(ax, img: np.ndarray, **kw):
    artist = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return artist


def plot_map_grid(
    images: Mapping[str, Tensor], maps: Mapping[str, Tensor], path: str | Path, title: str, units: str,
    caption: str | None = None,
) -> Path:  # fmt: skip
    """Rows of images: ``images`` columns (``(B, C, H, W)`` in [0, 1]) then ``maps`` columns (``(B, 1, H, W)``,
    ≥ 0) drawn on **one** colour scale (0 … the largest value over every map) with one colour bar."""
    cols = {**images, **maps}
    rows = next(iter(cols.values())).shape[0]
    vmax = max(float(m.max()) for m in maps.values()) or 1.0
    with mpl.rc_context(STYLE):
        fig = new_figure((1.05 * len(cols) + 0.9, 1.05 * rows + 0.2), title, caption)
        axes = np.atleast_2d(fig.subplots(rows, len(cols), squeeze=False))
        artist = None
        for j, (name, x) in enumerate(cols.items()):
            for i in range(rows):
                if name in maps:
                    artist = _show(axes[i, j], x[i, 0].numpy(), cmap=MAP_CMAP, vmin=0.0, vmax=vmax)
                else:
                    img = x[i].clamp(0, 1)
                    grey = img.shape[0] == 1
                    arr = img[0].numpy() if grey else img.permute(1, 2, 0).numpy()
                    _show(axes[i, j], arr, cmap="gray" if grey else None, vmin=0.0, vmax=1.0)
            axes[0, j].set_title(name, fontsize=6.5)
        fig.colorbar(artist, ax=axes, fraction=0.04, pad=0.02).set_label(units, fontsize=7)
        stats = {k: {"mean": float(m.mean()), "max": float(m.max())} for k, m in maps.items()}
        data = {"kind": "map_grid", "columns": list(cols), "maps": stats, "vmax": vmax, "units": units}
        return save_figure(fig, path, data, title, caption)


def plot_perception_control(
    rows: Sequence[Mapping[str, float | str]], path: str | Path, perceptual: str = "swd", caption: str | None = None
) -> Path:
    """PSNR (y) against the perceptual distance (x) along ``α`` for each method; α labelled at the ends."""
    title = "Few-shot OT perception control: x̂_α = (1 − α)·x̂ + α·T(x̂)"
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    with mpl.rc_context(STYLE):
        fig = new_figure((5.4, 3.8), title, caption)
        ax = fig.add_subplot()
        curves = {}
        for k, m in enumerate(methods):
            rs = sorted((r for r in rows if r["method"] == m), key=lambda r: float(r["alpha"]))
            x, y, a = ([float(r[key]) for r in rs] for key in (perceptual, "psnr", "alpha"))
            ax.plot(x, y, marker=MARKERS[k % len(MARKERS)], color=line_colour(k), label=m)
            for xi, yi, ai in zip(x, y, a, strict=True):
                ax.annotate(f"α={ai:g}", (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=6)
            curves[m] = {"alpha": a, perceptual: x, "psnr": y}
        ax.set_xlabel(f"{perceptual} (lower = more realistic)")
        ax.set_ylabel("PSNR (dB)")
        ax.legend(loc="best")
        return save_figure(fig, path, {"kind": "perception_control", "curves": curves}, title, caption)
