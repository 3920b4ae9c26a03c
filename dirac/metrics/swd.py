"""Multi-scale patch statistics that need no pretrained weights: sliced Wasserstein distance (SWD),
Fréchet distance and KID between Laplacian-pyramid patch sets (after Karras et al., ProGAN, ICLR 2018).

What it measures
    Each image set is turned into a cloud of local descriptors per scale: a Laplacian pyramid (5-tap
    binomial filter ``[1, 4, 6, 4, 1] / 16``, reflect borders, down-sampling by 2) holds one band-pass level
    per resolution ``>= min_size`` plus the low-pass residual at half the smallest band (32-px images with
    ``min_size=16``: bands at 32 and 16 px, low-pass at 8 px; ProGAN stops with the low-pass at 16 px).  From
    every level, ``patches_per_image`` random 7x7 patches per image (positions seeded, with replacement)
    give descriptors of dimension ``7 * 7 * C``.  Each colour channel of the descriptors is standardised per
    level (mean and std over patches and patch positions); by default (``normalize="joint"``) with the
    statistics of both sets pooled, so a global loss of band energy (blur) still shows, whereas ProGAN
    standardised each set by its own statistics (``normalize="separate"``; ``"reference"`` uses the
    reference set's statistics for both).  Per level the two descriptor clouds are compared by

    * SWD: ``mean over directions u of W1(<a, u>, <b, u>)``, ``u`` uniform on the unit sphere
      (``n_dirs`` directions, ``n_repeats`` seeded repeats), the 1-D Wasserstein-1 distance being the mean
      absolute difference of the sorted projections; reported **x 1e3** like ProGAN (``swd_scale``);
    * Fréchet: ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` of the descriptor statistics;
    * KID: unbiased MMD^2 with the polynomial kernel ``k(a, b) = (a.b / D + 1)^3``, averaged over seeded
      random subsets.

    Scores are returned per level and as the plain mean over levels.  Low values mean the two sets have the
    same distribution of local sharpness, texture and colour statistics at every scale.

Limits
    * A distance between *distributions*, not a per-image score: it needs enough patches for stable
      statistics -- dozens of images (the Fréchet variant needs many more patches than the
      ``49 C`` descriptor dimensions; default 128 patches per image).  Compare values only at equal
      set sizes and settings (seed, patch counts, normalisation).
    * Blind to semantics and to structure larger than a 7x7 patch at each scale (the coarsest level sees
      7x7 pixels of an image down-sampled ``2^(L-1)`` times); no pairing between images is used.
    * With ``normalize="joint"`` the standardisation depends on both sets; use ``"reference"`` to compare
      several candidate sets against one reference on exactly the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_images, to_unit_range
from .fid import feature_statistics, frechet_distance

__all__ = [
    "LevelScores",
    "MultiScalePatchDistance",
    "laplacian_pyramid",
    "patch_frechet_distance",
    "patch_kid",
    "reconstruct_laplacian_pyramid",
    "sliced_wasserstein",
    "swd",
]

Normalize = Literal["joint", "reference", "separate"]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur5(x: Tensor, gain: float = 1.0) -> Tensor:
    """Separable 5x5 binomial filter with reflect borders, applied per channel."""
    c = x.shape[1]
    k = (_BINOMIAL * gain**0.5).to(dtype=x.dtype, device=x.device)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def _pyr_down(x: Tensor) -> Tensor:
    return _blur5(x)[..., ::2, ::2]


def _pyr_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    return _blur5(up, gain=4.0)[..., : size[0], : size[1]]


def laplacian_pyramid(x: Tensor, min_size: int = 16) -> list[Tensor]:
    """Laplacian pyramid of (B, C, H, W) images: band-pass levels at every size >= ``min_size``, then the
    low-pass residual (the last entry).  ``x = reconstruct_laplacian_pyramid(laplacian_pyramid(x))``."""
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"images of {x.shape[-2]}x{x.shape[-1]} px are smaller than min_size={min_size}")
    levels = []
    cur = x
    while min(cur.shape[-2:]) >= min_size:
        low = _pyr_down(cur)
        levels.append(cur - _pyr_up(low, (cur.shape[-2], cur.shape[-1])))
        cur = low
    levels.append(cur)
    return levels


def reconstruct_laplacian_pyramid(levels: list[Tensor]) -> Tensor:
    """Inverse of :func:`laplacian_pyramid`."""
    x = levels[-1]
    for band in reversed(levels[:-1]):
        x = band + _pyr_up(x, (band.shape[-2], band.shape[-1]))
    return x


def _sample_patches(level: Tensor, n: int, size: int, generator: torch.Generator) -> Tensor:
    """``n`` random ``size x size`` patches per image (positions drawn with replacement): (B * n, C, P, P)."""
    b, _, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (b, n), generator=generator).to(level.device)
    xs = torch.randint(0, w - size + 1, (b, n), generator=generator).to(level.device)
    off = torch.arange(size, device=level.device)
    rows = (ys[..., None] + off)[..., :, None]  # (B, n, size, 1)
    cols = (xs[..., None] + off)[..., None, :]  # (B, n, 1, size)
    bidx = torch.arange(b, device=level.device).view(b, 1, 1, 1)
    patches = level[bidx, :, rows, cols]  # advanced indices first: (B, n, size, size, C)
    return patches.permute(0, 1, 4, 2, 3).reshape(b * n, -1, size, size)


def _standardise(desc: Tensor, stats_from: Tensor) -> Tensor:
    """Standardise each channel of (N, C, P, P) descriptors with mean/std of ``stats_from``; flatten."""
    mean = stats_from.mean(dim=(0, 2, 3), keepdim=True)
    std = stats_from.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-8)
    return ((desc - mean) / std).flatten(1)


def sliced_wasserstein(
    a: Tensor, b: Tensor, n_dirs: int = 128, n_repeats: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    r"""Sliced Wasserstein-1 distance between point clouds a (N, D) and b (M, D), a scalar tensor.

    ``SWD = mean_{u} (1/N) sum_i |sort(a u)_i - sort(b u)_i|`` over ``n_repeats x n_dirs`` random unit
    directions ``u``.  If N != M the larger cloud is randomly subsampled to the smaller size.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) point clouds, got {tuple(a.shape)}, {tuple(b.shape)}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    n = min(a.shape[0], b.shape[0])
    if a.shape[0] > n:
        a = a[torch.randperm(a.shape[0], generator=gen)[:n].to(a.device)]
    if b.shape[0] > n:
        b = b[torch.randperm(b.shape[0], generator=gen)[:n].to(b.device)]
    results = []
    for _ in range(n_repeats):
        dirs = torch.randn(a.shape[1], n_dirs, generator=gen).to(device=a.device, dtype=a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa = torch.sort(a @ dirs, dim=0).values
        pb = torch.sort(b @ dirs, dim=0).values
        results.append((pa - pb).abs().mean())
    return torch.stack(results).mean()


def _poly_mmd2_unbiased(a: Tensor, b: Tensor) -> Tensor:
    """Unbiased MMD^2 with k(u, v) = (u.v / D + 1)^3 (float64)."""
    a, b = a.double(), b.double()
    d = a.shape[1]
    m, n = a.shape[0], b.shape[0]
    kaa = (a @ a.T / d + 1) ** 3
    kbb = (b @ b.T / d + 1) ** 3
    kab = (a @ b.T / d + 1) ** 3
    return (
        (kaa.sum() - kaa.diagonal().sum()) / (m * (m - 1))
        + (kbb.sum() - kbb.diagonal().sum()) / (n * (n - 1))
        - 2 * kab.mean()
    )


@dataclass(frozen=True)
class LevelScores:
    """Scores per pyramid level (``resolutions``: level heights, finest first; last = low-pass)."""

    resolutions: tuple[int, ...]
    per_level: Tensor  # (L,)

    @property
    def mean(self) -> Tensor:
        """Plain average over levels."""
        return self.per_level.mean()

    def __float__(self) -> float:
        return float(self.mean)

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}{r}": float(v) for r, v in zip(self.resolutions, self.per_level, strict=True)}
        out[f"{prefix}avg"] = float(self.mean)
        return out


class MultiScalePatchDistance:
    """Seeded multi-scale patch distances between two image sets (see the module docstring).

    Every call re-seeds its own ``torch.Generator`` from ``seed`` (patch positions, then projection
    directions and KID subsets from derived seeds), so repeated calls with equally sized inputs draw the
    same patch positions and directions: ``d(ref, A)`` and ``d(ref, B)`` use identical reference patches.
    """

    def __init__(
        self,
        min_size: int = 16,
        patch_size: int = 7,
        patches_per_image: int = 128,
        n_dirs: int = 128,
        n_repeats: int = 4,
        normalize: Normalize = "joint",
        kid_subsets: int = 10,
        kid_subset_size: int = 1000,
        swd_scale: float = 1e3,
        seed: int = 0,
    ) -> None:
        if normalize not in ("joint", "reference", "separate"):
            raise ValueError(f"normalize must be 'joint', 'reference' or 'separate', got {normalize!r}")
        if patch_size < 1 or patches_per_image < 1 or n_dirs < 1 or n_repeats < 1:
            raise ValueError("patch_size, patches_per_image, n_dirs and n_repeats must be positive")
        if (min_size + 1) // 2 < patch_size:
            raise ValueError(
                f"min_size={min_size} leaves a low-pass level smaller than the {patch_size}-px patches; "
                f"use min_size >= {2 * patch_size - 1}"
            )
        self.min_size = min_size
        self.patch_size = patch_size
        self.patches_per_image = patches_per_image
        self.n_dirs = n_dirs
        self.n_repeats = n_repeats
        self.normalize: Normalize = normalize
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.swd_scale = swd_scale
        self.seed = seed

    # ---------------------------------------------------------------------------------- descriptors
    def descriptors(self, images: Tensor, generator: torch.Generator) -> list[Tensor]:
        """Raw patch descriptors per level, each (B * patches_per_image, C, P, P)."""
        check_images(images, "images")
        pyramid = laplacian_pyramid(to_unit_range(images), self.min_size)
        return [_sample_patches(lv, self.patches_per_image, self.patch_size, generator) for lv in pyramid]

    def paired_descriptors(self, x: Tensor, ref: Tensor) -> tuple[tuple[int, ...], list[tuple[Tensor, Tensor]]]:
        """Standardised, flattened descriptors ``(d_x, d_ref)`` per level, plus the level resolutions."""
        check_images(x, "x")
        check_images(ref, "ref")
        if x.shape[1:] != ref.shape[1:]:
            raise ValueError(f"x and ref must share (C, H, W); got {tuple(x.shape[1:])} and {tuple(ref.shape[1:])}")
        gen = torch.Generator().manual_seed(self.seed)
        d_ref = self.descriptors(ref, gen)
        d_x = self.descriptors(x, gen)
        pairs = []
        for dx, dr in zip(d_x, d_ref, strict=True):
            if self.normalize == "joint":
                both = torch.cat([dx, dr], dim=0)
                pairs.append((_standardise(dx, both), _standardise(dr, both)))
            elif self.normalize == "reference":
                pairs.append((_standardise(dx, dr), _standardise(dr, dr)))
            else:
                pairs.append((_standardise(dx, dx), _standardise(dr, dr)))
        resolutions = tuple(int(lv.shape[-2]) for lv in laplacian_pyramid(ref[:1], self.min_size))
        return resolutions, pairs

    # ------------------------------------------------------------------------------------- distances
    def _swd(self, res: tuple[int, ...], pairs: list[tuple[Tensor, Tensor]]) -> LevelScores:
        gen = torch.Generator().manual_seed(self.seed + 1)
        vals = [sliced_wasserstein(a, b, self.n_dirs, self.n_repeats, gen) for a, b in pairs]
        return LevelScores(res, torch.stack(vals) * self.swd_scale)

    def _frechet(self, res: tuple[int, ...], pairs: list[tuple[Tensor, Tensor]]) -> LevelScores:
        vals = [frechet_distance(*feature_statistics(a), *feature_statistics(b)) for a, b in pairs]
        return LevelScores(res, torch.stack(vals))

    def _kid(self, res: tuple[int, ...], pairs: list[tuple[Tensor, Tensor]]) -> LevelScores:
        gen = torch.Generator().manual_seed(self.seed + 2)
        vals = []
        for a, b in pairs:
            m = min(self.kid_subset_size, a.shape[0], b.shape[0])
            if m < 2:
                raise ValueError("patch KID needs at least 2 patches per set")
            runs = []
            for _ in range(self.kid_subsets):
                ia = torch.randperm(a.shape[0], generator=gen)[:m].to(a.device)
                ib = torch.randperm(b.shape[0], generator=gen)[:m].to(b.device)
                runs.append(_poly_mmd2_unbiased(a[ia], b[ib]))
            vals.append(torch.stack(runs).mean())
        return LevelScores(res, torch.stack(vals))

    def swd(self, x: Tensor, ref: Tensor) -> LevelScores:
        """Multi-scale sliced Wasserstein distance (x ``swd_scale``, default 1e3) per level and averaged."""
        return self._swd(*self.paired_descriptors(x, ref))

    def frechet(self, x: Tensor, ref: Tensor) -> LevelScores:
        """Fréchet distance between the Gaussian fits of the standardised patch descriptors, per level."""
        return self._frechet(*self.paired_descriptors(x, ref))

    def kid(self, x: Tensor, ref: Tensor) -> LevelScores:
        """Unbiased polynomial-kernel MMD^2 (KID) of the standardised patch descriptors, per level."""
        return self._kid(*self.paired_descriptors(x, ref))

    def all(self, x: Tensor, ref: Tensor) -> dict[str, LevelScores]:
        """``{"swd", "frechet", "kid"}`` from one set of descriptors (same values as the single calls)."""
        res, pairs = self.paired_descriptors(x, ref)
        return {
            "swd": self._swd(res, pairs),
            "frechet": self._frechet(res, pairs),
            "kid": self._kid(res, pairs),
        }


def swd(x: Tensor, ref: Tensor, **kwargs: object) -> LevelScores:
    """Multi-scale SWD (x1e3) between image sets; kwargs configure :class:`MultiScalePatchDistance`."""
    return MultiScalePatchDistance(**kwargs).swd(x, ref)  # type: ignore[arg-type]


def patch_frechet_distance(x: Tensor, ref: Tensor, **kwargs: object) -> LevelScores:
    """Per-level Fréchet distance of Laplacian-pyramid patch descriptors (MultiScalePatchDistance)."""
    return MultiScalePatchDistance(**kwargs).frechet(x, ref)  # type: ignore[arg-type]


def patch_kid(x: Tensor, ref: Tensor, **kwargs: object) -> LevelScores:
    """Per-level KID (unbiased, cubic polynomial kernel) of Laplacian-pyramid patch descriptors."""
    return MultiScalePatchDistance(**kwargs).kid(x, ref)  # type: ignore[arg-type]
