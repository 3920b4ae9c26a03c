"""Image I/O at the edges: save tensors as PNG, tile image grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(x: Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H, W)`` or ``(H, W, 3)`` uint8 (clamped)."""
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()


def save_image(x: Tensor, path: str | Path) -> None:
    """Save one ``(C, H, W)`` image in [0, 1] as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(x)).save(path)


def image_grid(columns: Sequence[Tensor], pad: int = 2, scale: int = 1) -> Tensor:
    """Tile equal-length batches side by side: row i = (columns[0][i], columns[1][i], …) -> ``(C, H', W')``.

    Grey columns are replicated to RGB when any column is RGB; images are upscaled by ``scale`` (nearest).
    """
    cols = [c.detach().float().cpu().clamp(0, 1) for c in columns]
    rgb = any(c.shape[1] == 3 for c in cols)
    cols = [c.expand(-1, 3, -1, -1) if rgb and c.shape[1] == 1 else c for c in cols]
    if scale > 1:
        cols = [torch.nn.functional.interpolate(c, scale_factor=scale, mode="nearest") for c in cols]
    n = min(c.shape[0] for c in cols)
    h = max(c.shape[2] for c in cols)
    w = max(c.shape[3] for c in cols)
    ch = cols[0].shape[1]
    grid = torch.ones(ch, n * (h + pad) + pad, len(cols) * (w + pad) + pad)
    for j, c in enumerate(cols):
        for i in range(n):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top : top + c.shape[2], left : left + c.shape[3]] = c[i]
    return grid


def save_grid(columns: Sequence[Tensor], path: str | Path, scale: int = 1) -> None:
    """Save ``image_grid(columns)`` as a PNG."""
    save_image(image_grid(columns, scale=scale), path)
