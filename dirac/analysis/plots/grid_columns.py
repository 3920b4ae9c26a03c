"""Columns of an image grid: validated ``(B, C, H, W)`` batches and the one shared scale of uncertainty maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

STD_PERCENTILE = 99.0  # the shared std scale ends here, so one outlier pixel does not darken every map


@dataclass(frozen=True)
class Column:
    """One grid column: ``images`` is ``(B, 1 or 3, H, W)`` ready to draw (uncertainty maps: channel mean)."""

    name: str
    images: Tensor
    kind: str  # "rgb", "grey" or "std"
    shape: list[int]  # the shape as given


def is_std_column(name: str) -> bool:
    """Columns named ``std…`` hold uncertainty maps (pixelwise standard deviations), not images."""
    return name.strip().lower().startswith("std")


def _column(name: str, x: Any) -> Column:
    """Check one batch and turn it into a drawable column (images clamped to [0, 1], std maps ≥ 0)."""
    x = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if x.dim() != 4:
        raise ValueError(f"column {name!r} must be (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"column {name!r} is an empty batch")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"column {name!r} has {x.shape[1]} channels: grid columns must be grey (1) or RGB (3)")
    x = x.detach().float().cpu()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"column {name!r} contains NaN or Inf values (a diverged model or input); nothing drawn")
    if is_std_column(name):
        return Column(name, x.mean(dim=1, keepdim=True).clamp(min=0), "std", list(x.shape))
    return Column(name, x.clamp(0, 1), "grey" if x.shape[1] == 1 else "rgb", list(x.shape))


def grid_columns(columns: Mapping[str, Any]) -> list[Column]:
    """The non-``None`` entries of ``columns`` as checked columns of one common batch size."""
    if not isinstance(columns, Mapping):
        raise ValueError(f"columns must be a dict of name -> (B, C, H, W) batch, got {type(columns).__name__}")
    cols = [_column(str(k), v) for k, v in columns.items() if v is not None]
    if not cols:
        raise ValueError("no columns to show (all missing or None): pass at least one (B, C, H, W) batch")
    sizes = {c.name: c.images.shape[0] for c in cols}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{k!r}: {n}" for k, n in sizes.items())
        raise ValueError(f"columns have different batch sizes ({desc}); pass one image per row in every column")
    return cols


def shared_std_scale(cols: Sequence[Column], rows: Sequence[int], rows_are: str = "shown") -> dict[str, Any] | None:
    """One colour scale for every uncertainty map in ``rows``: vmin 0, vmax = the ``STD_PERCENTILE``-th
    percentile of all their values (their maximum when that percentile is 0); ``None`` without std columns.
    ``rows_are`` says which values were used ("shown", "on all pages") in the stated rule."""
    values = [c.images[list(rows)].reshape(-1) for c in cols if c.kind == "std"]
    if not values:
        return None
    flat = torch.cat(values).numpy()
    top, peak = float(np.percentile(flat, STD_PERCENTILE)), float(flat.max())
    vmax, rule = top, f"{STD_PERCENTILE:g}th percentile of all std values {rows_are}"
    if top <= 0:  # mostly-zero maps (e.g. only a hole is uncertain): the percentile would hide everything
        vmax, rule = peak, f"maximum of all std values {rows_are}"
    if vmax <= 0:
        vmax, rule = 1.0, "all std values are 0; scale set to 1"
    clipped = float((flat > vmax).mean())
    return {"shared": True, "vmin": 0.0, "vmax": vmax, "rule": rule, "max": peak, "clipped_fraction": clipped}
