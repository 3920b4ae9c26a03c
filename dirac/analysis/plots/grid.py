"""Image grids: one titled column per method (ground truth, measurement, DO, PO, std), one row per image,
uncertainty maps on one shared scale with one colour bar; paged so that every image can be shown."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from .figure_io import new_figure, save_figure
from .grid_columns import Column, grid_columns, shared_std_scale
from .inputs import fmt
from .style import STYLE

STD_CMAP = "magma"
STD_UNITS = "posterior std, [0,1] intensity"
_COLOURBAR_INCHES = 0.85


def _cell_inches(cols: Sequence[Column], scale: float | None) -> float:
    """Side of one cell: ``scale`` if given, else 1.1 in up to 48-px images, growing to 2.6 in for larger ones."""
    if scale is not None:
        return float(scale)
    side = max(max(c.images.shape[2], c.images.shape[3]) for c in cols)
    return 1.1 if side <= 48 else min(2.6, 1.1 * side / 48)


def _draw_cell(ax: Axes, img: Tensor, kind: str, std_vmax: float | None) -> tuple[Any, dict[str, float]]:
    """One image (grey colormap for 1 channel) or uncertainty map (``STD_CMAP`` from 0 to ``std_vmax``,
    its own maximum when ``None``); returns the artist and the cell's statistics for the JSON."""
    stats = {"mean": float(img.mean()), "min": float(img.min()), "max": float(img.max())}
    if kind == "std":
        vmax = std_vmax if std_vmax is not None else (stats["max"] if stats["max"] > 0 else 1.0)
        artist = ax.imshow(img[0].numpy(), cmap=STD_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
        stats.update(vmin=0.0, vmax=vmax)
        if std_vmax is None:
            ax.set_xlabel(f"max {fmt(stats['max'])}", fontsize=6, labelpad=1)
    else:
        arr = img[0].numpy() if kind == "grey" else img.permute(1, 2, 0).numpy()
        artist = ax.imshow(arr, cmap="gray" if kind == "grey" else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return artist, stats


def _std_colourbar(fig: Figure, axes: np.ndarray, artist: Any, scale: dict[str, Any], height: float) -> None:
    """One colour bar for every uncertainty map, labelled with its units; a triangle marks clipped values."""
    bar = fig.colorbar(
        artist,
        ax=axes.ravel().tolist(),
        location="right",
        shrink=min(1.0, 3.0 / height),
        aspect=18,
        pad=0.02,
        extend="max" if scale["clipped_fraction"] > 0 else "neither",
    )
    bar.set_label(STD_UNITS.replace(", ", "\n"), fontsize=7)
    bar.ax.tick_params(labelsize=7)


def _grid_caption(caption: str | None, shown: str | None, scale: dict[str, Any] | None) -> str:
    """The user's caption, then which images are shown, then how the std colour scale was set."""
    parts = [caption, shown]
    if scale is not None and scale["shared"]:
        parts.append(f"std: one scale 0–{fmt(scale['vmax'])} ({scale['rule']})")
    return " · ".join(p for p in parts if p)


def _draw_column(
    axes: np.ndarray, col: Column, rows: list[int], std_vmax: float | None, cell: float
) -> tuple[Any, list[dict]]:
    """Rows ``rows`` of one column, its name wrapped to the ``cell`` width on top; returns the last artist and
    the per-cell statistics."""
    cells, artist = [], None
    for ax, i in zip(axes, rows, strict=True):
        artist, cell_stats = _draw_cell(ax, col.images[i], col.kind, std_vmax)
        cells.append({"index": i, **cell_stats})
    name = "\n".join(textwrap.wrap(col.name, max(8, int(cell * 72 / (0.6 * 8))))) or col.name
    axes[0].set_title(name, fontsize=8, fontweight="bold", pad=3)
    return artist, cells


def _draw_grid(
    cols: list[Column],
    rows: list[int],
    path: Path,
    header: tuple[str | None, str],
    scale: dict[str, Any] | None,
    cell: float,
    extra: dict[str, Any],
) -> Path:
    """Draw ``rows`` (batch indices) of ``cols`` under ``header = (title, caption)`` and save the PNG and its
    JSON (``extra`` added to the JSON); returns the PNG path."""
    title, caption = header
    with_bar = scale is not None and scale["shared"]
    label_h = 0.16 if any(c.kind == "std" for c in cols) and not with_bar else 0.0
    body_h = len(rows) * (cell + label_h) + 0.35
    body = (len(cols) * cell + 0.2 + (_COLOURBAR_INCHES if with_bar else 0.0), body_h)
    stats: dict[str, Any] = {}
    std_artist = None
    with mpl.rc_context(STYLE):
        fig = new_figure(body, title, caption)
        fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
        axes = fig.subplots(len(rows), len(cols), squeeze=False)
        std_vmax = scale["vmax"] if scale is not None else None
        for j, col in enumerate(cols):
            artist, cells = _draw_column(axes[:, j], col, rows, std_vmax, cell)
            stats[col.name] = {"shape": col.shape, "kind": col.kind, "images": cells}
            std_artist = artist if col.kind == "std" else std_artist
        if with_bar:
            _std_colourbar(fig, axes, std_artist, scale, body_h)
        data = {"kind": "image_grid", "columns": [c.name for c in cols], "rows": len(rows), "rows_shown": rows}
        data.update(n_images=int(cols[0].images.shape[0]), cell_inches=cell, std_scale=scale, stats=stats, **extra)
        return save_figure(fig, path, data, title, caption)


def _skipped(columns: Mapping[str, Any]) -> list[str]:
    return [str(k) for k, v in columns.items() if v is None]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def plot_image_grid(
    columns: Mapping[str, Tensor | None],
    path: str | Path,
    max_rows: int = 16,
    title: str | None = None,
    caption: str | None = None,
    std_columns_share_scale: bool = True,
    *,
    scale: float | None = None,
) -> Path:
    """A grid with one titled column per named ``(B, C, H, W)`` batch in [0, 1] (grey or RGB; ``None`` columns
    are skipped) and one row per image, the first ``max_rows`` of them ("showing k of n images" in the caption).

    Columns named ``std…`` are uncertainty maps (channel mean), drawn with one colormap on **one** scale shared by
    every std cell: 0 to the 99th percentile of all std values shown, with one colour bar in [0, 1] intensity
    units (``std_columns_share_scale=False``: each map to its own maximum, printed under it). ``scale`` is the
    cell size in inches. The JSON holds column names, shapes, the rows shown, the std scale and per-image
    statistics, not the pixels.
    """
    max_rows = _positive_int(max_rows, "max_rows")
    cols = grid_columns(columns)
    n = int(cols[0].images.shape[0])
    rows = list(range(min(max_rows, n)))
    std_scale = shared_std_scale(cols, rows)
    if std_scale is not None and not std_columns_share_scale:
        std_scale = {"shared": False, "vmin": 0.0, "vmax": None, "rule": "each map scaled to its own maximum"}
    shown = f"showing {len(rows)} of {n} images" if len(rows) < n else None
    text = _grid_caption(caption, shown, std_scale)
    extra = {"skipped": _skipped(columns), "max_rows": max_rows}
    return _draw_grid(cols, rows, Path(path), (title, text), std_scale, _cell_inches(cols, scale), extra)


def plot_image_grid_pages(
    columns: Mapping[str, Tensor | None],
    path_stem: str | Path,
    rows_per_page: int = 16,
    title: str | None = None,
    caption: str | None = None,
) -> list[Path]:
    """Every image of ``columns`` on pages ``STEM_001.png``, ``STEM_002.png`` … of ``rows_per_page`` rows, each
    titled "page i of p" with its image range in the caption; the std colour scale is shared by all pages.
    Returns the PNG paths (each with its JSON)."""
    rows_per_page = _positive_int(rows_per_page, "rows_per_page")
    cols = grid_columns(columns)
    n = int(cols[0].images.shape[0])
    stem = Path(path_stem)
    stem = stem.with_suffix("") if stem.suffix.lower() == ".png" else stem
    std_scale = shared_std_scale(cols, range(n), rows_are="on all pages")
    cell, pages, paths = _cell_inches(cols, None), math.ceil(n / rows_per_page), []
    for p in range(pages):
        rows = list(range(p * rows_per_page, min(n, (p + 1) * rows_per_page)))
        page_title = f"{title} — page {p + 1} of {pages}" if title else f"page {p + 1} of {pages}"
        text = _grid_caption(caption, f"images {rows[0] + 1}–{rows[-1] + 1} of {n}", std_scale)
        png = stem.with_name(f"{stem.name}_{p + 1:03d}.png")
        extra = {"skipped": _skipped(columns), "page": p + 1, "pages": pages}
        paths.append(_draw_grid(cols, rows, png, (page_title, text), std_scale, cell, extra))
    return paths
