"""The figures of ``mode=compare`` (PNG + JSON each, through :mod:`dirac.analysis.plots`' figure helpers):
image rows per method, perception–distortion points (with Dirac's early-stopping trajectory) and PSNR vs NFE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from torch import Tensor

from ..analysis.plots.figure_io import new_figure, save_figure
from ..analysis.plots.style import MARKERS, STYLE, line_colour


def image_rows(path: Path, rows: Mapping[str, Tensor], titles: Mapping[str, str], caption: str) -> Path:
    """One row per entry of ``rows`` (``(K, C, H, W)`` in [0, 1]: ground truth, measurement, each method), one
    column per image; ``titles`` label the rows (method and PSNR)."""
    k = len(next(iter(rows.values())))
    with mpl.rc_context(STYLE):
        fig = new_figure((1.0 * k + 1.6, 1.0 * len(rows)), "Reconstructions of the same measurements", caption)
        axes = fig.subplots(len(rows), k, squeeze=False)
        for r, (label, imgs) in enumerate(rows.items()):
            for c in range(k):
                img, ax = imgs[c].clamp(0, 1), axes[r][c]
                grey = img.shape[0] == 1
                ax.imshow(
                    (img[0] if grey else img.permute(1, 2, 0)).numpy(), cmap="gray" if grey else None, vmin=0, vmax=1
                )
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            axes[r][0].set_ylabel(titles.get(label, label), rotation=0, ha="right", va="center", fontsize=7)
        data = {"kind": "compare_images", "rows": list(rows), "titles": dict(titles), "num_images": k}
        return save_figure(fig, path, data, "Reconstructions of the same measurements", caption)


def _point_style(k: int, oracle: bool) -> dict[str, Any]:
    colour = line_colour(k)
    face = "none" if oracle else colour
    return {"marker": MARKERS[k % len(MARKERS)], "s": 55, "facecolors": face, "edgecolors": colour, "linewidths": 1.2}


def _ot_lines(ax: Any, rows: Sequence[Mapping[str, Any]], ot: Sequence[Mapping[str, Any]], perc: str) -> None:
    """Each method's α curve (dashed, its point's colour) from its own point to a cross at α = 1."""
    colour = {r["method"]: line_colour(k) for k, r in enumerate(rows)}
    for name in dict.fromkeys(r["method"] for r in ot):
        pts = sorted((r["alpha"], r["psnr"], r[perc]) for r in ot if r["method"] == name)
        ax.plot([p[1] for p in pts], [p[2] for p in pts], "--", lw=0.9, color=colour.get(name, "#444444"), zorder=2)
        ax.scatter([pts[-1][1]], [pts[-1][2]], marker="x", s=22, color=colour.get(name, "#444444"), zorder=2)


def perception_distortion(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    curve: Mapping[str, Sequence[float]] | None,
    caption: str,
    ot: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """x = PSNR, y = perceptual distance (lower = better), one labelled point per row (oracle rows hollow);
    ``curve`` (``psnr``, ``perceptual``, ``t``) is Dirac's early-stopping trajectory on the same images; ``ot``
    rows (``method``, ``alpha``, ``psnr``, the perceptual metric) draw each method's perception-knob curve."""
    perc = rows[0]["perceptual_metric"] if rows else "perceptual"
    title = "Perception–distortion: every method on the same measurements"
    with mpl.rc_context(STYLE):
        fig = new_figure((6.4, 4.6), title, caption)
        ax = fig.add_subplot()
        if curve is not None:
            ax.plot(curve["psnr"], curve["perceptual"], "-", color="#888888", lw=1.2, zorder=1,
                    label="Dirac trajectory (x̂0 at each t_stop)")  # fmt: skip
        if ot:
            _ot_lines(ax, rows, ot, perc)
            ax.plot([], [], "--x", lw=0.9, color="#444444", label="OT knob α: 0 → 1 (×)")
        for k, r in enumerate(rows):
            ax.scatter([r["psnr"]], [r["perceptual"]], zorder=3, label=r["method"], **_point_style(k, r["oracle"]))
            ax.annotate(r["method"], (r["psnr"], r["perceptual"]), xytext=(4, 4), textcoords="offset points",
                        fontsize=7)  # fmt: skip
        ax.set_xlabel("PSNR (dB, higher = less distortion)")
        ax.set_ylabel(f"{perc} (lower = more realistic)")
        ax.text(0.99, 0.01, "better ↘", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#555555")
        ax.margins(0.1)
        ax.legend(fontsize=6.5, loc="best", title="hollow = oracle (tuned on test)", title_fontsize=6.5)
        points = {r["method"]: {"psnr": r["psnr"], "perceptual": r["perceptual"], "oracle": r["oracle"]} for r in rows}
        data = {"kind": "compare_perception_distortion", "perceptual": perc, "points": points, "trajectory": curve,
                "ot_curves": list(ot or [])}  # fmt: skip
        return save_figure(fig, path, data, title, caption)


def psnr_vs_nfe(path: Path, rows: Sequence[Mapping[str, Any]], caption: str) -> Path:
    """PSNR against network evaluations per image (log x). Methods without a network (NFE 0: classical solvers
    and the measurement) cannot sit on a log axis: they are drawn as dashed horizontal reference lines."""
    title = "PSNR vs network evaluations per image"
    caption = caption + " · dashed lines: methods without a network (NFE = 0)"
    with mpl.rc_context(STYLE):
        fig = new_figure((6.4, 4.2), title, caption)
        ax = fig.add_subplot()
        learned = [r for r in rows if r["nfe"] > 0]
        for k, r in enumerate(rows):
            if r["nfe"] > 0:
                ax.scatter([r["nfe"]], [r["psnr"]], zorder=3, label=r["method"], **_point_style(k, r["oracle"]))
            else:
                ax.axhline(
                    r["psnr"],
                    ls=":" if r["oracle"] else "--",
                    lw=0.9,
                    color=line_colour(k),
                    label=f"{r['method']} (NFE 0)",
                )
        ax.set_xscale("log")
        if not learned:
            ax.set_xlim(0.5, 2000)
        ax.set_xlabel("network evaluations per image (log)")
        ax.set_ylabel("PSNR (dB)")
        ax.legend(fontsize=6.5, loc="best")
        data = {"kind": "psnr_vs_nfe", "points": {r["method"]: {"nfe": r["nfe"], "psnr": r["psnr"]} for r in rows}}
        return save_figure(fig, path, data, title, caption)
