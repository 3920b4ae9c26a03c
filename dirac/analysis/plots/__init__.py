"""Figures for the evaluation: perception–distortion curves, metrics along the reverse trajectory, data
consistency, severity schedules, image grids (paged) and generic benchmark curves.

Every function draws on a fresh :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot, no global state;
the style is applied through a temporary ``rc_context``), writes a PNG (``dpi=150``) **and** a JSON file with
the exact data behind the figure (same stem, ``.json``), both atomically, and returns the PNG path. Each takes
an optional ``caption`` (e.g. ``"split: test · checkpoint: blur_default · 64 images"``), drawn as a small line
under the title and stored in the JSON with the title.

Inputs are plain: sequences of floats (lists, tuples, 1-D tensors or arrays), dicts and floats; image grids
take ``(B, C, H, W)`` tensors in [0, 1]. Nothing is read from disk. Non-finite values in curves are drawn as
gaps and stored as ``null`` in the JSON (strict JSON, no ``NaN``); non-finite images are refused.
"""

from .grid import plot_image_grid, plot_image_grid_pages
from .lines import plot_curves, plot_schedule
from .perception_distortion import plot_perception_distortion
from .style import PALETTE
from .trajectory import plot_data_consistency, plot_metrics_vs_t

__all__ = [
    "PALETTE",
    "plot_perception_distortion",
    "plot_metrics_vs_t",
    "plot_data_consistency",
    "plot_schedule",
    "plot_image_grid",
    "plot_image_grid_pages",
    "plot_curves",
]
