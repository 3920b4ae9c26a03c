"""Image types at the library's edge: PIL images, NumPy arrays, tensors and lists, to and from ``(B, C, H, W)``.

Conventions (as diffusers pipelines): a PIL image comes back as a PIL image (in the model's mode, RGB or L;
16-bit and float images in their own mode), a NumPy ``(H, W, C)`` (or
``(H, W)``) array as an array of the same shape and dtype, a ``(B, C, H, W)`` or ``(C, H, W)`` tensor as a
tensor of the same shape, and a list as a list. Float inputs must lie in [0, 1] (a measurement may stray
by its noise); uint8 inputs are scaled by 1/255.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

Restore = Callable[..., Any]
"""``restore(output, floats=False)``: the input's type back; ``floats=True`` gives float values (std maps)."""


MEASUREMENT_SLACK = 0.5
"""Measurements may lie in [−0.5, 1.5] (noise); clean images must lie in [0, 1]."""


def check_range(x: Tensor, name: str, tolerance: float = 0.0) -> None:
    """Refuse values outside ``[−tolerance, 1 + tolerance]`` with the likely cause and the fix."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values; clean or drop it")
    lo, hi = float(x.min()), float(x.max())
    if lo >= -tolerance and hi <= 1.0 + tolerance:
        return
    if hi > 2.0:
        hint = "it looks like 0–255 values: divide by 255"
    elif lo < -0.5:
        hint = "it looks like a [-1, 1] image: use (x + 1) / 2"
    else:
        hint = "dirac expects images in [0, 1]; clip or rescale it"
    raise ValueError(f"{name} has values in [{lo:.3g}, {hi:.3g}], outside [0, 1]: {hint}")


HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
"""PIL modes that come back in their own mode (16- or 32-bit integers, 32-bit floats), not as 8-bit RGB/L."""


def _from_pil(img: Image.Image, channels: int) -> tuple[Tensor, Restore]:
    """PIL in (decoded as ``sample.py`` decodes files: :func:`dirac.data.transforms.pil_to_tensor`), PIL out in the
    model's mode (``RGB`` or ``L``); 16-bit, 32-bit integer and float images come back in their mode and scale."""
    from .data.transforms import int_image_scale, pil_to_tensor  # the data package imports this module

    x = pil_to_tensor(img, channels, clip=False)[None]
    mode = img.mode
    scale = int_image_scale(np.asarray(img)) if mode == "I" else 65535.0

    def restore(out: Tensor, floats: bool = False) -> Image.Image | np.ndarray:
        o = out[0].detach().float().cpu().permute(1, 2, 0).numpy()
        if floats:  # e.g. a std map: 8 bits would flatten it
            return o
        if mode in HIGH_DEPTH_MODES:
            grey = o.mean(2)
            if mode == "F":
                return Image.fromarray(grey.astype(np.float32))  # mode F
            ints = (np.clip(grey, 0, 1) * scale).round()
            return Image.fromarray(ints.astype(np.int32 if mode == "I" else np.uint16))  # mode I or I;16
        u8 = (np.clip(o, 0, 1) * 255).round().astype(np.uint8)
        return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)  # mode L or RGB

    return x, restore


def _from_numpy(arr: np.ndarray, name: str) -> tuple[Tensor, Restore]:
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name}: a NumPy image must be (H, W) or (H, W, C), got shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        raise ValueError(f"{name}: NumPy images are (H, W, C), got {arr.shape}; use arr.transpose(1, 2, 0)")
    dtype, shape = arr.dtype, arr.shape
    if dtype == np.uint8:
        data = arr.astype(np.float32) / 255.0
    elif np.issubdtype(dtype, np.floating):
        data = arr.astype(np.float32)
    else:
        raise TypeError(f"{name}: NumPy images must be float in [0, 1] or uint8, got dtype {dtype}")
    data = data[..., None] if data.ndim == 2 else data
    x = torch.from_numpy(np.ascontiguousarray(data)).permute(2, 0, 1)[None]

    def restore(out: Tensor, floats: bool = False) -> np.ndarray:
        o = out[0].detach().permute(1, 2, 0).cpu().numpy().reshape(shape)
        if floats:
            return o.astype(np.float32)
        if dtype == np.uint8:
            return (np.clip(o, 0, 1) * 255).round().astype(np.uint8)
        return o.astype(dtype)

    return x, restore


def _from_tensor(t: Tensor, name: str) -> tuple[Tensor, Restore]:
    if t.ndim not in (3, 4):
        raise ValueError(f"{name}: a tensor must be (B, C, H, W) or (C, H, W), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name}: tensors must be floating point in [0, 1], got {t.dtype}; use x.float() / 255")
    single, dtype, device = t.ndim == 3, t.dtype, t.device
    x = (t[None] if single else t).detach().float()

    def restore(out: Tensor, floats: bool = False) -> Tensor:
        return (out[0] if single else out).to(device=device, dtype=torch.float32 if floats else dtype)

    return x, restore


def to_tensors(images: Any, channels: int, name: str = "image") -> tuple[list[Tensor], Callable[[list], Any]]:
    """``(list of (B_i, C, H_i, W_i) float32 batches, restore)``: ``restore(list of outputs)`` gives the input's
    type back. Lists may mix sizes: each element is its own batch."""
    items = images if isinstance(images, (list, tuple)) else [images]
    if not items:
        raise ValueError(f"{name}: got an empty list")
    batches, restores = [], []
    for k, item in enumerate(items):
        label = f"{name}[{k}]" if isinstance(images, (list, tuple)) else name
        if isinstance(item, Image.Image):
            x, r = _from_pil(item, channels)
        elif isinstance(item, np.ndarray):
            x, r = _from_numpy(item, label)
        elif isinstance(item, Tensor):
            x, r = _from_tensor(item, label)
        else:
            raise TypeError(
                f"{label}: expected a PIL image, a NumPy array or a torch tensor, got {type(item).__name__}"
            )
        if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
            raise ValueError(f"{label} is empty (shape {tuple(x.shape)}); pass at least one non-empty image")
        if x.shape[1] != channels:
            raise ValueError(f"{label} has {x.shape[1]} channels, the model takes {channels}; convert it first")
        batches.append(x)
        restores.append(r)

    def restore(outputs: list, floats: bool = False) -> Any:
        got = [r(o, floats) if isinstance(o, Tensor) else o for r, o in zip(restores, outputs, strict=True)]
        return got if isinstance(images, (list, tuple)) else got[0]

    return batches, restore
