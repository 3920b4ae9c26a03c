"""Tiling and padding: exact pad/crop, exact blending of pointwise maps, small seams for local maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dirac.degradations import GeometricNoiseSchedule
from dirac.models import Reconstructor, build_ncsnpp
from dirac.tiling import blend_window, child_seed, crop, pad_to_multiple, tile_grid, tiled_apply


@pytest.mark.parametrize("h, w, m", [(37, 50, 4), (32, 32, 8), (3, 5, 4), (1, 9, 16)])
def test_pad_to_multiple_crops_back_exactly(h, w, m):
    x = torch.rand(2, 3, h, w)
    padded, box = pad_to_multiple(x, m)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert torch.equal(crop(padded, box), x)


@pytest.mark.parametrize("length, tile, overlap", [(100, 32, 8), (32, 32, 8), (5, 32, 0), (257, 64, 16)])
def test_tile_grid_covers(length, tile, overlap):
    n, padded = tile_grid(length, tile, overlap)
    assert padded >= length and padded == tile + (n - 1) * (tile - overlap)
    assert n == 1 or tile + (n - 2) * (tile - overlap) < length  # no superfluous tile


def test_blend_window_is_positive_and_flat_inside():
    w = blend_window(32, 8)
    assert float(w.min()) > 0 and torch.equal(w[8:24, 8:24], torch.ones(16, 16))


def test_pointwise_maps_are_blended_exactly():
    x = torch.rand(2, 3, 70, 45)
    out = tiled_apply(lambda t, g: torch.sin(3 * t), x, [1, 2], tile=24, overlap=8, tile_batch=5)
    torch.testing.assert_close(out, torch.sin(3 * x), atol=1e-5, rtol=0)


def test_local_maps_have_small_seams_that_overlap_hides():
    """A 5x5 box filter (reflect borders): tiles with overlap match the whole-image result far better."""
    x = torch.rand(1, 3, 96, 96)

    def box(t, g):
        return F.avg_pool2d(F.pad(t, (2, 2, 2, 2), mode="reflect"), 5, stride=1)

    whole = box(x, None)
    seam_free = (tiled_apply(box, x, [0], tile=32, overlap=16) - whole).abs().mean()
    seamed = (tiled_apply(box, x, [0], tile=32, overlap=0) - whole).abs().mean()
    assert seam_free < 0.5 * seamed


def test_tile_noise_depends_only_on_the_image_seed():
    def noisy(t, gens):
        return t + torch.cat([torch.randn((1, *t.shape[1:]), generator=g) for g in gens])

    x = torch.rand(3, 1, 40, 40)
    both = tiled_apply(noisy, x, [7, 8, 9], tile=24, overlap=8, tile_batch=4)
    alone = tiled_apply(noisy, x[1:2], [8], tile=24, overlap=8, tile_batch=1)
    torch.testing.assert_close(both[1:2], alone)
    assert child_seed(8, 0) != child_seed(8, 1) != child_seed(9, 0)


def test_reconstructor_takes_any_size_by_reflect_padding():
    net = build_ncsnpp("tiny")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = Reconstructor(net, GeometricNoiseSchedule()).eval()
    y = torch.rand(2, 3, 13, 22)
    with torch.no_grad():
        out = model(y, 0.5)
        padded, box = pad_to_multiple(y, net.config.downsample_factor)
        direct = crop(net(padded, model.noise(torch.full((2,), 0.5))), box)
    assert out.shape == y.shape
    torch.testing.assert_close(out, direct)
