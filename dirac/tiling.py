"""Any image size: exact pad/crop to a network multiple, and overlapping tiles with smooth blending.

Written here because no dependency does it for our case: ``F.unfold``/``F.fold`` cut and re-assemble the
tiles, einops names the (batch, tile) bookkeeping, and a separable ramp window blends overlaps so that seams
vanish: ``out = Σ_k w_k · f(tile_k) / Σ_k w_k`` with ``w_k > 0`` everywhere, which is exact for any ``f``
that commutes with translation and smooth otherwise. Memory is bounded by ``tile_batch`` tiles at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .degradations.base import check_generators

Box = tuple[int, int, int, int]
"""``(top, left, height, width)`` of the original image inside a padded one."""

TileFn = Callable[[Tensor, list[torch.Generator]], Tensor]
"""``f(tiles (N, C, h, w), one generator per tile) -> (N, C', h, w)``."""

TILE_ABOVE_PIXELS = 256 * 256
"""Images with more pixels than this run as tiles (when the degradation allows): below it one piece is faster."""
TILE_SIZE = 128
"""The default tile side (``sample.py`` and the pipeline)."""
MAX_UNTILED_PIXELS = 512 * 512
"""Largest image run in one piece when tiling is impossible: the network's attention at 1/4 resolution costs
memory quadratic in the pixel count (≈ 2 GB at 512², ≈ 17 GB at 1024²)."""


def needs_tiles(
    shape: Sequence[int], tile_size: int | None, shift_invariant: bool, kind: str = "this", above: int | None = None
) -> bool:
    """Whether an image of ``shape (…, H, W)`` runs as tiles: more than ``above`` pixels (default
    :data:`TILE_ABOVE_PIXELS`) and a shift-invariant degradation. Too large to run whole and untileable is refused."""
    h, w = shape[-2:]
    above = TILE_ABOVE_PIXELS if above is None else int(above)
    if tile_size is not None and h * w > above and max(h, w) > int(tile_size) and shift_invariant:
        return True
    if h * w > MAX_UNTILED_PIXELS:
        why = f"{kind} measurements cannot be tiled (the degradation depends on the position)"
        if shift_invariant and tile_size is None:
            why = "tiling is off (tile_size=None, or a recorded trajectory)"
        elif shift_invariant and max(h, w) <= int(tile_size):
            why = f"tile_size={tile_size} covers it whole (use a smaller tile_size, e.g. {TILE_SIZE})"
        elif shift_invariant:
            why = f"tile_above={above} pixels keeps it whole (lower tile_above)"
        raise ValueError(
            f"a {h}x{w} image is too large to reconstruct in one piece and {why}; crop or resize it to at most "
            f"{MAX_UNTILED_PIXELS} pixels"
        )
    return False


def tile_count(h: int, w: int, tile: int, overlap: int) -> int:
    """Number of tiles :func:`tiled_apply` cuts an ``h``×``w`` image into."""
    m = overlap // 2
    return tile_grid(h + 2 * m, tile, overlap)[0] * tile_grid(w + 2 * m, tile, overlap)[0]


def image_seeds(generator: torch.Generator | Sequence[torch.Generator] | None, n: int) -> list[int]:
    """One 62-bit seed per image: drawn from ``generator[i]`` (a list, one per image), in order from a single
    generator, or from torch's global RNG when ``generator`` is None."""
    if generator is not None and not isinstance(generator, torch.Generator):  # a list, or refused with the reason
        gens = check_generators(generator, n)
        return [int(torch.randint(0, 2**62, (1,), generator=g, device=g.device)) for g in gens]
    device = generator.device if generator is not None else "cpu"  # a CUDA generator draws on its own device
    return [int(s) for s in torch.randint(0, 2**62, (n,), generator=generator, device=device)]


def pad_sides(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """Reflect padding (no edge repeat), falling back to edge replication where an image is too small."""
    if top == bottom == left == right == 0:
        return x
    h, w = x.shape[-2:]
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, Box]:
    """Reflect-pad ``x`` on the bottom/right so both sides are multiples of ``multiple``; the box crops it back."""
    h, w = x.shape[-2:]
    return pad_sides(x, 0, -h % multiple, 0, -w % multiple), (0, 0, h, w)


def crop(x: Tensor, box: Box) -> Tensor:
    """Inverse of the padding: ``x[..., top:top+height, left:left+width]``."""
    top, left, h, w = box
    return x[..., top : top + h, left : left + w]


def blend_window(size: int, overlap: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Separable ramp ``(size, size)``: linear over ``overlap`` pixels at each edge, 1 inside, > 0 everywhere."""
    i = torch.arange(size, dtype=dtype)
    ramp = torch.minimum(i + 0.5, size - i - 0.5) / max(overlap, 1)
    w1 = ramp.clamp(max=1.0)
    return w1[:, None] * w1[None, :]


def tile_grid(length: int, tile: int, overlap: int) -> tuple[int, int]:
    """``(number of tiles, padded length)`` covering ``length`` with stride ``tile − overlap``."""
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must lie in [0, tile={tile}), got {overlap}")
    stride = tile - overlap
    n = max(1, -(-(length - tile) // stride) + 1)
    return n, tile + (n - 1) * stride


def child_seed(seed: int, index: int) -> int:
    """A 63-bit seed for the ``index``-th child of ``seed`` (splitmix64 mixing), stable across runs."""
    z = (seed + 0x9E3779B97F4A7C15 * (index + 1)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


def seeded_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One ``torch.Generator`` per seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def tiled_apply(fn: TileFn, x: Tensor, seeds: Sequence[int], tile: int, overlap: int, tile_batch: int = 4) -> Tensor:
    """Apply ``fn`` to overlapping ``tile``×``tile`` tiles of ``x (B, C, H, W)`` and blend them back.

    The image is reflect-padded by ``overlap // 2`` (so its border is not a tile border) and up to the tile
    grid; tile ``k`` of image ``b`` gets a generator seeded ``child_seed(seeds[b], k)``, so the result of an
    image does not depend on its batch. At most ``tile_batch`` tiles go through ``fn`` at once.
    """
    b, _, h, w = x.shape
    m = overlap // 2
    (ny, hp), (nx, wp) = tile_grid(h + 2 * m, tile, overlap), tile_grid(w + 2 * m, tile, overlap)
    padded = pad_sides(x, m, hp - h - m, m, wp - w - m)
    stride = tile - overlap
    cols = F.unfold(padded, kernel_size=tile, stride=stride)
    tiles = rearrange(cols, "b (c h w) n -> (b n) c h w", h=tile, w=tile)
    gens = seeded_generators([child_seed(int(seeds[i]), k) for i in range(b) for k in range(ny * nx)], device=x.device)
    outs = [fn(tiles[i : i + tile_batch], gens[i : i + tile_batch]) for i in range(0, len(tiles), tile_batch)]
    window = blend_window(tile, overlap, x.dtype).to(x.device)
    weighted = torch.cat(outs) * window
    c_out = weighted.shape[1]
    summed = F.fold(rearrange(weighted, "(b n) c h w -> b (c h w) n", b=b), (hp, wp), tile, stride=stride)
    norm = F.fold(
        rearrange(window.expand(ny * nx, 1, tile, tile), "n c h w -> 1 (c h w) n"), (hp, wp), tile, stride=stride
    )
    return crop(summed / norm, (m, m, h, w)).reshape(b, c_out, h, w)
