"""Image decoding and small tensor transforms shared by the datasets.

Every function here is pure: images come in as PIL images or ``(C, H, W)`` float tensors in [0, 1] and
go out as new float32 tensors in [0, 1]; randomness is always passed in as a ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..image_types import MEASUREMENT_SLACK, check_range

__all__ = [
    "LUMA_WEIGHTS",
    "center_crop",
    "crop",
    "hflip",
    "item_rng",
    "load_image",
    "pil_to_tensor",
    "random_crop",
    "resize",
    "resize_shorter",
    "to_channels",
]

#: ITU-R BT.601 luma weights (the ones PIL's ``convert("L")`` uses) for RGB -> grey.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_MODES_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
_MODES_16BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Independent generator for one dataset item: a pure function of (seed, epoch, index).

    ``numpy``'s SeedSequence mixes the three integers, so neighbouring indices or epochs give
    unrelated streams. Works identically in every DataLoader worker.
    """
    if seed < 0 or epoch < 0 or index < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got seed={seed}, epoch={epoch}, index={index}")
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def _composite_over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None] if rgb.ndim == 3 else alpha
    return rgb * a + (1.0 - a)


def pil_to_tensor(img: Image.Image, channels: int | None = None, clip: bool = True) -> torch.Tensor:
    """Decode a PIL image into a float32 ``(C, H, W)`` tensor in [0, 1].

    Handles 1-bit, 8-bit and 16-bit grey, palette, RGB, CMYK/YCbCr and float images. Transparency
    (RGBA, LA, palette with transparency) is composited over white, which equals dropping alpha for
    opaque pixels and shows transparent regions as white instead of the arbitrary colour stored under
    them. ``channels`` (1 or 3) converts the result with :func:`to_channels`; ``None`` keeps the
    native 1 or 3 channels. ``clip=False`` keeps a float (``F``) image's values outside [0, 1] (a noisy measurement
    strays by its noise; they are range-checked either way).
    """
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in _MODES_TO_RGB:
        img = img.convert("RGB")
    mode = img.mode
    if mode in _MODES_16BIT:
        arr = np.asarray(img, dtype=np.float32) / 65535.0
    elif mode == "I":
        raw = np.asarray(img, dtype=np.float64)
        arr = (raw / int_image_scale(raw)).astype(np.float32)
    elif mode == "F":  # float data carry no range: refuse what [0, 1] clamping would silently destroy
        arr = np.array(img, dtype=np.float32)  # a writable copy (torch.from_numpy warns on PIL's read-only view)
        check_range(torch.from_numpy(arr), "the float image", tolerance=MEASUREMENT_SLACK)
        if not clip:
            return _to_tensor(arr, channels)
    elif mode in ("L", "RGB"):
        arr = np.asarray(img, dtype=np.float32) / 255.0
    elif mode in ("RGBA", "LA", "La", "RGBa"):
        if mode in ("La", "RGBa"):  # premultiplied alpha: undo via PIL
            img = img.convert("RGBA" if mode == "RGBa" else "LA")
        raw = np.asarray(img, dtype=np.float32) / 255.0
        arr = _composite_over_white(raw[..., :-1], raw[..., -1])
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    else:
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return _to_tensor(np.clip(arr, 0.0, 1.0), channels)


def int_image_scale(raw: np.ndarray) -> float:
    """The full scale of a 32-bit integer (PIL ``I``) image, which records none: 255 when its values fit 8 bits
    (an 8-bit image saved as ``I``), else 65535."""
    return 65535.0 if raw.max(initial=0) > 255 else 255.0


def _to_tensor(arr: np.ndarray, channels: int | None) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1).contiguous()
    return x if channels is None else to_channels(x, channels)


def load_image(path: str | os.PathLike[str], channels: int | None = None, min_size: int | None = None) -> torch.Tensor:
    """Read an image file into a float32 ``(C, H, W)`` tensor in [0, 1].

    EXIF orientation is applied. ``min_size`` lets JPEG decoding skip work (DCT scaling) as long as
    both sides stay >= ``min_size``; it never changes the result's size otherwise.
    """
    with Image.open(path) as img:
        if min_size is not None and img.format == "JPEG":
            img.draft(img.mode, (int(min_size), int(min_size)))
        img = ImageOps.exif_transpose(img)
        return pil_to_tensor(img, channels)


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert a ``(C, H, W)`` image to 1 or 3 channels (grey -> RGB by repetition, RGB -> grey by luma)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    c = x.shape[-3]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * w).sum(dim=-3, keepdim=True).clamp(0.0, 1.0)
    raise ValueError(f"cannot convert an image with {c} channels to {channels} channels")


def resize(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Antialiased bicubic resize of a ``(C, H, W)`` image to ``size`` (int = square, or (H, W)).

    The antialias filter widens when shrinking, so downscaling does not alias; the result is clamped to
    [0, 1] (bicubic overshoots slightly at edges). A no-op when the size already matches.
    """
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"target size must be positive, got {(h, w)}")
    if tuple(x.shape[-2:]) == (h, w):
        return x
    y = F.interpolate(x.unsqueeze(0), size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return y.squeeze(0).clamp(0.0, 1.0)


def resize_shorter(x: torch.Tensor, shorter: int) -> torch.Tensor:
    """Resize so that the shorter side equals ``shorter``, keeping the aspect ratio."""
    h, w = x.shape[-2:]
    if h <= w:
        size = (int(shorter), max(int(shorter), round(w * shorter / h)))
    else:
        size = (max(int(shorter), round(h * shorter / w)), int(shorter))
    return resize(x, size)


def crop(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """Square ``size`` crop at (top, left); raises if it does not fit."""
    h, w = x.shape[-2:]
    if top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"crop {size}x{size} at (top={top}, left={left}) does not fit an image of {h}x{w}")
    return x[..., top : top + size, left : left + size]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centred square crop of side ``size``."""
    h, w = x.shape[-2:]
    return crop(x, (h - size) // 2, (w - size) // 2, size)


def random_crop(x: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Uniformly placed square crop of side ``size``."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot take a {size}x{size} crop from an image of {h}x{w}")
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return crop(x, top, left, size)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror left-right."""
    return x.flip(-1)


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw from the log-uniform distribution on [lo, hi] (lo == hi returns lo)."""
    if lo == hi:
        return float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
