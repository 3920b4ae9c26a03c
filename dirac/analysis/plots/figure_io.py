"""A fresh figure with a title and a caption line on top, and its atomic save as PNG + JSON."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dirac.io import atomic_write, write_json

from .style import CAPTION_COLOUR, CAPTION_SIZE, DPI, TITLE_SIZE

_PAD_TOP, _GAP, _PAD_BOTTOM = 0.08, 0.05, 0.07  # inches around the header lines


def _wrap(text: str | None, width_in: float, size: float, char_em: float) -> list[str]:
    """Lines of ``text`` (its own newlines kept) wrapped to ``width_in`` inches at font ``size`` points."""
    if not text:
        return []
    chars = max(12, int(width_in * 72 / (char_em * size)))
    return [part for line in text.split("\n") for part in (textwrap.wrap(line, chars) or [""])]


def _line_height(size: float) -> float:
    return 1.3 * size / 72


def new_figure(body: tuple[float, float], title: str | None = None, caption: str | None = None) -> Figure:
    """A constrained-layout figure whose plotting area is ``body`` inches, with ``title`` (bold) and
    ``caption`` (small, grey: split, checkpoint, image count …) in a header strip above it."""
    width, height = body
    title_lines = _wrap(title, width - 0.2, TITLE_SIZE, 0.62)
    caption_lines = _wrap(caption, width - 0.2, CAPTION_SIZE, 0.52)
    title_h = len(title_lines) * _line_height(TITLE_SIZE)
    caption_h = len(caption_lines) * _line_height(CAPTION_SIZE)
    header = 0.0 if not (title_lines or caption_lines) else _PAD_TOP + title_h + caption_h + _PAD_BOTTOM
    if title_lines and caption_lines:
        header += _GAP
    total = height + header
    fig = Figure(figsize=(width, total), dpi=DPI, layout="constrained")
    fig.get_layout_engine().set(rect=(0.0, 0.0, 1.0, 1.0 - header / total))
    if title_lines:
        y = 1.0 - _PAD_TOP / total
        fig.text(0.5, y, "\n".join(title_lines), ha="center", va="top", fontsize=TITLE_SIZE, fontweight="bold")
    if caption_lines:
        y = 1.0 - (_PAD_TOP + title_h + (_GAP if title_lines else 0.0)) / total
        text = "\n".join(caption_lines)
        fig.text(0.5, y, text, ha="center", va="top", fontsize=CAPTION_SIZE, color=CAPTION_COLOUR)
    return fig


def figure_paths(path: str | Path) -> tuple[Path, Path]:
    """``(PNG, JSON)`` paths for a figure: ``.png`` added or substituted, the JSON beside it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png") if path.suffix == "" else path.with_suffix(".png")
    return path, path.with_suffix(".json")


def save_figure(fig: Figure, path: str | Path, data: dict[str, Any], title: str | None, caption: str | None) -> Path:
    """Write the PNG and the JSON of the data behind it (with the figure's title and caption) atomically;
    returns the PNG path.

    Non-finite numbers in ``data`` are gaps in a plot, so they are stored as ``null`` (strict JSON, no NaN).
    """
    png, js = figure_paths(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write(png, buf.getvalue())
    write_json(js, {**data, "title": title, "caption": caption}, nonfinite="null", indent=1)
    return png
