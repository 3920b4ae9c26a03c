"""Random training-time augmentations, as a dataset wrapper that works on every dataset.

Each item draws its own transformation from ``(seed, epoch, index)`` alone (``item_rng``), so a resumed
run, or any DataLoader worker, reproduces it. The operations keep pixel values in [0, 1]:

* ``dihedral``: one of the 8 symmetries of the square (90° rotations × mirror) — natural-image statistics
  are nearly invariant to them; faces are not (keep it off there and use ``hflip`` of the dataset).
* ``color_permute``: a random permutation of the RGB channels.
* ``jitter``: brightness/contrast/saturation: x ↦ m + c·(x − m) + b, grey-mixing by s, with c, s ∈
  [1 − j, 1 + j] log-uniform and b ∈ [−j/2, j/2]; clamped to [0, 1].
* ``shift`` (pixels) and ``scale`` (lo, hi): a small random translation and zoom (bilinear, reflected
  borders) — for aligned data such as faces, so the prior does not memorise exact positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._util import check_index, float_pair
from .transforms import item_rng

__all__ = ["Augmented", "augment_image"]

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


def _shift_scale(x: torch.Tensor, rng: np.random.Generator, shift: float, scale: tuple[float, float]) -> torch.Tensor:
    h, w = x.shape[-2:]
    z = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    ty, tx = rng.uniform(-shift, shift, size=2)
    theta = torch.tensor([[1 / z, 0.0, 2 * tx / w], [0.0, 1 / z, 2 * ty / h]], dtype=x.dtype)[None]
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]


def augment_image(
    x: torch.Tensor,
    rng: np.random.Generator,
    dihedral: bool = False,
    color_permute: bool = False,
    jitter: float = 0.0,
    shift: float = 0.0,
    scale: Sequence[float] | None = None,
) -> torch.Tensor:
    """One random augmentation of a ``(C, H, W)`` image in [0, 1] (see the module docstring)."""
    if shift > 0 or scale is not None:
        x = _shift_scale(x, rng, float(shift), float_pair(scale, "augment.scale") or (1.0, 1.0))
    if dihedral:
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        x = torch.rot90(x, k, dims=(-2, -1))
        x = x.flip(-1) if flip else x
    if color_permute and x.shape[0] == 3:
        x = x[torch.from_numpy(rng.permutation(3))]
    if jitter > 0:
        x = _jitter(x, rng, float(jitter))
    return x.clamp(0.0, 1.0).contiguous()


class Augmented(Dataset):
    """``base`` with :func:`augment_image` applied to every item (``options`` are its keyword arguments)."""

    def __init__(self, base: Dataset, seed: int = 0, **options) -> None:
        known = {"dihedral", "color_permute", "jitter", "shift", "scale"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown data.train.augment keys {sorted(unknown)}; known: {sorted(known)}")
        if not 0.0 <= float(options.get("jitter", 0.0)) < 1.0 or float(options.get("shift", 0.0)) < 0:
            raise ValueError(f"data.train.augment needs 0 <= jitter < 1 and shift >= 0, got {options}")
        float_pair(options.get("scale"), "data.train.augment.scale")
        self.base, self.seed, self.epoch, self.options = base, int(seed), 0, options

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, len(self))
        return augment_image(self.base[index], item_rng(self.seed + _SALT, self.epoch, index), **self.options)
