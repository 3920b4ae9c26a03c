import math

import pytest
import torch

from dirac.baselines import (
    admm_tv,
    best_lambda_tikhonov,
    best_lambda_tv,
    conjugate_gradient,
    gradient,
    gradient_adjoint,
    neg_laplacian,
    shrink,
    tikhonov,
    tikhonov_operator,
    total_variation,
    tv_objective,
)
from dirac.baselines.linalg import batch_dot
from dirac.degradations import GaussianBlurProcess, GeometricNoiseSchedule, IdentityProcess, SmoothInpaintingProcess
from dirac.metrics import psnr
from tests.conftest import smooth_images

PROCESSES = {
    "blur": lambda: GaussianBlurProcess(0.3, 2.0),
    "inpaint": lambda: SmoothInpaintingProcess(0.0, 3.0, 4.0),
    "identity": IdentityProcess,
}


def squares(b: int, size: int = 24, seed: int = 0) -> torch.Tensor:
    """Piecewise-constant test images: a few random axis-aligned squares on a flat background."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((b, 1, size, size), 0.2)
    for i in range(b):
        for _ in range(3):
            s = int(torch.randint(5, size // 2, (1,), generator=g))
            top, left = (int(v) for v in torch.randint(0, size - s, (2,), generator=g))
            x[i, :, top : top + s, left : left + s] = float(torch.rand((), generator=g)) * 0.6 + 0.3
    return x


def dense_matrix(op, shape: tuple[int, int, int]) -> torch.Tensor:
    """Matrix of a linear map on single images of ``shape`` (C, H, W), built from unit vectors (one batch)."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return op(basis).reshape(n, n).T  # column j = op(e_j)


# --- finite differences ---
def test_neg_laplacian_is_neumann_five_point_stencil_and_dtd():
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    stencil = 4 * x - xp[:, :, :-2, 1:-1] - xp[:, :, 2:, 1:-1] - xp[:, :, 1:-1, :-2] - xp[:, :, 1:-1, 2:]
    torch.testing.assert_close(neg_laplacian(x), stencil)
    g = torch.randn(2, 3, 2, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(batch_dot(gradient(x), g), batch_dot(x, gradient_adjoint(g)))
    # constants are in the null space, and -Δ is symmetric positive semidefinite
    assert neg_laplacian(torch.full((1, 1, 5, 5), 0.7)).abs().max() < 1e-6
    lap = dense_matrix(neg_laplacian, (1, 5, 6))
    torch.testing.assert_close(lap, lap.T)
    assert torch.linalg.eigvalsh(lap).min() > -1e-10


# --- conjugate gradient ---
def test_cg_per_sample_systems_and_converged_samples_stay_put():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    mats = q @ q.transpose(1, 2) + torch.diag_embed(
        torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)[:, None].expand(3, 6)
    )
    b = torch.randn(3, 6, generator=g, dtype=torch.float64)
    b[1] = 0.0  # already solved by x = 0: must stay exactly 0 with no NaN
    x, info = conjugate_gradient(lambda v: (mats @ v[..., None])[..., 0], b, tol=1e-12, max_iter=100)
    torch.testing.assert_close(x, torch.linalg.solve(mats, b))
    assert info.converged.all() and info.iterations[1] == 0 and bool((x[1] == 0).all())


@pytest.mark.parametrize("kind", ["blur", "inpaint"])
@pytest.mark.parametrize("regulariser", ["laplacian", "identity"])
def test_tikhonov_cg_matches_dense_solve(kind, regulariser):
    proc = PROCESSES[kind]()
    shape = (1, 8, 8)
    lam = 0.05
    basis_like = torch.zeros(64, *shape, dtype=torch.float64)
    normal, _ = tikhonov_operator(proc, basis_like, lam, regulariser)
    m = dense_matrix(normal, shape)
    torch.testing.assert_close(m, m.T)  # symmetric ...
    assert torch.linalg.eigvalsh(m).min() > 0  # ... positive definite
    y = proc.measure(smooth_images(2, 1, 8).double(), torch.Generator().manual_seed(0))
    x, info = tikhonov(proc, y, lam, regulariser, tol=1e-12, max_iter=500, return_info=True)
    assert info.converged.all()
    rhs = proc.adjoint(y, 1.0).reshape(2, -1)
    expected = torch.linalg.solve(m, rhs.T).T.reshape(x.shape)
    torch.testing.assert_close(x, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", ["blur", "inpaint", "identity"])
def test_normal_operator_symmetric_positive(kind):
    proc = PROCESSES[kind]()
    g = torch.Generator().manual_seed(2)
    u, v = (torch.randn(3, 3, 12, 12, generator=g, dtype=torch.float64) for _ in range(2))
    lam = torch.tensor([1e-3, 0.1, 1.0], dtype=torch.float64)  # per-sample λ
    normal, _ = tikhonov_operator(proc, u, lam, "laplacian")
    torch.testing.assert_close(batch_dot(normal(u), v), batch_dot(u, normal(v)))
    assert bool((batch_dot(normal(u), u) > 0).all())


# --- Tikhonov behaviour ---
def test_tikhonov_best_lambda_beats_measurement_on_blur():
    proc = GaussianBlurProcess(0.3, 2.0, noise=GeometricNoiseSchedule(0.005, 0.01))
    x = smooth_images(4, 3, 24)
    y = proc.measure(x, torch.Generator().manual_seed(0))
    lambdas = (1e-4, 1e-3, 1e-2, 1e-1)
    lam, scores, rec = best_lambda_tikhonov(proc, x, y, lambdas=lambdas)
    assert set(scores) == set(lambdas) and scores[lam] == max(scores.values())
    assert scores[lam] > float(psnr(y, x).mean()) + 1.0
    torch.testing.assert_close(rec, tikhonov(proc, y, lam))


def test_tikhonov_identity_small_lambda_returns_measurement():
    proc = IdentityProcess()
    y = proc.measure(smooth_images(2, 3, 16), torch.Generator().manual_seed(0))
    torch.testing.assert_close(tikhonov(proc, y, 0.0), y)
    rec = tikhonov(proc, y, 1e-7, x_init=torch.zeros_like(y), tol=1e-10)
    torch.testing.assert_close(rec, y, atol=1e-5, rtol=0)


def test_tikhonov_rejects_bad_arguments():
    proc, y = IdentityProcess(), torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="regulariser"):
        tikhonov(proc, y, 0.1, regulariser="tv")
    with pytest.raises(ValueError, match="non-negative"):
        tikhonov(proc, y, -1.0)
    with pytest.raises(ValueError, match="shape"):
        tikhonov(proc, y[0], 0.1)


# --- ADMM-TV ---
def test_shrink_isotropic_and_anisotropic():
    v = torch.tensor([3.0, 4.0, 0.1, -0.2]).reshape(1, 1, 2, 1, 2)  # 2-vectors (3, 0.1) and (4, -0.2)
    out = shrink(v, torch.tensor(1.0), isotropic=False)
    torch.testing.assert_close(out.flatten(), torch.tensor([2.0, 3.0, 0.0, 0.0]))
    w = torch.tensor([3.0, 0.0, 4.0, 0.5]).reshape(1, 1, 2, 1, 2)  # vectors (3, 4) (norm 5) and (0, 0.5)
    out = shrink(w, torch.tensor(1.0), isotropic=True)
    torch.testing.assert_close(out.flatten(), torch.tensor([2.4, 0.0, 3.2, 0.0]))
    x = torch.zeros(1, 1, 3, 3)
    x[..., 1:, :] = 1.0
    assert float(total_variation(x)) == pytest.approx(3.0)


@pytest.mark.parametrize("isotropic", [True, False])
def test_admm_tv_lowers_objective_and_beats_measurement_on_squares(isotropic):
    proc = GaussianBlurProcess(0.3, 1.0, noise=GeometricNoiseSchedule(0.01, 0.05))
    x = squares(4)
    y = proc.measure(x, torch.Generator().manual_seed(0))
    lam = 0.05
    rec, hist = admm_tv(proc, y, lam, iterations=60, isotropic=isotropic, return_history=True)
    assert hist.shape == (4, 61)
    assert bool((hist[:, -1] < hist[:, 0]).all())
    assert bool((hist[:, -1] <= hist.min(dim=1).values * 1.001).all())  # monotone-ish: ends near its minimum
    torch.testing.assert_close(hist[:, -1], tv_objective(proc, rec, y, lam, isotropic))
    measured = float(psnr(y, x).mean())
    assert float(psnr(rec, x).mean()) > measured + 2.0
    # edge-preserving prior wins over the quadratic one on piecewise-constant images
    _, tik_scores, _ = best_lambda_tikhonov(proc, x, y, lambdas=(0.01, 0.1, 1.0))
    assert float(psnr(rec, x).mean()) > max(tik_scores.values())


def test_best_lambda_tv_picks_grid_maximum():
    proc = SmoothInpaintingProcess(0.0, 3.0, 4.0)
    x = squares(2, size=16)
    y = proc.measure(x, torch.Generator().manual_seed(0))
    lam, scores, rec = best_lambda_tv(proc, x, y, lambdas=(0.01, 0.1), iterations=30)
    assert scores[lam] == max(scores.values())
    torch.testing.assert_close(float(psnr(rec, x).mean()), scores[lam])
    with pytest.raises(ValueError, match="positive"):
        admm_tv(proc, y, 0.0)
