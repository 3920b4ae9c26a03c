"""Tests of dirac.metrics: fidelity metrics, LPIPS, FID/KID and the weight converter.

No pretrained weights exist here: LPIPS and FID are checked with random stand-in weights written to a tmp
directory in the same file formats the real loaders read.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dirac.metrics import (
    FID,
    KID,
    LPIPS,
    FIDInceptionV3,
    convert_pth_to_safetensors,
    feature_statistics,
    frechet_distance,
    load_fid_inception,
    load_lpips,
    mse,
    normalize_channels,
    psnr,
    ssim,
    ssim_window,
)
from dirac.metrics.convert_weights import main as convert_main


def _rand(*shape: int, seed: int = 0) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- fidelity
def test_fidelity_shapes_and_formulas() -> None:
    x = _rand(4, 3, 16, 16)
    y = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    m, p, s = mse(x, y), psnr(x, y), ssim(x, y)
    assert m.shape == p.shape == s.shape == (4,)
    torch.testing.assert_close(m, (x - y).square().mean(dim=(1, 2, 3)))
    torch.testing.assert_close(p, -10 * torch.log10(m))
    assert torch.isinf(psnr(x, x)).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(4))
    assert (s < 1).all()
    # more noise -> lower SSIM and PSNR
    y2 = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert (ssim(x, y2) < s).all() and (psnr(x, y2) < p).all()


def test_fidelity_clamps_inputs() -> None:
    x, y = _rand(2, 1, 12, 12), _rand(2, 1, 12, 12, seed=1)
    x_out = x * 1.6 - 0.3  # values outside [0, 1]
    for f in (mse, psnr, ssim):
        torch.testing.assert_close(f(x_out, y), f(x_out.clamp(0, 1), y))


def test_ssim_matches_scikit_image_on_64px() -> None:
    skm = pytest.importorskip("skimage.metrics")
    x = _rand(1, 3, 64, 64)
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    ref = skm.structural_similarity(
        x[0].permute(1, 2, 0).numpy(),
        y[0].permute(1, 2, 0).numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=2,
    )
    # torchmetrics reflect-pads instead of cropping the border; the interior maps agree to 1e-5.
    assert abs(float(ssim(x, y)) - float(ref)) < 2e-3


@pytest.mark.parametrize("size", [3, 5, 8, 10, 11, 16])
def test_ssim_tiny_images(size: int) -> None:
    k, sigma = ssim_window(size, size)
    assert k % 2 == 1 and k <= min(size, 11)
    # torchmetrics derives the Gaussian window size from sigma; our sigma must give back exactly k
    assert int(3.5 * sigma + 0.5) * 2 + 1 == k
    x = _rand(2, 3, size, size)
    y = (0.8 * x + 0.1).clamp(0, 1)
    s = ssim(x, y)
    assert s.shape == (2,) and torch.isfinite(s).all() and (s < 1).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(2))


def test_ssim_window_standard_and_too_small() -> None:
    assert ssim_window(32, 64) == (11, 1.5)
    assert ssim_window(8, 40) == (7, 1.5 * 7 / 11)
    with pytest.raises(ValueError, match="at least 3x3"):
        ssim(_rand(1, 1, 2, 8), _rand(1, 1, 2, 8))


def test_fidelity_input_errors() -> None:
    x = _rand(2, 3, 8, 8)
    for f in (mse, psnr, ssim):
        with pytest.raises(ValueError, match="shape mismatch"):
            f(x, _rand(2, 3, 8, 9))
        with pytest.raises(ValueError, match="4-D"):
            f(x[0], x[0])
        bad = x.clone()
        bad[1, 0, 0, 0] = float("nan")
        with pytest.raises(ValueError, match="NaN"):
            f(bad, x)
        with pytest.raises(ValueError, match="floating"):
            f((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


# ---------------------------------------------------------------------------------------------- LPIPS
def _write_lpips_standins(net: str, directory: Path, seed: int = 0) -> LPIPS:
    """Random stand-in LPIPS weights in the converted-file layout; returns the reference module."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LPIPS(net)  # type: ignore[arg-type]
    with torch.no_grad():
        for lin in model.lins:
            lin.model[1].weight.abs_()  # LPIPS linear weights are non-negative
    backbone = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    backbone["classifier.1.weight"] = torch.zeros(2, 2)  # an unused head must be ignored
    names = {"alex": ("alexnet_backbone", "lpips_alex_lin"), "vgg": ("vgg16_backbone", "lpips_vgg_lin")}[net]
    save_file(backbone, str(directory / f"{names[0]}.safetensors"))
    lins = {f"lin{i}.model.1.weight": lin.model[1].weight.contiguous() for i, lin in enumerate(model.lins)}
    save_file(lins, str(directory / f"{names[1]}.safetensors"))
    return model


def test_lpips_parameter_names_match_standard_files() -> None:
    alex = LPIPS("alex")
    keys = set(alex.net.state_dict())
    assert keys == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}
    assert alex.net.state_dict()["features.0.weight"].shape == (64, 3, 11, 11)
    vgg_keys = set(LPIPS("vgg").net.state_dict())
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    assert vgg_keys == {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    lin_keys = {k for k in alex.state_dict() if k.startswith("lin")}
    assert lin_keys == {f"lin{i}.model.1.weight" for i in range(5)}
    assert alex.state_dict()["lin2.model.1.weight"].shape == (1, 384, 1, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loader_round_trip_and_properties(tmp_path: Path, net: str) -> None:
    ref_model = _write_lpips_standins(net, tmp_path)
    model = load_lpips(net, tmp_path)  # type: ignore[arg-type]
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for (k, v), (k2, v2) in zip(model.state_dict().items(), ref_model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    x, y = _rand(3, 3, 32, 32), _rand(3, 3, 32, 32, seed=1)
    d = model(x, y)
    assert d.shape == (3,) and (d > 0).all()
    torch.testing.assert_close(model(x, x), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(model(y, x), d)
    total, terms = model(x, y, per_layer=True)
    assert len(terms) == 5
    torch.testing.assert_close(total, torch.stack(terms).sum(0))
    # grey images are treated as 3 equal channels
    g1, g2 = x[:, :1], y[:, :1]
    torch.testing.assert_close(model(g1, g2), model(g1.expand(-1, 3, -1, -1), g2.expand(-1, 3, -1, -1)))
    # usable as a loss: gradients reach the input although the weights are frozen
    xg = x.clone().requires_grad_(True)
    model(xg, y).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


def test_lpips_normalisation_is_invariant_to_positive_pixel_scaling() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 16, 5, 7, generator=g)
    a = torch.rand(2, 1, 5, 7, generator=g) * 10 + 0.1  # positive, different for every pixel
    n = normalize_channels(f)
    torch.testing.assert_close(normalize_channels(a * f), n, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(n.norm(dim=1), torch.ones(2, 5, 7))
    # hence the LPIPS term of a layer, sum_c w_c (n(f1) - n(f2))^2, ignores such rescalings of either input
    f2 = torch.randn(2, 16, 5, 7, generator=g)
    w = torch.rand(16, generator=g).view(1, 16, 1, 1)
    term = (w * (normalize_channels(f) - normalize_channels(f2)) ** 2).sum(1).mean()
    diff_scaled = normalize_channels(a * f) - normalize_channels(2 * a.flip(-1) * f2)
    term_scaled = (w * diff_scaled**2).sum(1).mean()
    torch.testing.assert_close(term_scaled, term)


def test_lpips_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_lpips("alex", tmp_path)
    msg = str(err.value)
    for needle in (
        "alexnet_backbone.safetensors",
        "lpips_alex_lin.safetensors",
        "alexnet-owt-7be5be79.pth",
        "alex.pth",
        "python -m dirac.metrics.convert_weights",
        "--keep features.",
    ):
        assert needle in msg
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        load_lpips("vgg", tmp_path)


def test_lpips_wrong_weights_and_small_images(tmp_path: Path) -> None:
    _write_lpips_standins("alex", tmp_path)
    (tmp_path / "alexnet_backbone.safetensors").rename(tmp_path / "x.safetensors")
    save_file({"features.0.weight": torch.zeros(1)}, str(tmp_path / "alexnet_backbone.safetensors"))
    with pytest.raises(ValueError, match="missing keys"):
        load_lpips("alex", tmp_path)
    model = LPIPS("alex")
    with pytest.raises(ValueError, match="at least 31 px"):
        model(_rand(1, 3, 24, 24), _rand(1, 3, 24, 24))
    with pytest.raises(ValueError, match="C in"):
        model(_rand(1, 2, 32, 32), _rand(1, 2, 32, 32))


# ------------------------------------------------------------------------------------------ converter
def test_convert_weights_cli_and_loader(tmp_path: Path) -> None:
    ref_model = _write_lpips_standins("alex", tmp_path)
    # rebuild the standard .pth layouts from the stand-ins, then convert them back with the CLI
    backbone = {**ref_model.net.state_dict(), "classifier.1.weight": torch.ones(3, 3)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in backbone.items()}}, tmp_path / "alexnet.pth")
    lins = {k: v for k, v in ref_model.state_dict().items() if k.startswith("lin")}
    torch.save(lins, tmp_path / "alex.pth")
    out = tmp_path / "converted"
    assert (
        convert_main([str(tmp_path / "alexnet.pth"), str(out / "alexnet_backbone.safetensors"), "--keep", "features."])
        == 0
    )
    keys = convert_pth_to_safetensors(tmp_path / "alex.pth", out / "lpips_alex_lin.safetensors")
    assert sorted(keys) == sorted(lins)
    written = load_file(str(out / "alexnet_backbone.safetensors"))
    assert set(written) == set(ref_model.net.state_dict())
    model = load_lpips("alex", out)
    for k, v in ref_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


class _NotAWeight:
    pass


def test_convert_weights_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2), "obj": _NotAWeight()}, tmp_path / "evil.pth")
    with pytest.raises(pickle.UnpicklingError):
        convert_pth_to_safetensors(tmp_path / "evil.pth", tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


# ------------------------------------------------------------------------------------ Fréchet / FID
def test_frechet_distance_diagonal_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(2, 6, generator=g, dtype=torch.float64)
    s1, s2 = torch.rand(2, 6, generator=g, dtype=torch.float64) + 0.1
    expected = (mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum()
    got = frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert got.dtype == torch.float64
    assert math.isclose(float(got), float(expected), rel_tol=1e-10)
    assert float(frechet_distance(mu1, torch.diag(s1), mu1, torch.diag(s1))) == pytest.approx(0, abs=1e-10)


def test_frechet_distance_full_covariance_vs_scipy() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(5, dtype=torch.float64), b @ b.T
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    covmean = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2)) - 2 * np.trace(covmean)
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(expected, rel=1e-8)
    assert float(frechet_distance(mu2, s2, mu1, s1)) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="expected mu"):
        frechet_distance(mu1, s1, mu2[:4], s2)


def test_feature_statistics_matches_numpy() -> None:
    f = torch.randn(50, 4, generator=torch.Generator().manual_seed(2))
    mu, cov = feature_statistics(f)
    np.testing.assert_allclose(mu.numpy(), f.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(f.double().numpy(), rowvar=False), rtol=1e-10)


class _TinyFeatures(nn.Module):
    """Random stand-in feature network: (B, 3, H, W) -> (B, 8)."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 8, kernel_size=3)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(x)).mean(dim=(2, 3))


def test_fid_helper_with_custom_feature_module() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    a, b = _rand(64, 3, 12, 12, seed=10), _rand(64, 3, 12, 12, seed=11)
    feat = _TinyFeatures()
    fid = FID(feat)
    fid.update(a, real=True)
    fid.update(a, real=False)
    assert float(fid.compute()) == pytest.approx(0.0, abs=1e-6)
    fid.reset()
    fid.update(a, real=True)
    fid.update(b, real=False)
    d_same_dist = float(fid.compute())
    fid.reset()
    fid.update(a, real=True)
    fid.update((0.6 * b + 0.4).clamp(0, 1), real=False)
    d_shifted = float(fid.compute())
    assert d_shifted > 10 * d_same_dist > 0
    # our stable square root agrees with torchmetrics' own eigvals-based formula
    assert float(FrechetInceptionDistance.compute(fid)) == pytest.approx(d_shifted, rel=1e-4)
    # and with the Fréchet distance of directly computed feature statistics
    with torch.no_grad():
        stats_a, stats_b = feature_statistics(feat(a)), feature_statistics(feat((0.6 * b + 0.4).clamp(0, 1)))
    direct = frechet_distance(*stats_a, *stats_b)
    assert float(direct) == pytest.approx(d_shifted, rel=1e-4)
    with pytest.raises(ValueError, match="num_features"):
        FID(nn.Conv2d(3, 8, 3))


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_helper_with_custom_feature_module() -> None:
    torch.manual_seed(0)  # torchmetrics draws KID subsets from the global RNG (reseeded here on purpose)
    a, b = _rand(48, 3, 12, 12, seed=10), _rand(48, 3, 12, 12, seed=11)
    kid = KID(_TinyFeatures(), subsets=5, subset_size=32)
    kid.update(a, real=True)
    kid.update(b, real=False)
    same_dist, _ = kid.compute()
    kid.reset()
    kid.update(a, real=True)
    kid.update((0.6 * b + 0.4).clamp(0, 1), real=False)
    shifted, _ = kid.compute()
    assert abs(float(same_dist)) < float(shifted)


def test_fid_inception_definition_shape_and_names(tmp_path: Path) -> None:
    model = FIDInceptionV3()
    sd = model.state_dict()
    # torchvision / pytorch-fid parameter names and the exact parameter count of Inception-v3 without heads
    assert sum(p.numel() for p in model.parameters()) == 21_785_568
    expected_shapes = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7c.branch3x3dbl_3b.bn.running_var": (384,),
    }
    for key, shape in expected_shapes.items():
        assert tuple(sd[key].shape) == shape
    with torch.no_grad():
        feats = model(_rand(1, 3, 40, 40))  # resized to 299 x 299 inside
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all()
    # loader round trip: an extra fc head (as in pt_inception-*.pth) and missing num_batches_tracked are fine
    weights = {k: v.contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    weights["Conv2d_1a_3x3.bn.running_mean"] = torch.full((32,), 0.25)
    weights["fc.weight"], weights["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    save_file(weights, str(tmp_path / "fid_inception_v3.safetensors"))
    loaded = load_fid_inception(tmp_path)
    assert torch.equal(loaded.Conv2d_1a_3x3.bn.running_mean, torch.full((32,), 0.25))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_fid_inception_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_fid_inception(tmp_path)
    msg = str(err.value)
    for needle in (
        "fid_inception_v3.safetensors",
        "pt_inception-2015-12-05-6726825d.pth",
        "python -m dirac.metrics.convert_weights",
    ):
        assert needle in msg
