"""Procedural training images with no download: the dead-leaves model with textured, gradient-filled shapes.

Dead leaves (Matheron; as an image prior: Achddou et al. 2021, "Synthetic images as a regularity prior for
image restoration neural networks"; Baradad et al. 2021, "Learning to see by looking at noise"): opaque
shapes fall one on top of another; the image shows the top-most shape at each pixel. With radii drawn from a
density ∝ r⁻³ on [r_min, r_max] the result is scale invariant and has the sharp occlusion edges and 1/f²
power spectrum of natural photographs, which is what a deblurring or inpainting prior has to learn.

Rendering is front to back: each new shape only paints the pixels no earlier shape has covered, and drawing
stops once 99.5 % of the canvas is covered (the rest shows a background fill). The canvas is rendered at
``supersample`` × the output size and area-averaged down, which anti-aliases the edges. Fills: flat, a
linear gradient between two colours, a sinusoidal grating or smooth noise (the "textured" leaves).

Written by hand: no installed package renders dead leaves (scikit-image's ``draw`` has no textured fills or
occlusion order, and would still need this loop).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from ._util import check_index
from .transforms import item_rng, to_channels

__all__ = ["DeadLeaves", "ProceduralMix", "dead_leaves"]

_FILLS = ("flat", "gradient", "grating", "noise")
_FILL_CDF = np.cumsum((0.4, 0.3, 0.15, 0.15))[:-1]
_SHAPES = ("disk", "ellipse", "rectangle")
_SHAPE_CDF = np.cumsum((0.4, 0.3, 0.3))[:-1]


def _radius(rng: np.random.Generator, r_min: float, r_max: float) -> float:
    """A draw from p(r) ∝ r⁻³ on [r_min, r_max] by inverting its CDF (the scale-invariant dead-leaves law)."""
    a, b = r_min**-2, r_max**-2
    return float((a - rng.random() * (a - b)) ** -0.5)


def _colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour with photo-like channel correlation: a uniform grey level plus a small chroma offset
    (std 0.15), or pure grey with probability 0.2 (uniform RGB cubes look far more saturated than photographs)."""
    grey = rng.random()
    if rng.random() < 0.2:
        return np.full(3, grey)
    return np.clip(grey + rng.normal(0.0, 0.15, size=3), 0.0, 1.0)


def _shape_mask(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float):
    """Boolean mask of a disk, rotated ellipse or rotated rectangle of size ~r centred at (cy, cx)."""
    kind = _SHAPES[int(np.searchsorted(_SHAPE_CDF, rng.random()))]
    dy, dx = yy - cy, xx - cx
    if kind == "disk":
        return dy * dy + dx * dx <= r * r
    theta = rng.uniform(0.0, math.pi)
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    aspect = math.exp(rng.uniform(-0.7, 0.7))
    ru, rv = r * aspect, r / aspect
    if kind == "ellipse":
        return (u / ru) ** 2 + (v / rv) ** 2 <= 1.0
    return (np.abs(u) <= ru) & (np.abs(v) <= rv)


def _fill(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, r: float) -> np.ndarray:
    """Colours ``(..., 3)`` of one leaf on the pixel grid ``(yy, xx)``: flat, gradient, grating or smooth noise."""
    kind = _FILLS[int(np.searchsorted(_FILL_CDF, rng.random()))]
    c0 = _colour(rng)
    if kind == "flat":
        return np.broadcast_to(c0, (*np.broadcast_shapes(yy.shape, xx.shape), 3))
    theta = rng.uniform(0.0, 2.0 * math.pi)
    proj = xx * math.cos(theta) + yy * math.sin(theta)
    c1 = _colour(rng)
    if kind == "gradient":
        s = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    elif kind == "grating":
        period = rng.uniform(2.0, max(3.0, r))
        s = 0.5 + 0.5 * np.sin(2.0 * math.pi * proj / period + rng.uniform(0.0, 2.0 * math.pi))
    else:  # smooth noise: a few random plane waves, the sum normalised to [0, 1]
        s = np.zeros(np.broadcast_shapes(yy.shape, xx.shape))
        for _ in range(4):
            ang, freq = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(0.2, 1.0) / max(1.0, r / 4)
            s = s + np.sin(freq * (xx * math.cos(ang) + yy * math.sin(ang)) + rng.uniform(0.0, 2.0 * math.pi))
        s = (s - s.min()) / max(float(np.ptp(s)), 1e-6)
    return c0 + np.broadcast_to(s, np.broadcast_shapes(yy.shape, xx.shape))[..., None] * (c1 - c0)


def dead_leaves(
    rng: np.random.Generator,
    size: int,
    r_min: float = 2.0,
    r_max: float | None = None,
    max_shapes: int = 200,
    supersample: int = 2,
) -> torch.Tensor:
    """One ``(3, size, size)`` dead-leaves image in [0, 1]; radii in output pixels, p(r) ∝ r⁻³ on [r_min, r_max]."""
    s = int(size) * int(supersample)
    r_lo, r_hi = float(r_min) * supersample, float(r_max if r_max is not None else size) * supersample
    img = np.zeros((s, s, 3))
    covered = np.zeros((s, s), dtype=bool)
    grid = np.arange(s, dtype=np.float64)
    for _ in range(int(max_shapes)):
        r = _radius(rng, r_lo, r_hi)
        cy, cx = rng.uniform(-r / 2, s + r / 2, size=2)
        ext = 2.1 * r  # half-width of any shape: a rectangle's half-diagonal <= r·√(e^1.4 + e^-1.4) < 2.1 r
        y0, y1 = max(0, int(cy - ext)), min(s, int(cy + ext) + 1)
        x0, x1 = max(0, int(cx - ext)), min(s, int(cx + ext) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = grid[y0:y1, None], grid[None, x0:x1]  # open grid: shapes and fills broadcast
        paint = _shape_mask(rng, yy, xx, cy, cx, r) & ~covered[y0:y1, x0:x1]
        if paint.any():
            img[y0:y1, x0:x1][paint] = _fill(rng, yy, xx, r)[paint]
            covered[y0:y1, x0:x1] |= paint
            if covered.mean() > 0.995:
                break
    if not covered.all():
        yy, xx = grid[:, None], grid[None, :]
        img[~covered] = _fill(rng, yy, xx, r_hi)[~covered]
    x = torch.from_numpy(np.clip(img, 0.0, 1.0).astype(np.float32)).permute(2, 0, 1)
    return torch.nn.functional.avg_pool2d(x[None], supersample)[0] if supersample > 1 else x


class DeadLeaves(Dataset):
    """``length`` dead-leaves images of ``(channels, image_size, image_size)``; item ``i`` depends only on
    ``(seed, epoch, i)``, so a resumed run redraws exactly the same images."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        length: int = 4096,
        seed: int = 0,
        r_min: float = 2.0,
        r_max: float | None = None,
        max_shapes: int = 200,
    ) -> None:
        if channels not in (1, 3) or int(image_size) < 2 or int(length) < 1:
            raise ValueError(
                f"DeadLeaves needs channels 1 or 3, image_size >= 2, length >= 1; got {channels}, "
                f"{image_size}, {length}"
            )
        if not 0 < float(r_min) <= float(r_max if r_max is not None else image_size):
            raise ValueError(f"procedural.r_min must satisfy 0 < r_min <= r_max, got {r_min}, {r_max}")
        self.image_size, self.channels, self.length = int(image_size), int(channels), int(length)
        self.seed, self.epoch = int(seed), 0
        self.r_min, self.r_max, self.max_shapes = float(r_min), r_max, int(max_shapes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, self.length)
        rng = item_rng(self.seed, self.epoch, index)
        x = dead_leaves(rng, self.image_size, self.r_min, self.r_max, self.max_shapes)
        return to_channels(x, self.channels)


class ProceduralMix(Dataset):
    """Training set whose item ``i`` is, with probability ``fraction``, a dead-leaves image instead of
    ``base[i]`` (the choice depends only on ``(seed, epoch, i)``). Same length as ``base``."""

    def __init__(self, base: Dataset, fraction: float, image_size: int, channels: int, seed: int = 0, **leaves) -> None:
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"data.train.procedural.fraction must lie in [0, 1], got {fraction}")
        self.base, self.fraction, self.seed, self.epoch = base, float(fraction), int(seed), 0
        self.leaves = DeadLeaves(image_size, channels, len(base), seed=int(seed) + 1, **leaves)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for d in (self.base, self.leaves):
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, len(self))
        if item_rng(self.seed + 2, self.epoch, index).random() < self.fraction:
            return self.leaves[index]
        return self.base[index]
