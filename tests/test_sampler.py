import pytest
import torch

from dirac.degradations import GaussianBlurProcess, IdentityProcess, SmoothInpaintingProcess
from dirac.sampling import (
    ErrorScaledGuidance,
    ReverseSampler,
    StdScaledGuidance,
    build_guidance,
    data_consistency,
    time_grid,
)
from tests.conftest import smooth_images

PROCS = [GaussianBlurProcess(0.3, 2.0), SmoothInpaintingProcess(0.0, 5.0), IdentityProcess()]


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.kind)
@pytest.mark.parametrize("step", ["euler", "ancestral", "deterministic"])
def test_oracle_recovers_x0_and_stays_at_noise_floor(proc, step):
    x0 = smooth_images(4, 3, 16)
    y = proc.measure(x0, torch.Generator().manual_seed(0))
    out = ReverseSampler(proc, steps=20, step=step)(lambda yt, t: x0, y, torch.Generator().manual_seed(1))
    assert torch.allclose(out.output, x0, atol=1e-6)
    assert out.nfe == 21 and out.data_consistency.shape == (21, 4)
    # data consistency of an exact x0 equals the measurement's noise level sigma_y
    assert torch.allclose(out.data_consistency, torch.full((21, 4), proc.sigma_y), rtol=0.08)


@pytest.mark.parametrize("proc", PROCS[:2], ids=lambda p: p.kind)
def test_ancestral_oracle_iterates_follow_the_sdp_marginal(proc):
    """y_t − A_t x0 has std sigma(t) at every step (exact for the ancestral step)."""
    x0 = smooth_images(8, 3, 32)  # 24k pixels per iterate
    y = proc.measure(x0, torch.Generator().manual_seed(0))
    out = ReverseSampler(proc, steps=25, step="ancestral")(
        lambda yt, t: x0, y, torch.Generator().manual_seed(2), record_iterates="all"
    )
    assert sorted(out.iterates) == list(range(26))
    for i, t in enumerate(out.t_grid):
        resid = out.iterates[i] - proc.degrade(x0, float(t))
        assert abs(resid.std().item() / proc.sigma(float(t)).item() - 1) < 0.03, (i, float(t))
        assert abs(resid.mean().item()) < 0.03 * proc.sigma(float(t)).item() + 1e-3


def test_euler_step_variance_differs_from_exact_marginal():
    """The Euler–Maruyama step is a discretisation: its iterate noise drifts above sigma(t) for coarse grids."""
    proc = GaussianBlurProcess(0.3, 2.0)
    x0 = smooth_images(8, 3, 32)
    y = proc.measure(x0, torch.Generator().manual_seed(0))
    out = ReverseSampler(proc, steps=5, step="euler")(
        lambda yt, t: x0, y, torch.Generator().manual_seed(3), record_iterates=[-1]
    )
    resid = out.iterates[5] - proc.degrade(x0, 0.0)
    assert resid.std() > 1.2 * proc.sigma(0.0)


def test_early_stopping_grid_and_outputs():
    proc = GaussianBlurProcess(0.3, 2.0)
    assert torch.allclose(time_grid(4, 0.5), torch.tensor([1.0, 0.75, 0.5], dtype=torch.float64))
    x0 = smooth_images(2, 3, 16)
    y = proc.measure(x0, torch.Generator().manual_seed(0))
    calls = []

    def model(yt, t):
        calls.append(t.clone())
        return x0

    one_shot = ReverseSampler(proc, steps=10, t_stop=1.0)(model, y)
    assert one_shot.nfe == 1 and torch.allclose(calls[0], torch.ones(2)) and one_shot.t_stop == 1.0
    calls.clear()
    out = ReverseSampler(proc, steps=10, t_stop=0.25, output="iterate")(model, y, record_x0=[0, 3])
    assert out.t_stop == pytest.approx(0.2) or out.t_stop == pytest.approx(0.3)
    assert out.nfe == len(out.t_grid) - 1 and sorted(out.x0_trajectory) == [0, 3]
    assert out.output.shape == y.shape and not torch.allclose(out.output, x0)  # the iterate is noisy
    with pytest.raises(ValueError, match="step type"):
        ReverseSampler(proc, step="heun")
    with pytest.raises(ValueError, match="NaN"):
        ReverseSampler(proc, steps=2)(model, torch.full_like(y, float("nan")))


def test_build_guidance_rejects_unknown_kinds_even_at_zero_strength():
    assert build_guidance("none", 1.0) is None and build_guidance("std", 0.0) is None
    assert isinstance(build_guidance("std", 0.5), StdScaledGuidance)
    assert isinstance(build_guidance("error", 1e3), ErrorScaledGuidance)
    for strength in (0.0, 0.5):
        with pytest.raises(ValueError, match="unknown guidance kind 'magic'"):
            build_guidance("magic", strength)


def test_no_grad_without_guidance():
    proc = GaussianBlurProcess(0.3, 2.0)
    x0 = smooth_images(2, 3, 16)
    grads = []

    def model(yt, t):
        grads.append(torch.is_grad_enabled())
        return 0.5 * yt + 0.5 * x0

    ReverseSampler(proc, steps=3)(model, proc.measure(x0))
    assert grads and not any(grads)


@pytest.mark.parametrize("guidance", [StdScaledGuidance(2.0), ErrorScaledGuidance(1000.0)], ids=["std", "error"])
@pytest.mark.parametrize("step", ["euler", "deterministic"])
def test_guidance_lowers_data_consistency_error(guidance, step):
    proc = GaussianBlurProcess(0.3, 2.0)
    g = torch.Generator().manual_seed(0)
    x0 = smooth_images(4, 3, 16)
    y = proc.measure(x0, g)
    delta = 0.1 * torch.randn(x0.shape, generator=g)

    def imperfect(yt, t):  # an oracle with a fixed perturbation that also leans on its input
        return 0.7 * x0 + 0.3 * yt + delta

    plain = ReverseSampler(proc, steps=20, step=step)(imperfect, y, torch.Generator().manual_seed(1))
    guided = ReverseSampler(proc, steps=20, step=step, guidance=guidance)(
        imperfect, y, torch.Generator().manual_seed(1)
    )
    dc_plain = data_consistency(proc, plain.output, y).mean()
    dc_guided = data_consistency(proc, guided.output, y).mean()
    assert dc_guided < dc_plain - 1e-4


def test_batched_equals_one_at_a_time_for_deterministic_step():
    proc = SmoothInpaintingProcess(0.0, 4.0)
    x0 = smooth_images(3, 3, 16)
    y = proc.measure(x0, torch.Generator().manual_seed(0))

    def model(yt, t):
        return 0.8 * yt + 0.2 * t.view(-1, 1, 1, 1)

    s = ReverseSampler(proc, steps=8, step="deterministic")
    batched = s(model, y).output
    single = torch.cat([s(model, y[i : i + 1]).output for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-6)
