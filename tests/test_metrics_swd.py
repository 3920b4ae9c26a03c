"""Tests of the offline multi-scale patch distances (dirac.metrics.swd) on scikit-image photographs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from dirac.metrics import (
    MultiScalePatchDistance,
    laplacian_pyramid,
    patch_frechet_distance,
    patch_kid,
    reconstruct_laplacian_pyramid,
    sliced_wasserstein,
    swd,
)

skdata = pytest.importorskip("skimage.data")


def _gaussian_blur(x: Tensor, std: float) -> Tensor:
    """Separable Gaussian blur with reflect borders (test-local, independent of dirac.degradations)."""
    r = int(3 * std + 0.5)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * std**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@pytest.fixture(scope="module")
def crop_sets() -> dict[str, Tensor]:
    """Non-overlapping 32x32 crops of 4 photographs downscaled 4x, split in a checkerboard into a reference
    set and a disjoint "other" set (24 crops each); plus blurred and noisy versions of the other set."""
    crops = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        img = torch.from_numpy(getattr(skdata, name)()).float().div(255).permute(2, 0, 1)[None]
        img = F.avg_pool2d(img, 4)
        _, _, h, w = img.shape
        corners = [(y, x) for y in range(0, h - 31, 32) for x in range(0, w - 31, 32)]
        crops += [img[..., y : y + 32, x : x + 32] for y, x in corners]
    all_crops = torch.cat(crops)
    ref, other = all_crops[0::2][:24], all_crops[1::2][:24]
    noise = torch.randn(other.shape, generator=torch.Generator().manual_seed(123))
    return {
        "ref": ref,
        "clean": other,
        "blurred": _gaussian_blur(other, 1.5),
        "noisy": (other + 0.05 * noise).clamp(0, 1),
    }


def test_laplacian_pyramid_levels_and_reconstruction() -> None:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    levels = laplacian_pyramid(x, min_size=16)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8]
    torch.testing.assert_close(reconstruct_laplacian_pyramid(levels), x)
    flat = laplacian_pyramid(torch.full((1, 1, 32, 32), 0.3))
    assert all(lv.abs().max() < 1e-6 for lv in flat[:-1])
    torch.testing.assert_close(flat[-1], torch.full((1, 1, 8, 8), 0.3))
    odd = torch.rand(1, 1, 37, 45)
    torch.testing.assert_close(reconstruct_laplacian_pyramid(laplacian_pyramid(odd)), odd)
    with pytest.raises(ValueError, match="smaller than min_size"):
        laplacian_pyramid(torch.rand(1, 3, 12, 12), min_size=16)


def test_sliced_wasserstein_basics() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 1, generator=g)
    # in 1-D every direction is +-1, so SWD = W1, and a shift by 0.3 moves every quantile by 0.3
    assert float(sliced_wasserstein(a, a + 0.3, n_dirs=8, n_repeats=2)) == pytest.approx(0.3, rel=1e-5)
    b = torch.randn(400, 5, generator=g)
    assert float(sliced_wasserstein(b, b)) == 0.0
    assert float(sliced_wasserstein(b, b + 1.0)) > float(sliced_wasserstein(b, b + 0.1)) > 0
    assert sliced_wasserstein(b, b[:300] + 0.1).shape == ()  # unequal sizes: subsampled


def test_patch_distances_seeded_and_validated(crop_sets: dict[str, Tensor]) -> None:
    ref, clean = crop_sets["ref"][:8], crop_sets["clean"][:8]
    m = MultiScalePatchDistance(patches_per_image=32, n_dirs=64, kid_subsets=2, kid_subset_size=100)
    r1 = m.all(clean, ref)
    r2 = m.all(clean, ref)
    assert r1["swd"].resolutions == (32, 16, 8)
    for key in ("swd", "frechet", "kid"):
        assert r1[key].per_level.shape == (3,)
        torch.testing.assert_close(r1[key].per_level, r2[key].per_level)
    torch.testing.assert_close(m.swd(clean, ref).per_level, r1["swd"].per_level)
    other_seed = MultiScalePatchDistance(patches_per_image=32, n_dirs=64, seed=1).swd(clean, ref)
    assert not torch.equal(other_seed.per_level, r1["swd"].per_level)
    assert set(r1["swd"].as_dict("swd_")) == {"swd_32", "swd_16", "swd_8", "swd_avg"}
    with pytest.raises(ValueError, match="share"):
        m.swd(clean[:, :1], ref)
    with pytest.raises(ValueError, match="min_size"):
        MultiScalePatchDistance(min_size=8)
    with pytest.raises(ValueError, match="NaN"):
        m.swd(torch.full_like(clean, float("nan")), ref)


def test_swd_ranks_clean_above_blurred_and_noisy(crop_sets: dict[str, Tensor]) -> None:
    ref = crop_sets["ref"]
    scores = {k: swd(crop_sets[k], ref) for k in ("clean", "blurred", "noisy")}
    assert float(scores["clean"]) < float(scores["blurred"])
    assert float(scores["clean"]) < float(scores["noisy"])
    # the finest band carries the difference most clearly
    fine = {k: float(v.per_level[0]) for k, v in scores.items()}
    assert 2 * fine["clean"] < fine["blurred"] and 2 * fine["clean"] < fine["noisy"]


def test_patch_frechet_ranks_clean_above_blurred_and_noisy(crop_sets: dict[str, Tensor]) -> None:
    ref = crop_sets["ref"]
    scores = {k: patch_frechet_distance(crop_sets[k], ref) for k in ("clean", "blurred", "noisy")}
    assert float(scores["clean"]) < float(scores["blurred"])
    assert float(scores["clean"]) < float(scores["noisy"])
    fine = {k: float(v.per_level[0]) for k, v in scores.items()}
    assert 2 * fine["clean"] < fine["blurred"] and 2 * fine["clean"] < fine["noisy"]


def test_patch_kid_ranks_clean_above_blurred(crop_sets: dict[str, Tensor]) -> None:
    ref = crop_sets["ref"]
    kw = {"kid_subsets": 4, "kid_subset_size": 500}
    clean = patch_kid(crop_sets["clean"], ref, **kw)
    blurred = patch_kid(crop_sets["blurred"], ref, **kw)
    assert float(clean) < float(blurred)
    assert float(clean.per_level[0]) < float(blurred.per_level[0])
    same = patch_kid(ref, ref, **kw)  # different random patches of the same images: unbiased, ~0
    assert abs(float(same.per_level[0])) < float(clean.per_level[0]) + 1e-3
