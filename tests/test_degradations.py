import json
import math

import pytest
import torch

from dirac.degradations import (
    GaussianBlurProcess,
    GeometricNoiseSchedule,
    IdentityProcess,
    SeveritySchedule,
    SmoothInpaintingProcess,
    process_from_dict,
)
from tests.conftest import smooth_images

PROCESSES = [
    GaussianBlurProcess(0.3, 2.0),
    GaussianBlurProcess(0.0, 3.0, kernel_size=61),  # kernel larger than the image: capped to fit
    SmoothInpaintingProcess(0.0, 4.0),
    IdentityProcess(),
]


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: f"{p.kind}-{p.params()}")
@pytest.mark.parametrize("channels", [1, 3])
def test_adjoint_identity(proc, channels, gen):
    """<A x, y> = <x, A^T y> for every process, per-sample t."""
    x = torch.randn(3, channels, 12, 10, generator=gen, dtype=torch.float64)
    y = torch.randn(3, channels, 12, 10, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    lhs = (proc.degrade(x, t) * y).sum()
    rhs = (x * proc.adjoint(y, t)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: p.kind)
def test_per_sample_t_matches_one_at_a_time(proc, gen):
    x = torch.rand(4, 3, 16, 16, generator=gen)
    t = torch.tensor([0.05, 0.3, 0.7, 1.0])
    batched = proc.degrade(x, t)
    single = torch.cat([proc.degrade(x[i : i + 1], float(t[i])) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-6)
    adj = proc.adjoint(x, t)
    adj1 = torch.cat([proc.adjoint(x[i : i + 1], float(t[i])) for i in range(4)])
    assert torch.allclose(adj, adj1, atol=1e-6)


def test_blur_composition_away_from_borders():
    """Blur std a then std b equals one blur of std sqrt(a^2 + b^2) away from the borders."""
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    blur = GaussianBlurProcess(0.0, 3.0, kernel_size=25)
    a, b = torch.full((2,), 1.2), torch.full((2,), 1.6)
    twice = blur.apply(blur.apply(x, a), b)
    once = blur.apply(x, torch.full((2,), math.hypot(1.2, 1.6)))
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    assert (twice[inner] - once[inner]).abs().max() < 1e-4
    # and it is a real blur, not the identity
    assert (once[inner] - x[inner]).abs().max() > 0.1


def test_blur_identity_and_imperceptible_at_t0():
    x = smooth_images(2, 3, 16)
    exact = GaussianBlurProcess(0.0, 2.0)
    assert torch.allclose(exact.degrade(x, 0.0), x, atol=1e-6)
    paper = GaussianBlurProcess(0.3, 2.0)
    assert (paper.degrade(x, 0.0) - x).abs().max() < 0.02  # std 0.3: imperceptible
    assert (paper.degrade(x, 1.0) - x).abs().max() > 0.05


def test_blur_keeps_constants_and_severity_is_monotone():
    blur = GaussianBlurProcess(0.3, 3.0)
    const = torch.full((2, 3, 16, 16), 0.37)
    assert torch.allclose(blur.degrade(const, torch.tensor([0.2, 1.0])), const, atol=1e-6)
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    prev = None
    for t in torch.linspace(0, 1, 6):
        y = blur.degrade(x, float(t))
        dev = (y - x).pow(2).mean()
        if prev is not None:
            assert dev >= prev
        prev = dev


def test_mask_monotone_and_identity_at_t0():
    proc = SmoothInpaintingProcess(0.0, 5.0, power=4)
    x = torch.ones(1, 1, 20, 20)
    assert torch.equal(proc.degrade(x, 0.0), x)  # m_0 ≡ 1
    ts = torch.linspace(0, 1, 11)
    masks = torch.stack([proc.degrade(x, float(t))[0, 0] for t in ts])
    assert ((masks[1:] - masks[:-1]) <= 1e-7).all()  # m_t <= m_t' for t > t'
    m1 = masks[-1]
    assert m1.min() < 0.01 and m1[0, 0] > 0.5  # centre hidden, corners visible
    assert torch.allclose(m1, m1.flip(0)) and torch.allclose(m1, m1.flip(1))  # centred


def test_noise_schedule_endpoints_and_geometric():
    noise = GeometricNoiseSchedule(0.01, 0.05)
    t = torch.tensor([0.0, 0.5, 1.0])
    s = noise(t)
    assert torch.allclose(s, torch.tensor([0.01, math.sqrt(0.01 * 0.05), 0.05]))
    with pytest.raises(ValueError, match="sigma_min"):
        GeometricNoiseSchedule(0.0, 0.05)


def test_forward_sample_statistics(gen):
    proc = GaussianBlurProcess(0.3, 2.0)
    x = smooth_images(8, 3, 32)
    t = torch.full((8,), 0.5)
    y = proc.sample(x, t, gen)
    resid = y - proc.degrade(x, t)
    assert abs(resid.std().item() / proc.sigma(0.5).item() - 1) < 0.05


def test_bad_inputs_have_clear_errors():
    proc = GaussianBlurProcess(0.3, 2.0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        proc.degrade(torch.rand(3, 16, 16), 0.5)
    with pytest.raises(ValueError, match="shape"):
        proc.degrade(torch.rand(2, 3, 16, 16), torch.rand(3))
    with pytest.raises(TypeError, match="floating"):
        proc.degrade(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0.5)
    with pytest.raises(ValueError, match="odd"):
        GaussianBlurProcess(0.3, 2.0, kernel_size=8)
    with pytest.raises(ValueError, match="non-decreasing"):
        SeveritySchedule([0, 1], [2.0, 1.0])


def test_process_json_round_trip():
    sched = SeveritySchedule([0, 0.5, 1], [0.3, 1.5, 2.0], kind="greedy")
    proc = GaussianBlurProcess(0.3, 2.0, noise=GeometricNoiseSchedule(0.02, 0.04), schedule=sched)
    back = process_from_dict(json.loads(json.dumps(proc.to_dict())))
    assert isinstance(back, GaussianBlurProcess)
    assert back.schedule == sched and back.params() == proc.params()
    x = smooth_images(2, 3, 16)
    assert torch.equal(back.degrade(x, 0.3), proc.degrade(x, 0.3))
    assert float(back.sigma(1.0)) == pytest.approx(0.04)
