"""Shared look of every dirac figure: palette, markers, font sizes, resolution."""

from __future__ import annotations

import matplotlib as mpl

DPI = 150

# Okabe–Ito colour-blind-safe palette (yellow last: it is hard to see on white).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["s", "^", "v", "P", "X", "h", "<", ">"]

TITLE_SIZE = 10
CAPTION_SIZE = 7.5
CAPTION_COLOUR = "#444444"

STYLE = {
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
HIGHER_IS_BETTER = ("psnr", "ssim", "accuracy", "images/s", "throughput")


def line_colour(k: int) -> str:
    """The k-th series colour, skipping the hard-to-see yellow."""
    return PALETTE[k % (len(PALETTE) - 1)]
