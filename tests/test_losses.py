import pytest
import torch

from dirac.degradations import GaussianBlurProcess, SmoothInpaintingProcess
from dirac.losses import IncrementalReconstructionLoss
from tests.conftest import smooth_images


def _setup(proc):
    x0 = smooth_images(4, 3, 16)
    t = torch.tensor([0.2, 0.5, 0.8, 1.0])
    y_t = proc.sample(x0, t, torch.Generator().manual_seed(0))
    pred_noise = 0.1 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))

    def model(y, tt):
        return 0.5 * (y + x0) + pred_noise

    return x0, t, y_t, model


@pytest.mark.parametrize(
    "proc", [GaussianBlurProcess(0.0, 2.0), SmoothInpaintingProcess(0.0, 4.0)], ids=["blur", "inpaint"]
)
def test_delta_t_one_is_clean_image_mse(proc):
    x0, t, y_t, model = _setup(proc)
    loss = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="none")
    got = loss.per_sample(model, x0, t, y_t)
    expected = (model(y_t, t) - x0).pow(2).flatten(1).mean(1)
    assert torch.allclose(got, expected, atol=1e-7)


def test_l1_norm_is_the_mean_absolute_error_with_the_same_weight_and_look_ahead():
    """``norm = "l1"``: ``w(t) · mean |A_τ(x̂) − A_τ(x0)|`` — the closed form at Δt = 1 (clean-image MAE) and at
    Δt = 0.5 (the look-ahead degradation), with ``1/σ²`` weighting."""
    proc = GaussianBlurProcess(0.0, 2.0)  # A_0 = I
    x0, t, y_t, model = _setup(proc)
    pred = model(y_t, t)
    l1 = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="none", norm="l1").per_sample(model, x0, t, y_t)
    assert torch.allclose(l1, (pred - x0).abs().flatten(1).mean(1), atol=1e-7)
    l2 = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="none").per_sample(model, x0, t, y_t)
    assert not torch.allclose(l1, l2)  # the option changes the loss (errors < 1: |e| > e²)
    proc = GaussianBlurProcess(0.3, 2.0)
    la = IncrementalReconstructionLoss(proc, delta_t=0.5, weighting="inv_sigma2", norm="l1")
    tau = (t - 0.5).clamp_min(0)
    ref = (proc.degrade(pred, tau) - proc.degrade(x0, tau)).abs().flatten(1).mean(1) / proc.sigma(t) ** 2
    assert torch.allclose(la.per_sample(model, x0, t, y_t), ref, rtol=1e-5)
    with pytest.raises(ValueError, match="loss.norm"):
        IncrementalReconstructionLoss(proc, norm="l3")


def test_delta_t_zero_is_eq12_and_weighting():
    proc = GaussianBlurProcess(0.3, 2.0)
    x0, t, y_t, model = _setup(proc)
    loss = IncrementalReconstructionLoss(proc, delta_t=0.0, weighting="inv_sigma2")
    got = loss.per_sample(model, x0, t, y_t)
    pred = model(y_t, t)
    eq12 = (proc.degrade(pred, t) - proc.degrade(x0, t)).pow(2).flatten(1).mean(1) / proc.sigma(t) ** 2
    assert torch.allclose(got, eq12, rtol=1e-5)
    # look-ahead: tau = max(t - dt, 0) per sample
    la = IncrementalReconstructionLoss(proc, delta_t=0.5, weighting="none").per_sample(model, x0, t, y_t)
    tau = (t - 0.5).clamp_min(0)
    ref = (proc.degrade(pred, tau) - proc.degrade(x0, tau)).pow(2).flatten(1).mean(1)
    assert torch.allclose(la, ref, atol=1e-7)


def test_oracle_has_zero_loss_and_bad_args():
    proc = GaussianBlurProcess(0.3, 2.0)
    x0 = smooth_images(4, 3, 16)
    loss = IncrementalReconstructionLoss(proc, delta_t=0.3)
    assert loss(lambda y, t: x0, x0, torch.Generator().manual_seed(0)).item() == 0.0
    with pytest.raises(ValueError, match="delta_t"):
        IncrementalReconstructionLoss(proc, delta_t=1.5)
    with pytest.raises(ValueError, match="weighting"):
        IncrementalReconstructionLoss(proc, weighting="snr")


def test_times_are_in_half_open_unit_interval():
    proc = GaussianBlurProcess(0.3, 2.0)
    t = IncrementalReconstructionLoss(proc).sample_times(10000, torch.zeros(1), torch.Generator().manual_seed(0))
    assert t.min() > 0 and t.max() <= 1 and abs(t.mean().item() - 0.5) < 0.02


def test_edm_weighting_gives_every_noise_level_about_unit_loss():
    """With the EDM weight, both the do-nothing predictor x̂ = y (error σ²) at small σ and the mean predictor
    (error ≈ data variance σ_d²) at large σ score about 1 — neither end of a wide σ range dominates the loss."""
    from dirac.degradations import IdentityProcess
    from dirac.degradations.noise import GeometricNoiseSchedule
    from dirac.losses import SIGMA_DATA

    proc = IdentityProcess(GeometricNoiseSchedule(0.005, 5.0))
    loss = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="edm")
    t = torch.tensor([0.0, 1.0])
    sigma = proc.sigma(t)
    w = loss.weight(t)
    assert float(w[0] * sigma[0] ** 2) == pytest.approx(1.0, rel=0.01)  # small σ: x̂ = y costs σ²
    assert float(w[1] * SIGMA_DATA**2) == pytest.approx(1.0, rel=0.01)  # large σ: x̂ = mean costs σ_d²


def test_t_min_one_trains_at_the_final_severity_only():
    """The supervised regressor's loss (t_min = 1): every sampled time is exactly 1."""
    loss = IncrementalReconstructionLoss(GaussianBlurProcess(0.3, 2.0), delta_t=1.0, weighting="none", t_min=1.0)
    t = loss.sample_times(64, torch.zeros(1), torch.Generator().manual_seed(0))
    assert torch.equal(t, torch.ones(64))


def test_t_final_prob_puts_that_share_of_the_batch_at_the_final_severity():
    """``t_final_prob = p``: about a share p of the times is exactly 1, the rest still spread over (t_min, 1)."""
    proc = GaussianBlurProcess(0.3, 2.0)
    g = torch.Generator().manual_seed(0)
    t = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="none", t_final_prob=0.5).sample_times(
        4000, torch.zeros(1), g
    )
    at_one = t == 1.0
    assert 0.46 < at_one.float().mean().item() < 0.54
    rest = t[~at_one]
    assert rest.min().item() < 0.05 and rest.max().item() > 0.95 and 0.45 < rest.mean().item() < 0.55
    plain = IncrementalReconstructionLoss(proc, delta_t=1.0, weighting="none").sample_times(4000, torch.zeros(1), g)
    assert (plain == 1.0).float().mean().item() < 0.01  # the default leaves U(t_min, 1] unchanged
    with pytest.raises(ValueError, match="t_final_prob"):
        IncrementalReconstructionLoss(proc, t_final_prob=1.5)
