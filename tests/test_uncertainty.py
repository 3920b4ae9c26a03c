"""Uncertainty, perception and few-shot OT against closed forms on Gaussian toy problems (fast, CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from dirac.perception import GaussianOT, PerceptionControlled, gaussian_ot_matrix
from dirac.uncertainty import (
    coverage,
    entropy_power,
    eta,
    extract_patches,
    finite_sample_coverage,
    gaussian_coverage,
    gaussian_explained,
    gaussian_fit,
    hallucination,
    patch_entropy_power,
    renyi_half,
)
from dirac.uncertainty.plane import uncertainty_ratio


def random_spd(d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(d, d, generator=g, dtype=torch.float64)
    return scale * (m @ m.T / d + 0.2 * torch.eye(d, dtype=torch.float64))


def gaussian_images(n: int, cov: torch.Tensor, mean: torch.Tensor | None, seed: int, side: int) -> torch.Tensor:
    """``n`` single-patch images ``(n, 1, side, side)`` whose pixels are ``N(mean, cov)`` vectors."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cov.shape[0], generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    z = z + (0 if mean is None else mean)
    return z.reshape(n, 1, side, side)


def test_patches_are_rows_of_every_window():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float64).reshape(2, 3, 5, 5)
    v = extract_patches(x, 2)
    assert v.shape == (2 * 16, 12)
    assert torch.equal(v[0], x[0, :, :2, :2].reshape(-1))  # channel-major, then rows
    with pytest.raises(ValueError, match="patch"):
        extract_patches(x, 6)


def test_entropy_power_is_geometric_mean_and_scales_with_square():
    lam = torch.tensor([0.5, 2.0, 8.0], dtype=torch.float64)
    assert entropy_power(torch.diag(lam), ridge=0.0) == pytest.approx(2.0, rel=1e-9)
    cov = random_spd(16, 0)
    x = gaussian_images(3000, cov, None, 1, 4)
    n1 = patch_entropy_power(x, 4)
    assert n1 == pytest.approx(entropy_power(cov), rel=0.05)
    assert patch_entropy_power(3.0 * x, 4) == pytest.approx(9.0 * n1, rel=1e-6)


def test_renyi_half_matches_monte_carlo_and_vanishes_on_equal_gaussians():
    d = 3
    c1, c2 = random_spd(d, 1), random_spd(d, 2, 0.5)
    m1, m2 = torch.zeros(d, dtype=torch.float64), torch.tensor([0.5, -0.3, 0.2], dtype=torch.float64)
    p = torch.distributions.MultivariateNormal(m1, c1)
    q = torch.distributions.MultivariateNormal(m2, c2)
    x = p.sample((400_000,))
    mc = -2.0 * math.log(float(torch.exp(0.5 * (q.log_prob(x) - p.log_prob(x))).mean()))  # D_½ = −2 ln ∫√(pq)
    assert renyi_half(m1, c1, m2, c2, ridge=0.0) == pytest.approx(mc, rel=0.03)
    assert renyi_half(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-9)
    # 1-D closed form: Δμ²/(2(σ1²+σ2²)) + ln((σ1²+σ2²)/(2σ1σ2))
    one = renyi_half(torch.zeros(1), torch.eye(1), torch.ones(1), 4 * torch.eye(1), ridge=0.0)
    assert one == pytest.approx(1 / 10 + math.log(5 / 4), rel=1e-9)


def test_eta_runs_from_two_to_one():
    e = eta(torch.tensor([0.0, 0.1, 1.0, 10.0, 1e3]), d=1)
    assert float(e[0]) == pytest.approx(2.0) and float(e[-1]) == pytest.approx(1.0, abs=1e-3)
    assert bool((e[1:] < e[:-1]).all())
    x = 2.0 * math.exp(2 * 0.3 / 4)
    assert float(eta(0.3, 4)) == pytest.approx(x - math.sqrt((x - 1) ** 2 - 1), rel=1e-9)


def posterior_toy(n: int, k: int, seed: int = 0):
    """x ~ N(0, Σx) (16-dim, one 4×4 patch per image), y = x + σ n: exact Gaussian posterior samples."""
    d, sigma = 16, 0.7
    cx = random_spd(d, seed)
    x = gaussian_images(n, cx, None, seed + 1, 4).reshape(n, d)
    g = torch.Generator().manual_seed(seed + 2)
    y = x + sigma * torch.randn(n, d, generator=g, dtype=torch.float64)
    gain = cx @ torch.linalg.inv(cx + sigma**2 * torch.eye(d, dtype=torch.float64))
    cp = cx - gain @ cx
    mean = y @ gain.T
    z = torch.randn(n, k, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cp).T
    samples = mean[:, None] + z
    return x.reshape(n, 1, 4, 4), samples.reshape(n, k, 1, 4, 4), mean.reshape(n, 1, 4, 4), cp


@pytest.mark.parametrize("k", [2, 8])
def test_uncertainty_ratio_of_an_exact_posterior_sampler(k):
    x, samples, mean, cp = posterior_toy(4000, k)
    r = uncertainty_ratio(samples, x, patch=4)
    assert r["uncertainty_ratio_posterior_over_mmse"] == pytest.approx(2 / (1 + 1 / k), rel=0.05)
    assert r["factor_vs_exact_mmse"] == pytest.approx(2.0, rel=0.05)
    assert patch_entropy_power(mean - x, 4) == pytest.approx(entropy_power(cp), rel=0.05)  # N(X|Y)
    assert r["entropy_power_sample"] == pytest.approx(2 * entropy_power(cp), rel=0.05)


def test_coverage_of_an_oracle_gaussian_posterior_is_exact():
    x, samples, mean, cp = posterior_toy(6000, 8, seed=3)
    std = torch.diagonal(cp).sqrt().reshape(1, 1, 4, 4).expand_as(x)
    cov = coverage(mean, std, x, [1.0, 2.0, 3.0])
    n = x.numel()
    for k, c in cov.items():
        p = gaussian_coverage(k)
        assert abs(c - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-4, (k, c, p)
    # estimated from K = 8 samples: the Student-t expectation, not erf(k/√2)
    est = coverage(samples.mean(1), samples.std(1), x, [1.0, 2.0])
    for k, c in est.items():
        assert c == pytest.approx(finite_sample_coverage(k, 8), abs=0.01)
        assert c < gaussian_coverage(k) - 0.01
    _, unflagged, explained = hallucination(x - mean, std, k=2.0)
    assert unflagged == pytest.approx(1 - gaussian_coverage(2.0), abs=0.01)
    assert explained == pytest.approx(gaussian_explained(2.0), abs=0.02)


def test_ot_map_pushes_one_gaussian_to_the_other():
    d = 12
    cr, cc = random_spd(d, 4), random_spd(d, 5, 2.0)
    mr, mc = torch.full((d,), 0.3, dtype=torch.float64), torch.linspace(-1, 1, d, dtype=torch.float64)
    a = gaussian_ot_matrix(cr, cc, ridge=0.0)
    assert torch.allclose(a, a.T) and bool((torch.linalg.eigvalsh(a) > 0).all())
    assert torch.allclose(a @ cr @ a, cc, atol=1e-8)
    ot = GaussianOT(mr, mc, a, patch=1, keep_dc=False)
    v = torch.distributions.MultivariateNormal(mr, cr).sample((60_000,))
    m, c = gaussian_fit(ot.transport(v))
    assert torch.allclose(m, mc, atol=0.05) and torch.allclose(c, cc, atol=0.1 * float(cc.diagonal().max()))


def test_ot_map_is_the_identity_when_the_distributions_match():
    from conftest import smooth_images

    x = smooth_images(6, 3, 16)
    for keep_dc in (False, True):
        ot = GaussianOT.fit(x, x, patch=3, keep_dc=keep_dc)
        assert torch.allclose(ot(x), x, atol=1e-4)
    assert torch.allclose(GaussianOT.fit(x, x, 3, keep_dc=False).a, torch.eye(27, dtype=torch.float64), atol=1e-4)
    with pytest.raises(ValueError, match="refit"):
        ot(x[:, :1])


def test_perception_control_on_tikhonov_moves_patch_statistics_to_clean():
    from conftest import smooth_images

    from dirac.degradations import build_process
    from dirac.evaluation.restorers import TikhonovRestorer
    from dirac.uncertainty import patch_renyi_half

    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(24, 1, 16, 16, generator=g)
    clean = (0.6 * smooth_images(24, 1, 16) + 0.4 * coarse).clamp(0, 1)  # texture that blur removes
    process = build_process("blur", std_max=2.0)
    y = process.measure(clean, g)
    base = TikhonovRestorer(process, 1e-2)
    fit, test = slice(0, 12), slice(12, 24)
    ot = GaussianOT.fit(base(y[fit]).x, clean[fit], patch=3)  # in a real run the clean set is unpaired
    x0 = PerceptionControlled(base, ot, 0.0)(y[test]).x
    x1 = PerceptionControlled(base, ot, 1.0)(y[test]).x
    assert torch.equal(x0, base(y[test]).x)
    assert patch_renyi_half(x1, clean[test], 3) < 0.7 * patch_renyi_half(x0, clean[test], 3)
    assert abs(float(x1.std() - clean[test].std())) < abs(float(x0.std() - clean[test].std()))
    with pytest.raises(ValueError, match="alphas"):
        PerceptionControlled(base, ot, 1.5)
