"""Random training-time augmentations, as a dataset wrapper that works on every dataset.

Each item draws its own transformation from ``(seed, epoch, index)`` alone (``item_rng``), so a resumed
run, or any DataLoader worker, reproduces it. The operations keep pixel values in [0, 1]:

* ``dihedral``: one of the 8 symmetries of the square (90° rotations × mirror) — natural-image statistics
  are nearly invariant to them; faces are not (keep it off there and use ``hflip`` of the dataset).
* ``color_permute``: a random permutation of the RGB channels.
* ``hue`` (degrees): a hue rotation, x ↦ R_θ x with R_θ the rotation about the grey axis k = (1, 1, 1)/√3
  (Rodrigues: R = cos θ I + sin θ [k]× + (1 − cos θ) k kᵀ) and θ ~ U[−hue, hue]; it keeps each pixel's grey
  level and chroma magnitude and turns its colour continuously (the cyclic RGB permutations are its turns by
  ±120°; the other three are mirrors, not rotations); clamped to [0, 1].
* ``jitter``: brightness/contrast/saturation: x ↦ m + c·(x − m) + b, grey-mixing by s, with c, s ∈
  [1 − j, 1 + j] log-uniform and b ∈ [−j/2, j/2]; clamped to [0, 1].
* ``shift`` (pixels) and ``scale`` (lo, hi): a small random translation and zoom (bilinear, reflected
  borders) — for aligned data such as faces, so the prior does not memorise exact positions.
* ``warp`` (pixels): an elastic deformation (Simard et al. 2003): x ↦ x(p + d(p)) with a smooth displacement
  field d, i.i.d. N(0, warp²) per axis on a 4 × 4 grid of control points, bicubically interpolated to every pixel;
  it keeps an aligned face aligned on average while moving its parts (eye spacing, nose length) a little.
* ``shading`` (log-intensity std): its photometric counterpart, a smooth illumination field: x ↦ x · exp(g(p))
  with g i.i.d. N(0, shading²) on the same 4 × 4 grid, bicubically interpolated and shared by the colour channels
  (a face lit a little more from one side); clamped to [0, 1].
* ``mixup`` (probability, handled by :class:`Augmented`, which sees the whole dataset): with this probability the
  item is λ·x_i + (1 − λ)·x_j with another random item j and λ ~ U(0, 1) (Zhang et al. 2018), before the above.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._util import check_index, float_pair
from .transforms import item_rng

__all__ = ["Augmented", "augment_image", "hue_rotation_matrix"]

_SALT = 7_777  # keeps the augmentation stream apart from the dataset's own (seed, epoch, index) stream


def _jitter(x: torch.Tensor, rng: np.random.Generator, j: float) -> torch.Tensor:
    c = math.exp(rng.uniform(math.log1p(-j), math.log1p(j)))
    b = rng.uniform(-j / 2, j / 2)
    m = x.mean()
    x = m + c * (x - m) + b
    if x.shape[0] == 3:
        s = math.exp(rng.uniform(math.log1p(-j), math.log1p(j)))
        grey = x.mean(dim=0, keepdim=True)
        x = grey + s * (x - grey)
    return x.clamp(0.0, 1.0)


def hue_rotation_matrix(degrees: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``R = cos θ I + sin θ [k]× + (1 − cos θ) k kᵀ``: the 3×3 rotation by θ about the grey axis k = 1/√3."""
    theta = math.radians(degrees)
    c = 1.0 / math.sqrt(3.0)
    cross = torch.tensor([[0.0, -c, c], [c, 0.0, -c], [-c, c, 0.0]], dtype=dtype)
    outer = torch.full((3, 3), c * c, dtype=dtype)
    return math.cos(theta) * torch.eye(3, dtype=dtype) + math.sin(theta) * cross + (1.0 - math.cos(theta)) * outer


def _hue_rotation(x: torch.Tensor, rng: np.random.Generator, max_degrees: float) -> torch.Tensor:
    rot = hue_rotation_matrix(rng.uniform(-max_degrees, max_degrees), x.dtype)
    return torch.einsum("ij,jhw->ihw", rot, x).clamp(0.0, 1.0)


def _shift_scale(x: torch.Tensor, rng: np.random.Generator, shift: float, scale: tuple[float, float]) -> torch.Tensor:
    h, w = x.shape[-2:]
    z = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    ty, tx = rng.uniform(-shift, shift, size=2)
    theta = torch.tensor([[1 / z, 0.0, 2 * tx / w], [0.0, 1 / z, 2 * ty / h]], dtype=x.dtype)[None]
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]


_WARP_GRID = 4  # control points per axis of the smooth random fields (elastic warp, shading)


def _smooth_field(
    rng: np.random.Generator, std: float, fields: int, h: int, w: int, dtype: torch.dtype
) -> torch.Tensor:
    """``fields`` smooth random maps ``(fields, H, W)``: N(0, std²) on a 4 × 4 grid, bicubically interpolated."""
    coarse = torch.from_numpy(rng.normal(0.0, std, size=(1, fields, _WARP_GRID, _WARP_GRID))).to(dtype)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0]


def _warp(x: torch.Tensor, rng: np.random.Generator, warp: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    d = _smooth_field(rng, warp, 2, h, w, x.dtype)  # (2, H, W) displacements in pixels
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=x.dtype)[None]
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)[0]  # (H, W, 2) as (x, y) in [-1, 1]
    grid = grid + torch.stack([d[0] * 2 / w, d[1] * 2 / h], dim=-1)
    return F.grid_sample(x[None], grid[None], mode="bilinear", padding_mode="reflection", align_corners=False)[0]


def _shading(x: torch.Tensor, rng: np.random.Generator, shading: float) -> torch.Tensor:
    return (x * _smooth_field(rng, shading, 1, *x.shape[-2:], x.dtype).exp()).clamp(0.0, 1.0)


def augment_image(
    x: torch.Tensor,
    rng: np.random.Generator,
    dihedral: bool = False,
    color_permute: bool = False,
    jitter: float = 0.0,
    shift: float = 0.0,
    scale: Sequence[float] | None = None,
    hue: float = 0.0,
    warp: float = 0.0,
    shading: float = 0.0,
) -> torch.Tensor:
    """One random augmentation of a ``(C, H, W)`` image in [0, 1] (see the module docstring)."""
    if warp > 0:
        x = _warp(x, rng, float(warp))
    if shift > 0 or scale is not None:
        x = _shift_scale(x, rng, float(shift), float_pair(scale, "augment.scale") or (1.0, 1.0))
    if dihedral:
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        x = torch.rot90(x, k, dims=(-2, -1))
        x = x.flip(-1) if flip else x
    if color_permute and x.shape[0] == 3:
        x = x[torch.from_numpy(rng.permutation(3))]
    if hue > 0 and x.shape[0] == 3:
        x = _hue_rotation(x, rng, float(hue))
    if shading > 0:
        x = _shading(x, rng, float(shading))
    if jitter > 0:
        x = _jitter(x, rng, float(jitter))
    return x.clamp(0.0, 1.0).contiguous()


AUGMENT_KEYS = frozenset(inspect.signature(augment_image).parameters) - {"x", "rng"} | {"mixup"}
"""The ``data.train.augment`` keys: :func:`augment_image`'s keyword arguments and ``mixup`` (one list to keep)."""


# largest displacement, as a share of the image's shorter side: a warp std or shift past it scrambles the image
MAX_DISPLACEMENT = {"warp": 0.25, "shift": 0.5}


def _check_flags_and_sizes(base: Dataset, options: dict) -> None:
    """Refuse, naming the key, a non-boolean flag (YAML's ``no`` is a string, and truthy) and a ``warp``/``shift``
    beyond :data:`MAX_DISPLACEMENT` of the images' shorter side (measured on the first item)."""
    for key in ("dihedral", "color_permute"):
        if not isinstance(options.get(key, False), bool):
            raise ValueError(f"data.train.augment.{key} must be true or false, got {options[key]!r}")
    wanted = {k: float(options.get(k, 0.0)) for k in MAX_DISPLACEMENT}
    if not any(wanted.values()):
        return
    side = min(base[0].shape[-2:])
    for key, v in wanted.items():
        if v > MAX_DISPLACEMENT[key] * side:
            raise ValueError(
                f"data.train.augment.{key}={v:g} pixels would scramble {side}-pixel images (at most "
                f"{MAX_DISPLACEMENT[key] * side:g}); use a few pixels, e.g. 1-2"
            )


class Augmented(Dataset):
    """``base`` with :func:`augment_image` applied to every item (``options`` are its keyword arguments)."""

    def __init__(self, base: Dataset, seed: int = 0, **options) -> None:
        unknown = set(options) - AUGMENT_KEYS
        if unknown:
            raise ValueError(f"unknown data.train.augment keys {sorted(unknown)}; known: {sorted(AUGMENT_KEYS)}")
        if not 0.0 <= float(options.get("jitter", 0.0)) < 1.0 or float(options.get("shift", 0.0)) < 0:
            raise ValueError(f"data.train.augment needs 0 <= jitter < 1 and shift >= 0, got {options}")
        if float(options.get("warp", 0.0)) < 0 or not 0.0 <= float(options.get("mixup", 0.0)) <= 1.0:
            raise ValueError(f"data.train.augment needs warp >= 0 (pixels) and mixup in [0, 1], got {options}")
        if not 0.0 <= float(options.get("shading", 0.0)) <= 1.0:
            raise ValueError(
                f"data.train.augment.shading is a log-intensity std in [0, 1] (e.g. 0.1), got {options['shading']}"
            )
        if not 0.0 <= float(options.get("hue", 0.0)) <= 180.0:
            raise ValueError(f"data.train.augment.hue is a rotation in degrees in [0, 180], got {options['hue']}")
        float_pair(options.get("scale"), "data.train.augment.scale")
        _check_flags_and_sizes(base, options)
        self.mixup = float(options.pop("mixup", 0.0))  # handled here, not by augment_image: it needs a second item
        self.base, self.seed, self.epoch, self.options = base, int(seed), 0, options

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, len(self))
        rng = item_rng(self.seed + _SALT, self.epoch, index)
        x = self.base[index]
        if self.mixup > 0 and rng.random() < self.mixup:  # no draw without mixup: older runs keep their stream
            lam = float(rng.uniform())
            x = lam * x + (1.0 - lam) * self.base[int(rng.integers(len(self.base)))]
        return augment_image(x, rng, **self.options)
