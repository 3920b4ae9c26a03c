"""Datasets over folders of the user's own images.

* :class:`ImageFolderDataset` — clean training/evaluation images, resized and cropped to a square,
  split into train/val/test by a hash of each file's relative path (stable when files are added).
* :class:`MeasurementFolderDataset` — already degraded measurements at their own size, returned with
  their relative path so that restorations can be written under the same names.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._util import check_index, float_pair
from .transforms import center_crop, item_rng, load_image, random_crop, resize, resize_shorter
from .transforms import hflip as flip_lr

__all__ = [
    "DEFAULT_EXTENSIONS",
    "SPLITS",
    "ImageFolderDataset",
    "MeasurementFolderDataset",
    "find_images",
    "split_of",
]

DEFAULT_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
SPLITS: tuple[str, ...] = ("train", "val", "test")
CROP_MODES: tuple[str, ...] = ("center", "random", "resize")
VERIFY_MODES: tuple[str, ...] = ("none", "quick", "full")
_EXIF_ORIENTATION = 0x0112


def _normalise_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    if isinstance(extensions, str):
        extensions = (extensions,)
    exts = tuple(sorted({e.lower().lstrip(".") for e in extensions if e.strip(".")}))
    if not exts:
        raise ValueError("extensions must name at least one file extension, e.g. ('png', 'jpg')")
    return exts


def _check_root(root: str | os.PathLike[str]) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"image folder does not exist: '{path}' (resolved: '{path.absolute()}')")
    if not path.is_dir():
        raise NotADirectoryError(f"expected a folder of images, got a file: '{path}'")
    return path


def find_images(root: str | os.PathLike[str], extensions: Iterable[str] = DEFAULT_EXTENSIONS) -> list[str]:
    """Relative POSIX paths of all image files under ``root``, searched recursively, sorted.

    Extensions match case-insensitively. Hidden files and folders (name starting with '.') are ignored;
    symbolic links to folders are followed once (loops are cut).
    """
    base = _check_root(root)
    exts = {"." + e for e in _normalise_extensions(extensions)}
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            found.append(Path(dirpath, name).relative_to(base).as_posix())
    return sorted(found)


def _split_position(relpath: str, split_seed: int) -> float:
    digest = hashlib.sha256(f"{int(split_seed)}\x00{relpath}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _check_fractions(split_fractions: Sequence[float]) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in split_fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions must be three non-negative numbers (train, val, test) summing to 1, got {fr}"
        )
    return fr  # type: ignore[return-value]


def split_of(relpath: str, split_fractions: Sequence[float] = (0.8, 0.1, 0.1), split_seed: int = 0) -> str:
    """The split ('train', 'val' or 'test') a file belongs to.

    A pure function of the relative path and ``split_seed``: a SHA-256 hash maps the path to a number
    in [0, 1), compared with the cumulative fractions. Adding or removing other files never moves a file.
    """
    f_train, f_val, _ = _check_fractions(split_fractions)
    u = _split_position(relpath, split_seed)
    if u < f_train:
        return "train"
    if u < f_train + f_val:
        return "val"
    return "test"


def _is_readable(path: Path, verify: str) -> bool:
    try:
        with Image.open(path) as img:
            if verify == "full":
                img.load()
            else:
                img.verify()
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, struct.error... for broken files
        return False
    return True


def _summarise(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f", ... ({len(paths) - limit} more)" if len(paths) > limit else "")


class ImageFolderDataset(Dataset):
    """Square, fixed-size crops of every image under a folder (recursive), as ``(C, H, W)`` floats in [0, 1].

    Args:
        root: folder searched recursively (sorted relative paths, hidden files ignored).
        image_size: side of the square output.
        channels: 1 or 3. Grey inputs are repeated to RGB; RGB becomes grey by BT.601 luma; transparency
            is composited over white; EXIF orientation is applied.
        crop: how a photograph becomes a square
            * ``"center"`` — resize (antialiased bicubic) so the shorter side is ``image_size``, keep the
              centre square. Deterministic; the default for evaluation.
            * ``"resize"`` — resize straight to ``image_size x image_size``, ignoring the aspect ratio
              (keeps the whole field of view, distorts non-square images). Deterministic.
            * ``"random"`` — resize so the shorter side is ``image_size * u`` with ``u`` drawn uniformly in
              ``random_scale`` (``None`` means u = 1), then take a uniformly placed square crop.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``. Membership is decided per file by
            :func:`split_of` (hash of the relative path and ``split_seed``), so a file never changes
            split when others are added; sizes only approximate ``split_fractions`` on small folders.
        split_fractions: (train, val, test), summing to 1.
        seed: seed of the random crops / flips. Item ``i`` at epoch ``e`` uses a generator derived from
            (seed, e, i) only, so results do not depend on worker count or access order.
        split_seed: seed of the split hash, separate from ``seed`` so that changing the training seed
            never reshuffles the evaluation images.
        random_scale: (lo, hi) with 1 <= lo <= hi for ``crop="random"``.
        hflip: mirror each item left-right with probability 1/2 (seeded like the crops).
        extensions: file extensions to include (case-insensitive).
        verify: ``"quick"`` (PIL open + verify, reads headers/chunks only), ``"full"`` (decode every
            image once) or ``"none"``. Unreadable files are skipped with one warning and listed in
            ``self.skipped``; a file that passes a quick check but fails to decode later raises a
            ``RuntimeError`` naming it.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no usable image in the requested split (the message says what was searched for).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int,
        channels: int = 3,
        crop: str = "center",
        split: str = "train",
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
        split_seed: int = 0,
        random_scale: Sequence[float] | None = None,
        hflip: bool = False,
        verify: str = "quick",
    ) -> None:
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if int(image_size) < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        scale = float_pair(random_scale, "random_scale")
        if scale is not None and scale[0] < 1.0:
            raise ValueError(f"random_scale must satisfy 1 <= lo <= hi (the crop must fit), got {scale}")
        self.root = _check_root(root)
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.crop = crop
        self.split = split
        self.split_fractions = _check_fractions(split_fractions)
        self.seed = int(seed)
        self.split_seed = int(split_seed)
        self.extensions = _normalise_extensions(extensions)
        self.random_scale = scale
        self.hflip = bool(hflip)
        self.epoch = 0

        candidates = find_images(self.root, self.extensions)
        if split == "all":
            in_split = candidates
        else:
            in_split = [p for p in candidates if split_of(p, self.split_fractions, self.split_seed) == split]
        self.skipped: list[str] = []
        if verify != "none":
            readable = []
            for rel in in_split:
                (readable if _is_readable(self.root / rel, verify) else self.skipped).append(rel)
            in_split = readable
        self.files: list[str] = in_split
        if self.skipped:
            warnings.warn(
                f"ImageFolderDataset: skipped {len(self.skipped)} unreadable image file(s) under "
                f"'{self.root}' (split {split!r}): {_summarise(self.skipped)}. See `.skipped` for the full "
                "list.",
                stacklevel=2,
            )
        if not self.files:
            raise ValueError(self._empty_message(len(candidates), len(in_split) + len(self.skipped)))

    def _empty_message(self, n_found: int, n_in_split: int) -> str:
        looked_for = ", ".join("." + e for e in self.extensions)
        where = f"'{self.root}' (searched recursively for {looked_for}; hidden files ignored)"
        if n_found == 0:
            return (
                f"No images found for split {self.split!r}: nothing under {where}. Put image files there or "
                f"under sub-folders, or pass `extensions=` listing the file types you have."
            )
        if n_in_split == 0:
            return (
                f"Split {self.split!r} is empty: {n_found} image(s) found under {where}, but none falls in "
                f"this split with split_fractions={self.split_fractions}, split_seed={self.split_seed}. "
                f"Add more images, change split_fractions, or use split='all' to take every image."
            )
        return (
            f"All {n_in_split} image(s) of split {self.split!r} under {where} are unreadable (e.g. "
            f"{_summarise(self.skipped, 3)}). Replace or re-export them."
        )

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops/flips for a new epoch (has no effect on deterministic modes)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = check_index(index, len(self.files))
        path = self.root / self.files[index]
        size = self.image_size
        need = size if self.random_scale is None else int(np.ceil(size * self.random_scale[1]))
        try:
            x = load_image(path, self.channels, min_size=need)
        except Exception as err:
            raise RuntimeError(f"could not decode image '{path}': {err}") from err
        rng = item_rng(self.seed, self.epoch, index) if (self.crop == "random" or self.hflip) else None
        if self.crop == "resize":
            x = resize(x, size)
        elif self.crop == "center":
            x = center_crop(resize_shorter(x, size), size)
        else:
            assert rng is not None
            u = 1.0 if self.random_scale is None else float(rng.uniform(*self.random_scale))
            x = random_crop(resize_shorter(x, max(size, round(size * u))), size, rng)
        if self.hflip:
            assert rng is not None
            if rng.random() < 0.5:
                x = flip_lr(x)
        return x.contiguous()

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset(root='{self.root}', split={self.split!r}, n={len(self)}, "
            f"image_size={self.image_size}, channels={self.channels}, crop={self.crop!r})"
        )


def _oriented_size(path: Path) -> tuple[int, int]:
    """(H, W) after EXIF orientation, from the header only."""
    with Image.open(path) as img:
        w, h = img.size
        if img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w


class MeasurementFolderDataset(Dataset):
    """A folder (recursive) of measurements — already degraded images without ground truth.

    Items are ``(tensor, relative_path)``: a ``(C, H, W)`` float tensor in [0, 1] at the file's own size
    (no resizing, so the operator sees exactly what was measured) and its POSIX path relative to
    ``root``, so restorations can be written under the same names. All files must share one size
    (checked at construction from the headers); unreadable files raise rather than being skipped,
    since every measurement is expected to get an output.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        channels: int = 3,
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.root = _check_root(root)
        self.channels = int(channels)
        self.extensions = _normalise_extensions(extensions)
        self.files: list[str] = find_images(self.root, self.extensions)
        if not self.files:
            looked_for = ", ".join("." + e for e in self.extensions)
            raise ValueError(
                f"No measurements found under '{self.root}' (searched recursively for {looked_for}; hidden "
                f"files ignored). Put the degraded images there or pass `extensions=`."
            )
        sizes: dict[tuple[int, int], list[str]] = {}
        broken: list[str] = []
        for rel in self.files:
            try:
                sizes.setdefault(_oriented_size(self.root / rel), []).append(rel)
            except Exception:
                broken.append(rel)
        if broken:
            raise ValueError(
                f"{len(broken)} measurement file(s) under '{self.root}' cannot be read: "
                f"{_summarise(broken)}. Fix or remove them."
            )
        if len(sizes) > 1:
            desc = "; ".join(
                f"{h}x{w} ({len(v)} file(s), e.g. {v[0]})"
                for (h, w), v in sorted(sizes.items(), key=lambda kv: -len(kv[1]))
            )
            raise ValueError(
                f"All measurements under '{self.root}' must have the same size (H x W) to be batched, found "
                f"{len(sizes)} sizes: {desc}. Put each size in its own folder."
            )
        self.size: tuple[int, int] = next(iter(sizes))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        index = check_index(index, len(self.files))
        rel = self.files[index]
        try:
            x = load_image(self.root / rel, self.channels)
        except Exception as err:
            raise RuntimeError(f"could not decode measurement '{self.root / rel}': {err}") from err
        return x, rel

    def __repr__(self) -> str:
        return (
            f"MeasurementFolderDataset(root='{self.root}', n={len(self)}, size={self.size}, channels={self.channels})"
        )
