"""Default datasets built from images that ship inside scikit-image's wheel (no download, ever).

* :class:`PhotoCrops` — square crops of scikit-image's photographs, split by whole photograph:

  ======  ==========================================================================================
  test    ``chelsea`` + ``coffee`` — fixed by the product spec ("64 test crops, chelsea + coffee,
          downscaled 4x").
  val     ``astronaut`` — the one remaining everyday RGB photograph with people and man-made objects,
          i.e. the closest in content and statistics to the test pair, so early-stopping and
          hyper-parameters picked on it transfer.
  train   RGB: ``rocket``, ``immunohistochemistry``, ``retina``, ``hubble_deep_field``, ``logo`` (its
          alpha is opaque; it would be composited over white). Grey (``include_grey=True``, default):
          ``camera``, ``coins``, ``moon``, ``brick``, ``grass``, ``gravel``, ``page``, ``text``, repeated
          to 3 channels. Only ``rocket`` among the RGB training photographs is an everyday scene, so
          the grey ones add most of the natural edges and textures a restoration prior needs; blur
          and masks act per channel, so grey structure is directly useful. ``cell`` is left out: at
          4x downscale most of its crops are flat (std < 0.02).
  ======  ==========================================================================================

  Photographs are downscaled with area averaging (PIL ``BOX``: antialiased, no ringing, stays in
  [0, 1]) so that a 32-px crop covers object-scale structure (short sides ~75-130 px at 4x).
* :class:`FaceCrops` — the 100 grey 25x25 faces of ``skimage.data.lfw_subset()`` (the 100 non-faces
  that follow them are never used), resized to ``image_size``, split 80/10/10 by a fixed permutation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._util import check_index, float_pair
from .transforms import hflip as flip_lr
from .transforms import item_rng, log_uniform, pil_to_tensor, resize, to_channels

__all__ = [
    "EXCLUDED_PHOTOS",
    "TEST_PHOTOS",
    "TRAIN_GREY_PHOTOS",
    "TRAIN_RGB_PHOTOS",
    "VAL_PHOTOS",
    "FaceCrops",
    "PhotoCrops",
    "load_faces",
    "load_photo",
    "photo_names",
]

TEST_PHOTOS: tuple[str, ...] = ("chelsea", "coffee")
VAL_PHOTOS: tuple[str, ...] = ("astronaut",)
TRAIN_RGB_PHOTOS: tuple[str, ...] = ("rocket", "immunohistochemistry", "retina", "hubble_deep_field", "logo")
TRAIN_GREY_PHOTOS: tuple[str, ...] = ("camera", "coins", "moon", "brick", "grass", "gravel", "page", "text")
EXCLUDED_PHOTOS: tuple[str, ...] = ("cell",)
_EVAL_SPLITS = ("val", "test")
_N_FACES = 100
_ROTATION_PAD = 2.0  # px between a rotated crop and the photograph's edge: the bicubic taps stay on real pixels
# (PIL would clamp them to the edge pixel, not fill them, so this is about fidelity, not about black leaking in)
_MIN_STD_TRIES = 10


def photo_names(split: str, include_grey: bool = True) -> tuple[str, ...]:
    """Names of the scikit-image photographs used by ``split`` ('train', 'val' or 'test')."""
    if split == "test":
        return TEST_PHOTOS
    if split == "val":
        return VAL_PHOTOS
    if split == "train":
        return TRAIN_RGB_PHOTOS + (TRAIN_GREY_PHOTOS if include_grey else ())
    raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")


@cache
def _original_photo(name: str) -> Image.Image:
    """Full-resolution photograph as a PIL image in mode 'RGB' or 'L' (alpha composited over white)."""
    import skimage.data

    allowed = TEST_PHOTOS + VAL_PHOTOS + TRAIN_RGB_PHOTOS + TRAIN_GREY_PHOTOS + EXCLUDED_PHOTOS
    if name not in allowed:
        raise ValueError(f"unknown photograph {name!r}; known (shipped with scikit-image): {allowed}")
    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype != np.uint8:
        raise TypeError(f"expected skimage.data.{name}() to be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 4:
        a = arr[..., 3:].astype(np.float32) / 255.0
        arr = np.round(arr[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr))


@lru_cache(maxsize=64)
def _downscaled_photo(name: str, downscale: float) -> torch.Tensor:
    img = _original_photo(name)
    if downscale != 1.0:
        w, h = img.size
        img = img.resize((max(1, round(w / downscale)), max(1, round(h / downscale))), Image.Resampling.BOX)
    return pil_to_tensor(img)


def load_photo(name: str, downscale: float = 1.0, channels: int | None = None) -> torch.Tensor:
    """A scikit-image photograph as a ``(C, H, W)`` float tensor in [0, 1], area-downscaled by ``downscale``.

    Cached in memory (the returned tensor is a fresh copy). ``channels=None`` keeps the native 1 or 3.
    """
    if downscale < 1.0:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    x = _downscaled_photo(name, float(downscale))
    return (x if channels is None else to_channels(x, channels)).clone()


def _grid_positions(height: int, width: int, size: int, n: int) -> list[tuple[int, int]]:
    """``n`` (top, left) corners on a regular grid covering the image evenly (rows x cols ~ aspect)."""
    span_h, span_w = height - size, width - size
    rows = max(1, min(n, round(math.sqrt(n * (span_h + 1) / (span_w + 1)))))
    cols = -(-n // rows)
    tops = np.linspace(0, span_h, rows).round().astype(int)
    lefts = np.linspace(0, span_w, cols).round().astype(int)
    grid = [(int(t), int(l)) for t in tops for l in lefts]
    keep = np.linspace(0, len(grid) - 1, n).round().astype(int)
    return [grid[i] for i in keep]


def _check_photo_crop_arguments(
    split: str, channels: int, downscale: float, image_size: int, crops_per_image: int, random_rotation: bool,
    random_scale: Sequence[float] | None, random_aspect: Sequence[float] | None,
) -> None:  # fmt: skip
    """Refuse, in one line naming the argument, what :class:`PhotoCrops` cannot use."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if not isinstance(random_rotation, bool):
        raise ValueError(f"random_rotation must be true or false, got {random_rotation!r}")
    if float(downscale) < 1.0:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    if int(image_size) < 1 or int(crops_per_image) < 1:
        raise ValueError(f"image_size and crops_per_image must be positive, got {image_size}, {crops_per_image}")
    train_only = {"random_scale": random_scale, "random_rotation": random_rotation, "random_aspect": random_aspect}
    given = ", ".join(k for k, v in train_only.items() if v not in (None, False))
    if split in _EVAL_SPLITS and given:
        raise ValueError(
            f"{given} draw random training crops and apply to split='train' only (set them under data.train); "
            f"the {split} crops are a fixed grid"
        )


class PhotoCrops(Dataset):
    """Crops of scikit-image's photographs, split by whole photograph (see the module docstring).

    Items are ``(channels, image_size, image_size)`` float32 tensors in [0, 1].

    * ``val`` / ``test``: a fixed set of ``crops_per_image`` crops per photograph, on a regular grid that
      covers each photograph (downscaled by ``downscale``) evenly — no randomness, so the test set is the
      same for every run. Defaults give 64 test crops (32 x chelsea, 32 x coffee) and 32 val crops.
    * ``train``: ``length`` crops per epoch (default 4096) drawn on the fly: a photograph uniformly at
      random, a downscale factor (``downscale``, or log-uniform in ``random_scale``), a uniformly placed
      square (sub-pixel), area-resampled to ``image_size``, mirrored with probability 1/2 when ``hflip``.
      Crops with std below ``min_std`` (flat sky or border) are redrawn up to 10 times. Item ``i`` depends
      only on (seed, epoch, i). A factor too large for a small photograph is reduced so the crop fits.

    Args:
        split: 'train', 'val' or 'test'.
        image_size: crop side in pixels.
        channels: 3 (grey photographs repeated) or 1 (RGB by BT.601 luma).
        downscale: area downscale factor applied to the photographs first (>= 1).
        crops_per_image: crops per photograph for val/test (ignored for train).
        random_scale: (lo, hi) downscale range for train crops, e.g. (3, 6); None uses ``downscale``.
        length: train items per epoch (ignored for val/test, whose length is fixed).
        seed: seed of the train crops.
        hflip: random horizontal flips; default True for train, False otherwise.
        include_grey: add the grey photographs to the training set.
        min_std: redraw threshold for flat train crops (0 disables).
        random_rotation: train crops at a uniform angle in [0°, 360°) (the square is rotated inside the
            full-resolution photograph, so the interpolation happens before the area downscale).
        random_aspect: (lo, hi) log-uniform aspect ratio a of train crops: a √a·s x s/√a rectangle of the
            photograph (s the side at the drawn factor) squeezed to the square, i.e. content stretched by 1/√a
            horizontally and √a vertically; with rotation the stretch follows the turned axes. None: squares.
    """

    def __init__(
        self,
        split: str,
        image_size: int = 32,
        channels: int = 3,
        downscale: float = 4.0,
        crops_per_image: int = 32,
        random_scale: Sequence[float] | None = None,
        length: int | None = None,
        seed: int = 0,
        hflip: bool | None = None,
        include_grey: bool = True,
        min_std: float = 0.02,
        random_rotation: bool = False,
        random_aspect: Sequence[float] | None = None,
    ) -> None:
        _check_photo_crop_arguments(
            split, channels, downscale, image_size, crops_per_image, random_rotation, random_scale, random_aspect
        )
        scale = float_pair(random_scale, "random_scale")
        if scale is not None and scale[0] < 1.0:
            raise ValueError(f"random_scale must satisfy 1 <= lo <= hi, got {scale}")
        self.split = split
        self.sources: tuple[str, ...] = photo_names(split, include_grey)
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.downscale = float(downscale)
        self.crops_per_image = int(crops_per_image)
        self.random_scale = scale
        self.seed = int(seed)
        self.hflip = (split == "train") if hflip is None else bool(hflip)
        self.min_std = float(min_std)
        self.random_rotation = random_rotation
        self.random_aspect = float_pair(random_aspect, "random_aspect")
        self.epoch = 0
        if split in _EVAL_SPLITS:
            self._items: list[tuple[str, int, int]] = self._grid_items()
            self.length = len(self._items)
        else:
            self.sources = self._usable_training_photos()
            self.length = 4096 if length is None else int(length)
            if self.length < 1:
                raise ValueError(f"length must be positive, got {length}")

    def _grid_items(self) -> list[tuple[str, int, int]]:
        """The fixed val/test crops ``(photo, top, left)``: a grid over every downscaled photograph."""
        size, items = self.image_size, []
        for name in self.sources:
            h, w = _downscaled_photo(name, self.downscale).shape[-2:]
            if min(h, w) < size:
                raise ValueError(
                    f"photograph {name!r} is {h}x{w} after downscale {self.downscale}, smaller than "
                    f"image_size={size}; lower downscale or image_size."
                )
            items += [(name, t, l) for t, l in _grid_positions(h, w, size, self.crops_per_image)]
        return items

    def _usable_training_photos(self) -> tuple[str, ...]:
        """The training photographs that hold the widest crop at factor 1 (so ``_train_item``'s factor cap never
        upsamples)."""
        reach = max_box_reach(self.random_rotation, self.random_aspect)
        need = self.image_size * reach + (2 * _ROTATION_PAD if self.random_rotation else 0)
        usable = tuple(n for n in self.sources if min(_original_photo(n).size) >= need)
        if not usable:
            raise ValueError(
                f"no training photograph is at least {math.ceil(need)} px on its shorter side, as "
                f"image_size={self.image_size} needs with these random_rotation/random_aspect settings; lower "
                f"image_size or narrow them"
            )
        return usable

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh set of train crops for a new epoch (no effect on val/test)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def crop_info(self, index: int) -> dict[str, object]:
        """Item ``index``: photograph and crop geometry (val/test: downscaled px, train: original)."""
        index = check_index(index, self.length)
        if self.split in _EVAL_SPLITS:
            name, top, left = self._items[index]
            return {
                "name": name,
                "top": top,
                "left": left,
                "size": self.image_size,
                "downscale": self.downscale,
            }
        return self._train_item(index)[1]

    def _train_item(self, index: int) -> tuple[torch.Tensor, dict[str, object]]:
        rng = item_rng(self.seed, self.epoch, index)
        size = self.image_size
        for _ in range(_MIN_STD_TRIES):
            name = self.sources[int(rng.integers(len(self.sources)))]
            img = _original_photo(name)
            w, h = img.size
            factor = self.downscale if self.random_scale is None else log_uniform(rng, *self.random_scale)
            angle = float(rng.uniform(0.0, 360.0)) if self.random_rotation else 0.0
            aspect = 1.0 if self.random_aspect is None else log_uniform(rng, *self.random_aspect)
            reach_w, reach_h = rotated_box_reach(angle, aspect)
            pad = _ROTATION_PAD if angle else 0.0
            factor = min(factor, (w - 2 * pad) / (size * reach_w), (h - 2 * pad) / (size * reach_h))
            side = size * factor
            ext_w, ext_h = side * reach_w, side * reach_h
            span_w, span_h = max(pad, w - ext_w - pad), max(pad, h - ext_h - pad)  # max(): float round-off
            left, top = float(rng.uniform(pad, span_w)), float(rng.uniform(pad, span_h))
            flip = bool(self.hflip and rng.random() < 0.5)
            if angle:
                patch = _rotated_crop(img, left + ext_w / 2, top + ext_h / 2, side, angle, size, aspect)
            else:
                box = (left, top, left + side * math.sqrt(aspect), top + side / math.sqrt(aspect))
                patch = img.resize((size, size), Image.Resampling.BOX, box=box)
            x = to_channels(pil_to_tensor(patch), self.channels)
            if self.min_std <= 0 or float(x.std()) >= self.min_std:
                break
        if flip:
            x = flip_lr(x)
        info = {"name": name, "top": top, "left": left, "side": side, "downscale": factor, "flip": flip}
        if self.random_rotation:
            # degrees: the crop's content turns counter-clockwise (the square sampled in the photograph, clockwise);
            # (top, left) is then the corner of the rotated square's bounding box
            info["angle"] = angle
        if self.random_aspect is not None:
            info["aspect"] = aspect  # the rectangle is side·√aspect wide and side/√aspect high before turning
        return x.contiguous(), info

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, self.length)
        if self.split in _EVAL_SPLITS:
            name, top, left = self._items[index]
            full = _downscaled_photo(name, self.downscale)
            x = full[:, top : top + self.image_size, left : left + self.image_size]
            return to_channels(x, self.channels).clone()
        return self._train_item(index)[0]

    def __repr__(self) -> str:
        return (
            f"PhotoCrops(split={self.split!r}, n={len(self)}, image_size={self.image_size}, "
            f"channels={self.channels}, downscale={self.downscale}, sources={self.sources})"
        )


def rotated_box_reach(angle: float, aspect: float = 1.0) -> tuple[float, float]:
    """Bounding-box width and height, over ``side``, of the √a·side x side/√a rectangle turned by ``angle``
    degrees: (√a|cos θ| + |sin θ|/√a, √a|sin θ| + |cos θ|/√a); |cos θ| + |sin θ| (1 to √2) twice for a square."""
    c, s, r = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle))), math.sqrt(aspect)
    return r * c + s / r, r * s + c / r


def max_box_reach(rotation: bool, aspect: tuple[float, float] | None) -> float:
    """The most that ``rotated_box_reach`` reaches along either axis over the drawn angles and aspects:
    √(a + 1/a) at the extreme a when turned (√2 for squares), else max(√a_hi, 1/√a_lo) (>= 1 as lo <= hi)."""
    lo, hi = aspect if aspect is not None else (1.0, 1.0)
    if rotation:
        return max(math.sqrt(a + 1.0 / a) for a in (lo, hi))
    return max(math.sqrt(hi), 1.0 / math.sqrt(lo))


def _rotated_crop(
    img: Image.Image, cx: float, cy: float, side: float, angle: float, size: int, aspect: float = 1.0
) -> Image.Image:
    """The √aspect·side x side/√aspect rectangle centred at (cx, cy) of ``img`` and turned by ``angle``
    degrees, area-resampled to ``size`` x ``size`` px. Bicubic rotation at full resolution, then PIL ``BOX``:
    the interpolation's softening is shrunk by the downscale factor (>= 1) instead of landing on the final
    pixels, as rotating the small crop would. PIL rather than ``grid_sample``: it also does the antialiased
    area resampling the crops use."""
    # the rectangle's circumradius (side·√((a + 1/a)/4), side·√0.5 for a square) + a corner pixel + the bicubic reach
    half = side * math.sqrt((aspect + 1.0 / aspect) / 4.0) + 3.0
    # not clipped to the photograph: a stretched rectangle turned upright can be wider than its bounding box
    # was, so the canvas must hold the whole circle; PIL fills the outside with black, which only the margin
    # gets (the rectangle keeps _ROTATION_PAD px from every edge)
    x0, y0 = math.floor(cx - half), math.floor(cy - half)
    local = img.crop((x0, y0, math.ceil(cx + half), math.ceil(cy + half)))
    c = (cx - x0, cy - y0)
    turned = local.rotate(angle, resample=Image.Resampling.BICUBIC, center=c)
    half_w, half_h = side * math.sqrt(aspect) / 2, side / math.sqrt(aspect) / 2
    box = (c[0] - half_w, c[1] - half_h, c[0] + half_w, c[1] + half_h)
    return turned.resize((size, size), Image.Resampling.BOX, box=box)


@lru_cache(maxsize=8)
def _faces(image_size: int) -> torch.Tensor:
    import skimage.data

    raw = np.asarray(skimage.data.lfw_subset()[:_N_FACES], dtype=np.float32)  # first 100 are faces
    x = torch.from_numpy(np.clip(raw, 0.0, 1.0)).unsqueeze(1)  # (100, 1, 25, 25)
    return torch.stack([resize(f, image_size) for f in x])


def load_faces(image_size: int = 25) -> torch.Tensor:
    """All 100 LFW faces of ``skimage.data.lfw_subset()`` as a ``(100, 1, S, S)`` tensor in [0, 1]."""
    return _faces(int(image_size)).clone()


class FaceCrops(Dataset):
    """The 100 grey LFW faces shipped with scikit-image, resized to ``image_size`` (antialiased bicubic).

    Split 80/10/10 (train/val/test; 'all' = the 100) by a permutation of a fixed generator seeded with
    ``split_seed`` — independent of ``seed``, which only drives the random horizontal flips of the train
    split (on by default there). ``channels=3`` repeats the grey image. ``self.indices`` are the
    positions in ``lfw_subset()``.
    """

    def __init__(
        self,
        split: str,
        image_size: int = 32,
        channels: int = 1,
        seed: int = 0,
        hflip: bool | None = None,
        split_seed: int = 0,
    ) -> None:
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'all', got {split!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if int(image_size) < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        perm = np.random.default_rng(int(split_seed)).permutation(_N_FACES)
        bounds = {"train": (0, 80), "val": (80, 90), "test": (90, 100), "all": (0, 100)}[split]
        self.split = split
        self.indices: list[int] = sorted(int(i) for i in perm[bounds[0] : bounds[1]])
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.seed = int(seed)
        self.hflip = (split == "train") if hflip is None else bool(hflip)
        self.epoch = 0
        self._images = _faces(self.image_size)[self.indices]

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh flips for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, len(self.indices))
        x = self._images[index]
        if self.hflip and item_rng(self.seed, self.epoch, index).random() < 0.5:
            x = flip_lr(x)
        return to_channels(x, self.channels).clone()

    def __repr__(self) -> str:
        return f"FaceCrops(split={self.split!r}, n={len(self)}, image_size={self.image_size}, channels={self.channels})"
