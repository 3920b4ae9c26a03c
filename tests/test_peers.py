"""Peers on the same operators: exact SVDs, the Wiener closed form, and the diffusion peers (DDRM, DiffPIR, DPS)
with an oracle Gaussian prior whose posterior is known in closed form, plus a tiny NCSN++ prior end to end."""

from __future__ import annotations

import pytest
import torch

from dirac.baselines.ddrm import ddrm
from dirac.baselines.diffpir import data_proximal, diffpir
from dirac.baselines.dps import dps
from dirac.baselines.prior import sigma_grid
from dirac.baselines.spectral import spectral_operator
from dirac.baselines.wiener import wiener
from dirac.degradations import DegradationProcess, GaussianBlurProcess, build_process
from dirac.degradations.noise import GeometricNoiseSchedule
from dirac.degradations.severity import SeveritySchedule
from dirac.evaluation.methods import METHODS, Resources
from dirac.evaluation.runner import run_restorer
from dirac.evaluation.tuning import tune
from dirac.metrics import psnr
from dirac.models import Reconstructor, build_ncsnpp
from tests.conftest import smooth_images

BLUR = GaussianBlurProcess(0.3, 1.5, noise=GeometricNoiseSchedule(0.01, 0.05))
MASK = build_process("inpaint", width_min=0.0, width_max=2.0, power=4.0)


def dense(process: DegradationProcess, shape: tuple[int, int, int]) -> torch.Tensor:
    """The matrix of ``A_1`` (n × n) built column by column from the process itself."""
    n = shape[0] * shape[1] * shape[2]
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return process.degrade(basis, 1.0).reshape(n, n).T


@pytest.mark.parametrize("process", [BLUR, MASK], ids=["blur", "mask"])
def test_spectral_operator_is_the_dense_operator_and_its_svd(process):
    shape = (2, 7, 9)
    a = dense(process, shape)
    spec = spectral_operator(process, shape)
    x = torch.rand(3, *shape, dtype=torch.float64)
    y = torch.rand(3, *shape, dtype=torch.float64)
    flat = x.flatten(1)
    assert torch.allclose(spec.forward(x.float()).double().flatten(1), flat @ a.T, atol=1e-5)
    assert torch.allclose(spec.adjoint(y.float()).double().flatten(1), y.flatten(1) @ a, atol=1e-5)
    s_dense = torch.linalg.svdvals(a)
    s_spec = spec.s.expand(*shape).flatten().double().sort(descending=True).values
    assert torch.allclose(s_spec, s_dense, atol=1e-5)
    z = torch.rand(2, *shape)  # the bases are orthogonal: V^T V = I
    assert torch.allclose(spec.v_(spec.vt(z)), z, atol=1e-5) and torch.allclose(spec.u_(spec.ut(z)), z, atol=1e-5)


class Transpose(DegradationProcess):
    """A permutation (X -> X^T) that is neither diagonal nor separable."""

    kind = "transpose"

    def __init__(self):
        super().__init__(GeometricNoiseSchedule(), SeveritySchedule.linear(0.0, 1.0))

    def apply(self, x, severity):
        return x.transpose(-1, -2)

    def apply_adjoint(self, y, severity):
        return y.transpose(-1, -2)


def test_operator_without_exact_svd_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="neither diagonal nor separable.*DPS"):
        spectral_operator(Transpose(), (1, 5, 5))


@pytest.mark.parametrize("process", [BLUR, MASK], ids=["blur", "mask"])
def test_wiener_matches_its_closed_form(process):
    shape, k = (1, 6, 7), 0.03
    a = dense(process, shape)
    y = process.measure(smooth_images(2, 1, 7, seed=1)[..., :6, :], torch.Generator().manual_seed(0)).double()
    ones = torch.ones(int(a.shape[0]), dtype=torch.float64)
    a1 = a @ ones
    x_hat = wiener(spectral_operator(process, shape), y.float(), k).double().flatten(1)
    for i, yi in enumerate(y.flatten(1)):
        mu = (a1 @ yi) / (a1 @ a1)
        ref = mu + torch.linalg.solve(a.T @ a + k * torch.eye(len(a), dtype=a.dtype), a.T @ (yi - mu * a1))
        assert torch.allclose(x_hat[i], ref, atol=1e-4)


def test_data_proximal_is_the_normal_equation_solution():
    shape, rho = (1, 6, 6), 0.2
    a = dense(BLUR, shape)
    y, x0 = torch.rand(1, *shape), torch.rand(1, *shape)
    got = data_proximal(spectral_operator(BLUR, shape), y, x0, rho).double().flatten()
    lhs = a.T @ a + rho * torch.eye(len(a), dtype=a.dtype)
    ref = torch.linalg.solve(lhs, a.T @ y.double().flatten() + rho * x0.double().flatten())
    assert torch.allclose(got, ref, atol=1e-4)


# --- an oracle prior: x ~ N(m, τ² I), whose denoiser and posterior are closed forms ---
M, TAU = 0.5, 0.2


def gaussian_denoiser(x, sigma):
    s2 = sigma.view(-1, 1, 1, 1) ** 2
    return M + TAU**2 / (TAU**2 + s2) * (x - M)


def posterior(process, y):
    """``E[x | y]`` and the posterior std of each pixel for the Gaussian prior (dense, float64)."""
    shape = tuple(y.shape[1:])
    a = dense(process, shape)
    n, sy = len(a), process.sigma_y
    cov = torch.linalg.inv(a.T @ a / sy**2 + torch.eye(n, dtype=a.dtype) / TAU**2)
    means = [(cov @ (a.T @ yi.double() / sy**2 + M / TAU**2)).reshape(shape) for yi in y.flatten(1)]
    return torch.stack(means), cov.diagonal().sqrt().reshape(shape)


def oracle_problem(process, n=1, size=8):
    g = torch.Generator().manual_seed(3)
    x = (M + TAU * torch.randn(n, 1, size, size, generator=g)).float()
    return x, process.measure(x, g)


@pytest.mark.parametrize("process", [BLUR, MASK], ids=["blur", "mask"])
def test_ddrm_with_an_oracle_prior_approaches_the_posterior(process):
    """DDRM is a variational approximation, not an exact sampler (measured here: its sample mean sits about one
    posterior std from E[x|y] at η = 0.85 on this white prior); at η = 1 its sample mean is much closer to the
    closed-form posterior mean than the measurement is, and its spread is the posterior's within a factor 1.5."""
    _, y = oracle_problem(process)
    pm, pstd = posterior(process, y)
    spec = spectral_operator(process, tuple(y.shape[1:]))
    out = ddrm(gaussian_denoiser, spec, y.repeat(256, 1, 1, 1), process.sigma_y, sigma_grid(20, 5.0, 0.005),
               eta=1.0, generator=torch.Generator().manual_seed(0)).double()  # fmt: skip
    assert float((out.mean(0) - pm[0]).norm()) < 0.75 * float((y[0].double() - pm[0]).norm())
    assert 0.5 < float((out.std(0) / pstd).mean()) < 1.5


@pytest.mark.parametrize("method", ["diffpir", "dps"])
def test_diffpir_and_dps_with_an_oracle_prior_approach_the_posterior_mean(method):
    """Approximate posterior samplers: their sample mean is much closer to E[x|y] than the measurement is."""
    _, y = oracle_problem(BLUR)
    pm, _ = posterior(BLUR, y)
    ys, g = y.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0)
    sig = sigma_grid(50, 5.0, 0.005)
    if method == "diffpir":
        spec = spectral_operator(BLUR, tuple(y.shape[1:]))
        out = diffpir(gaussian_denoiser, spec, ys, BLUR.sigma_y, sig, lam=1.0, zeta=1.0, generator=g)
    else:
        sev = BLUR.severity(1.0, len(ys), like=ys)
        out = dps(gaussian_denoiser, lambda v: BLUR.apply(v, sev), ys, sig, zeta=0.3, generator=g)
    err = (out.double().mean(0) - pm[0]).norm()
    assert torch.isfinite(out).all() and float(err) < 0.5 * float((y[0].double() - pm[0]).norm())


# --- the registered methods end to end (tiny untrained NCSN++ prior / regressor) ---


def tiny_prior(channels: int) -> Reconstructor:
    net = build_ncsnpp("tiny", channels=channels, image_size=16)
    return Reconstructor(net, GeometricNoiseSchedule(0.005, 5.0)).eval()


@pytest.mark.parametrize("name", ["wiener", "tikhonov", "admm_tv"])
def test_classical_methods_tuned_on_one_set_beat_the_measurement_on_another(name):
    val, test = smooth_images(6, 3, 16, seed=1), smooth_images(6, 3, 16, seed=2)
    y_val, y_test = BLUR.measure(val, torch.Generator().manual_seed(1)), BLUR.measure(test, torch.Generator())
    m = METHODS[name]
    cands = m.candidates()[:: max(1, len(m.candidates()) // 6)]
    tuned = tune(lambda p: m.build(Resources(BLUR), p, name), cands, val, y_val, batch_size=6)
    out = run_restorer(tuned.restorer, y_test, 6).output[:, 0]
    assert float(psnr(out.clamp(0, 1), test).mean()) > float(psnr(y_test, test).mean()) + 0.5


@pytest.mark.parametrize("name", ["ddrm", "diffpir", "dps", "regressor"])
@pytest.mark.parametrize("process", [BLUR, MASK], ids=["blur", "mask"])
def test_learned_peers_run_end_to_end_finite_and_data_consistent(name, process):
    x = smooth_images(3, 1, 16, seed=4)
    y = process.measure(x, torch.Generator().manual_seed(0))
    regressor = Reconstructor(build_ncsnpp("tiny", channels=1, image_size=16), process.noise).eval()
    res = Resources(process, prior=tiny_prior(1), regressor=regressor)
    fixed = {"steps": 4} if name != "regressor" else {}
    r = METHODS[name].build(res, fixed, name)
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    rec = r(y, gens)
    assert rec.x.shape == y.shape and torch.isfinite(rec.x).all()
    assert rec.nfe == (4 if name != "regressor" else 1)
    if r.stochastic:  # per-image generators: an image's result does not depend on its batch
        again = r(y[1:2], [torch.Generator().manual_seed(1)]).x
        assert torch.allclose(again, rec.x[1:2], atol=1e-5)


def test_regressor_peer_with_the_tikhonov_input_refines_the_tikhonov_estimate():
    """A ``model.input=tikhonov`` regressor (as shipped) gets x_T from y through the compare row: with a fresh,
    zero-initialised network (Φ = identity) the row returns exactly the Tikhonov estimate at t = 1."""
    from dirac.models.reconstructor import tikhonov_input

    x = smooth_images(2, 1, 16, seed=5)
    y = BLUR.measure(x, torch.Generator().manual_seed(0))
    net = build_ncsnpp("tiny", channels=1, image_size=16, input="tikhonov", tikhonov_lambda=0.05)
    net.zero_init_output()
    row = METHODS["regressor"].build(Resources(BLUR, regressor=Reconstructor(net, BLUR.noise, BLUR).eval()), {}, "r")
    out = row(y, [torch.Generator().manual_seed(i) for i in range(2)]).x
    x_t = tikhonov_input(BLUR, y, torch.ones(2), 0.05)
    assert torch.allclose(out, x_t, atol=1e-5) and not torch.allclose(out, y, atol=1e-3)
    assert float(psnr(out.clamp(0, 1), x).mean()) > float(psnr(y, x).mean())


class GaussianPrior(torch.nn.Module):
    """The oracle Gaussian denoiser in the shape of a loaded prior checkpoint."""

    noise = GeometricNoiseSchedule(0.005, 5.0)

    def at_sigma(self, x, sigma):
        return gaussian_denoiser(x, sigma)


@pytest.mark.parametrize("name", ["ddrm", "diffpir", "dps"])
@pytest.mark.parametrize("process", [BLUR, MASK], ids=["blur", "mask"])
def test_learned_peers_are_data_consistent_with_a_good_prior(name, process):
    """Through the registry at their default settings (20 steps), with the oracle prior: ‖A x̂ − y‖/√n near σ_y."""
    x, y = oracle_problem(process, n=3, size=16)
    r = METHODS[name].build(Resources(process, prior=GaussianPrior()), {"steps": 20}, name)
    out = r(y, [torch.Generator().manual_seed(i) for i in range(3)]).x
    dc = (process.degrade(out, 1.0) - y).flatten(1).norm(dim=1) / y[0].numel() ** 0.5
    assert float(dc.max()) < 2.5 * process.sigma_y


def test_a_peer_without_its_network_is_refused_with_the_key_to_set():
    with pytest.raises(ValueError, match="needs the prior network.*compare.prior"):
        METHODS["ddrm"].build(Resources(BLUR), {}, "ddrm")


def test_checkpoint_roles_are_told_apart_and_a_prior_is_refused_as_a_dirac_model():
    from dirac.factory import checkpoint_role, require_role

    dirac = {"process": {"kind": "blur"}, "config": {"loss": {"t_min": 0.001}}}
    prior = {"process": {"kind": "identity"}, "config": {"loss": {"t_min": 0.001}}}
    regressor = {"process": {"kind": "blur"}, "config": {"loss": {"t_min": 1.0}}}
    assert [checkpoint_role(s) for s in (dirac, prior, regressor)] == ["dirac", "prior", "regressor"]
    require_role(dirac, "dirac", "x")
    with pytest.raises(ValueError, match="checkpoint=p is not a dirac checkpoint.*compare.prior"):
        require_role(prior, "dirac", "p")
    with pytest.raises(ValueError, match="compare.regressor"):
        require_role(regressor, "dirac", "r")


# a tuned value may sit on its grid's end only where that end is the parameter's own bound (DiffPIR's ζ ∈ [0, 1])
DOMAIN_BOUNDS = {("diffpir", "zeta"): 1.0}


@pytest.mark.parametrize("shipped", ["blur_default", "inpaint_default"])
def test_shipped_peer_choices_are_inside_their_grids(shipped):
    """A peer whose val-tuned value is the last of its grid may be tuned down (its best lies beyond): every
    shipped choice must have grid values on both sides, unless it is the parameter's own bound."""
    import yaml

    from dirac.shipped import config_dir

    tuned = yaml.safe_load((config_dir() / "compare" / f"{shipped}.yaml").read_text())["methods"]
    for name, entry in tuned.items():
        for key, value in (entry.get("params") or {}).items():
            grid = sorted(METHODS[name].grid[key])
            inside = grid[0] < value < grid[-1]
            assert inside or DOMAIN_BOUNDS.get((name, key)) == value, f"{shipped}: {name}.{key}={value}, grid {grid}"
