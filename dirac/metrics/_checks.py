"""Input validation shared by the metric modules (private)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_images(x: Tensor, name: str = "x", channels: Sequence[int] | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite floating tensor of shape (B, C, H, W)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D batch (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor with values in [0, 1], got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if channels is not None and x.shape[1] not in channels:
        raise ValueError(f"{name} must have C in {tuple(channels)} channels, got C = {x.shape[1]}")
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf)")


def check_pair(x: Tensor, ref: Tensor, channels: Sequence[int] | None = None) -> None:
    """Validate two image batches that are compared image by image (same shape)."""
    check_images(x, "x", channels)
    check_images(ref, "ref", channels)
    if x.shape != ref.shape:
        raise ValueError(f"shape mismatch: x has shape {tuple(x.shape)}, ref has shape {tuple(ref.shape)}")


def to_unit_range(x: Tensor) -> Tensor:
    """Clamp to [0, 1] in float32 (or float64 if given), as the DiracDiffusion evaluation does."""
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return x.clamp(0.0, 1.0)
