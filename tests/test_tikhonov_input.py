"""``model.input=tikhonov``: the network refines the Tikhonov estimate of x0 from y_t instead of y_t itself."""

import json

import pytest
import torch

from dirac.baselines import tikhonov
from dirac.data import PhotoCrops
from dirac.degradations import GaussianBlurProcess, GeometricNoiseSchedule, RandomMaskProcess
from dirac.factory import load_checkpoint
from dirac.metrics import psnr
from dirac.models import Reconstructor, build_ncsnpp
from dirac.models.reconstructor import TIKHONOV_INPUT_MAX_ITER, TIKHONOV_INPUT_TOL, tikhonov_input
from tests.helpers import tiny_training, train_tiny

LAM = 0.06


def _blur_batch(n: int = 6) -> tuple[torch.Tensor, GaussianBlurProcess]:
    data = PhotoCrops("val", image_size=16, downscale=8.0, crops_per_image=8)
    return torch.stack([data[i] for i in range(n)]), GaussianBlurProcess(0.3, 2.0)


def test_an_untrained_network_returns_the_tikhonov_estimate_at_each_images_own_time():
    """The zero-initialised output layer makes Φ(u) = u, so Φθ(y_t, t) is the Tikhonov solve with
    λ(t) = λ₁ (σ(t)/σ_y)² of each image alone (per-image t, λ and CG stopping in one batch)."""
    x, proc = _blur_batch()
    t = torch.linspace(0.1, 1.0, len(x))
    y = proc.sample(x, t, torch.Generator().manual_seed(0))
    model = Reconstructor(build_ncsnpp("tiny", input="tikhonov", tikhonov_lambda=LAM), proc.noise, proc).eval()
    with torch.no_grad():
        out = model(y, t)
    for i in range(len(x)):
        lam = LAM * float(proc.sigma(t[i]) / proc.sigma_y) ** 2
        one = y[i : i + 1]
        alone = tikhonov(proc, one, lam, t=float(t[i]), tol=TIKHONOV_INPUT_TOL, max_iter=TIKHONOV_INPUT_MAX_ITER)
        assert torch.allclose(out[i : i + 1], alone, atol=1e-5), i
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: the solve stays float32
        assert torch.allclose(model(y, t), out, atol=1e-5)
    converged = tikhonov(proc, y[-1:], LAM, tol=1e-7, max_iter=1000)  # t = 1: the CG tolerance costs < 0.01 dB
    assert psnr(out[-1:], converged) > 50
    measurement = Reconstructor(build_ncsnpp("tiny"), proc.noise).eval()
    assert torch.equal(measurement(y, t), y)  # the default input is y_t itself


def test_the_tikhonov_input_is_closer_to_the_truth_than_the_measurement():
    x, proc = _blur_batch(8)
    y = proc.measure(x, torch.Generator().manual_seed(1))
    est = tikhonov_input(proc, y, torch.ones(len(x)), LAM)
    assert psnr(est.clamp(0, 1), x).mean() > psnr(y, x).mean() + 0.5


def test_bad_tikhonov_input_settings_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="model.input"):
        build_ncsnpp("tiny", input="wiener")
    with pytest.raises(ValueError, match="tikhonov_lambda"):
        build_ncsnpp("tiny", input="tikhonov", tikhonov_lambda=0.0)
    net = build_ncsnpp("tiny", input="tikhonov")
    with pytest.raises(ValueError, match="needs the degradation process"):
        Reconstructor(net, GeometricNoiseSchedule())
    masks = RandomMaskProcess()
    with pytest.raises(ValueError, match="fixed operators"):
        Reconstructor(net, masks.noise, masks)
    proc = GaussianBlurProcess(0.3, 2.0)
    with pytest.raises(ValueError, match="not a denoiser"):
        Reconstructor(net, proc.noise, proc).at_sigma(torch.rand(1, 3, 16, 16), 0.1)


def test_a_fine_tune_switches_the_input_only_when_asked_and_the_checkpoint_keeps_it(tmp_path):
    first = train_tiny(tmp_path / "a", [*tiny_training(), "trainer.max_steps=2"])
    switch = [*tiny_training(), "trainer.max_steps=1", "trainer.lr=1e-12", "trainer.warmup_steps=0",
              f"init_from={first}", "model.input=tikhonov", f"model.tikhonov_lambda={LAM}"]  # fmt: skip
    with pytest.raises(SystemExit, match="another network input.*model.input=measurement.*init_new_input=true"):
        train_tiny(tmp_path / "refused", switch)
    assert not (tmp_path / "refused" / "checkpoints").exists()
    tuned = train_tiny(tmp_path / "b", [*switch, "init_new_input=true"])
    # fine-tuning the Tikhonov-input run again: the model group's default (measurement) is refused, naming the fix
    again = [*tiny_training(), "trainer.max_steps=1", f"init_from={tuned}"]
    with pytest.raises(SystemExit, match=f"pass model.input=tikhonov model.tikhonov_lambda={LAM} to keep"):
        train_tiny(tmp_path / "c", again)
    kept = train_tiny(tmp_path / "d", [*again, "model.input=tikhonov", f"model.tikhonov_lambda={LAM}"])
    assert json.loads((kept / "state.json").read_text())["model"]["tikhonov_lambda"] == LAM
    assert json.loads((tuned / "state.json").read_text())["model"]["input"] == "tikhonov"
    model, proc, _ = load_checkpoint(tuned)
    before, _, _ = load_checkpoint(first)
    y = proc.measure(torch.rand(2, 3, 16, 16), torch.Generator().manual_seed(2))
    ones = torch.ones(2)
    with torch.no_grad():  # the same weights (lr 1e-12), now fed the Tikhonov estimate
        assert torch.allclose(model(y, ones), before(tikhonov_input(proc, y, ones, LAM), ones), atol=1e-4)
