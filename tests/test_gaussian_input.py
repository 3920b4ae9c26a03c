"""``model.input=gaussian``: the network refines the linear MMSE estimate under a Gaussian prior fitted on the
training images (dirac/models/gaussian_prior.py)."""

import copy
import json

import pytest
import torch

from dirac.baselines import best_lambda_tikhonov
from dirac.cli.train import check_resume
from dirac.data import FaceCrops
from dirac.degradations import GaussianBlurProcess, GeometricNoiseSchedule, SmoothInpaintingProcess
from dirac.evaluation.compare_mode import tune_peers
from dirac.evaluation.methods import METHODS, Resources
from dirac.evaluation.peers import load_train_images, runnable, select_methods
from dirac.export import export_checkpoint
from dirac.factory import load_checkpoint
from dirac.metrics import psnr
from dirac.models import Reconstructor, build_ncsnpp
from dirac.models.gaussian_prior import (
    fit_gaussian_prior,
    gaussian_input,
    gaussian_mmse,
    smoothness_covariance,
)
from dirac.pipeline import DiracPipeline
from dirac.training import train_config_from_dict
from tests.helpers import tiny_training, train_tiny

SIZE = 8


def _process() -> SmoothInpaintingProcess:
    return SmoothInpaintingProcess(0.0, 2.0, noise=GeometricNoiseSchedule(0.01, 0.05))


def _prior_samples(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` grey SIZE×SIZE images drawn from a known Gaussian ``N(μ, Σ)`` (smooth plus one strong mode)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.linspace(0.3, 0.7, SIZE * SIZE, dtype=torch.float64)
    mode = torch.randn(SIZE * SIZE, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    smooth = smoothness_covariance(1, SIZE, 0.3)
    cov = 0.01 * smooth / smooth.diagonal().mean() + 0.002 * torch.outer(mode, mode)
    chol = torch.linalg.cholesky(cov)
    x = mu + torch.randn(n, SIZE * SIZE, generator=g, dtype=torch.float64) @ chol.T
    return x.reshape(n, 1, SIZE, SIZE).float(), mu.reshape(1, SIZE, SIZE).float(), cov.float()


def test_an_independent_prior_gives_the_per_pixel_closed_form():
    """Σ = diag(v): x̂_i = μ_i + v_i m_i (y_i − m_i μ_i) / (m_i² v_i + σ²), pixel by pixel."""
    g = torch.Generator().manual_seed(0)
    y, mask = torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g)
    mean, var = torch.rand(1, 4, 4, generator=g), 0.1 + torch.rand(16, generator=g)
    sigma = torch.tensor([0.01, 0.05, 0.2])
    out = gaussian_mmse(y, mask, sigma, mean, torch.diag(var))
    v, s2 = var.reshape(1, 1, 4, 4), sigma.reshape(3, 1, 1, 1) ** 2
    expected = mean + v * mask * (y - mask * mean) / (mask**2 * v + s2)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_the_fitted_covariance_interpolates_between_the_sample_and_the_smoothness_covariance():
    images, _, _ = _prior_samples(5, seed=1)  # fewer images than pixels: the sample covariance is singular
    mean, sample = fit_gaussian_prior(images, 0.0, 0.3)
    torch.testing.assert_close(sample, torch.cov(images.flatten(1).T), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mean, images.mean(0), atol=1e-6, rtol=1e-5)
    _, target = fit_gaussian_prior(images, 1.0, 0.3)
    assert target.diagonal().mean() == pytest.approx(float(sample.diagonal().mean()), rel=1e-5)
    _, shrunk = fit_gaussian_prior(images, 0.5, 0.3)
    torch.testing.assert_close(shrunk, (sample + target) / 2, atol=1e-6, rtol=1e-5)
    assert torch.linalg.eigvalsh(shrunk.double()).min() > 0 >= torch.linalg.eigvalsh(sample.double()).min() - 1e-9


def test_for_images_drawn_from_the_prior_the_estimate_beats_tikhonov_and_misfitted_priors():
    """The posterior mean minimises the expected squared error among all estimators (Bayes), so on images drawn
    from N(μ, Σ) it must beat a wrong covariance and the best-λ Tikhonov solve."""
    proc = _process()
    x, mu, cov = _prior_samples(256, seed=2)
    y = proc.measure(x, torch.Generator().manual_seed(3))
    ones = torch.ones(len(x))

    def mse(est: torch.Tensor) -> float:
        return float(((est - x) ** 2).mean())

    right = mse(gaussian_input(proc, y, ones, mu, cov))
    assert right < mse(gaussian_input(proc, y, ones, mu, 4.0 * cov))
    assert right < mse(gaussian_input(proc, y, ones, mu, 0.25 * cov))
    assert right < mse(gaussian_input(proc, y, ones, mu, torch.diag(cov.diagonal())))
    _, _, tik = best_lambda_tikhonov(proc, x, y, lambdas=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0))  # λ chosen on the truth
    assert right < 0.8 * mse(tik)


def test_an_untrained_network_returns_the_estimate_at_each_images_own_time():
    proc = _process()
    x, mu, cov = _prior_samples(5, seed=4)
    t = torch.tensor([0.5, 1.0, 0.2, 1.0, 0.5])  # repeated times share one factorisation
    y = proc.sample(x, t, torch.Generator().manual_seed(5))
    net = build_ncsnpp("tiny", image_size=SIZE, channels=1, input="gaussian")
    net.set_gaussian_prior(mu, cov)
    model = Reconstructor(net, proc.noise, proc).eval()
    with torch.no_grad():
        out = model(y, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: the solve stays exact
            assert torch.allclose(model(y, t), out, atol=1e-5)
    for i in range(len(x)):
        alone = gaussian_input(proc, y[i : i + 1], t[i : i + 1], mu, cov)
        assert torch.allclose(out[i : i + 1], alone, atol=1e-5), i


def test_bad_gaussian_input_settings_are_refused_with_a_reason():
    proc = _process()
    with pytest.raises(ValueError, match="dense covariance"):
        build_ncsnpp("tiny", image_size=64, channels=3, input="gaussian")
    with pytest.raises(ValueError, match="gaussian_shrinkage"):
        build_ncsnpp("tiny", input="gaussian", gaussian_shrinkage=1.5)
    with pytest.raises(ValueError, match="gaussian_smoothness"):
        build_ncsnpp("tiny", input="gaussian", gaussian_smoothness=0.0)
    net = build_ncsnpp("tiny", image_size=SIZE, channels=1, input="gaussian")
    blur = GaussianBlurProcess(0.3, 2.0)
    with pytest.raises(ValueError, match="mask"):
        Reconstructor(net, blur.noise, blur)
    model = Reconstructor(net, proc.noise, proc)
    with pytest.raises(ValueError, match="never fitted"):
        model(torch.rand(2, 1, SIZE, SIZE), 1.0)
    _, mu, cov = _prior_samples(2, seed=6)
    net.set_gaussian_prior(mu, cov)
    with pytest.raises(ValueError, match="fitted on"):
        model(torch.rand(2, 1, 2 * SIZE, 2 * SIZE), 1.0)
    with pytest.raises(ValueError, match="only a model.input=gaussian"):
        build_ncsnpp("tiny").set_gaussian_prior(mu, cov)


def test_a_fine_tune_fits_the_prior_on_the_training_faces_and_the_checkpoint_keeps_it(tmp_path):
    tiny = tiny_training(experiment="inpaint_default", data__image_size=16, degradation__width_max=3.0)
    base = [o for o in tiny if not o.startswith("data.train.length")]  # the faces are a fixed set
    first = train_tiny(tmp_path / "a", [*base, "trainer.max_steps=2"])
    tuned = train_tiny(
        tmp_path / "b",
        [*base, "trainer.max_steps=1", "trainer.lr=1e-12", "trainer.warmup_steps=0", f"init_from={first}",
         "model.input=gaussian", "model.gaussian_shrinkage=0.3", "init_new_input=true"],
    )  # fmt: skip
    recorded = json.loads((tuned / "state.json").read_text())["model"]
    assert recorded["input"] == "gaussian" and recorded["gaussian_shrinkage"] == 0.3
    model, proc, _ = load_checkpoint(tuned)
    before, _, _ = load_checkpoint(first)
    train_faces = FaceCrops("train", image_size=16, hflip=False)._images
    flipped_mean = (train_faces.mean(0) + train_faces.flip(-1).mean(0)) / 2  # the fit sees random flips
    assert (model.net.prior_mean - flipped_mean).abs().max() < 0.05
    assert bool((model.net.prior_cov.diagonal() > 0).all())
    y = proc.measure(FaceCrops("val", image_size=16)._images[:2], torch.Generator().manual_seed(7))
    ones = torch.ones(2)
    est = gaussian_input(proc, y, ones, model.net.prior_mean, model.net.prior_cov)
    with torch.no_grad():  # the same weights (lr 1e-12), now fed the Gaussian estimate
        assert torch.allclose(model(y, ones), before(est, ones), atol=1e-4)
    notes: list[str] = []  # the peer fits on the same images as the network's input prior
    torch.testing.assert_close(fit_gaussian_prior(load_train_images(str(tuned), notes), 0.3, 0.3)[1],
                               model.net.prior_cov)  # fmt: skip
    assert not notes
    pipe = DiracPipeline.from_pretrained(export_checkpoint(tuned, tmp_path / "exported"))  # buffers travel along
    again = DiracPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "saved"))
    torch.testing.assert_close(again.model.net.prior_cov, model.net.prior_cov)
    with torch.no_grad():
        assert torch.allclose(again.model(y, ones), model(y, ones), atol=1e-5)
    state = json.loads((first / "state.json").read_text())  # a run from before the gaussian_* model keys existed
    current = copy.deepcopy(state["config"])
    for key in ("gaussian_shrinkage", "gaussian_smoothness"):
        del state["config"]["model"][key]
    assert check_resume(state, current, first, train_config_from_dict(current["trainer"])) == []


def test_a_network_input_the_process_cannot_feed_stops_training_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="needs a mask"):
        train_tiny(out, [*tiny_training(), "model.input=gaussian"])  # blur: no Gaussian input
    assert not (out / "schedule.json").exists()  # refused before the data-dependent schedule


def test_the_gaussian_peer_is_tuned_on_val_and_beats_tikhonov_on_images_from_a_gaussian():
    """The peer row (compare.methods=[gaussian]) through the registry: fitted on the training images, its
    shrinkage tuned on val only, it beats val-tuned Tikhonov on fresh images of the same distribution."""
    proc = _process()
    train, _, _ = _prior_samples(200, seed=8)
    val, test = _prior_samples(32, seed=9)[0], _prior_samples(64, seed=10)[0]
    measured = {"val": (val, proc.measure(val, torch.Generator().manual_seed(11)))}
    res = Resources(proc, train_images=train)
    entries, n = tune_peers(select_methods(["gaussian", "tikhonov"]), res, measured.__getitem__, "val", 16, 0)
    assert n == 32 and set(entries["gaussian"]["params"]) == {"shrinkage", "smoothness"}
    y = proc.measure(test, torch.Generator().manual_seed(12))
    scores = {}
    for name, entry in entries.items():
        restorer = METHODS[name].build(res, entry["params"], name)
        scores[name] = float(psnr(restorer(y).x.clamp(0, 1), test).mean())
    assert scores["gaussian"] > scores["tikhonov"] + 0.5


def test_the_gaussian_peer_is_skipped_with_a_reason_where_it_cannot_run():
    blur = GaussianBlurProcess(0.3, 2.0)
    train = _prior_samples(4, seed=13)[0]
    methods = select_methods(["gaussian", "tikhonov"])
    keep, skipped = runnable(methods, Resources(blur, train_images=train))
    assert set(keep) == {"tikhonov"} and "mask" in skipped["gaussian"]
    keep, skipped = runnable(methods, Resources(_process()))
    assert set(keep) == {"tikhonov"} and "training images" in skipped["gaussian"]
    with pytest.raises(ValueError, match="training images"):
        METHODS["gaussian"].build(Resources(_process()), {"shrinkage": 0.5, "smoothness": 0.3}, "gaussian")


def test_a_blur_comparison_skips_the_gaussian_peer_without_loading_training_images(monkeypatch):
    import dirac.evaluation.peers as peers

    def refuse(*args):
        raise AssertionError("training images loaded for a method that cannot run on this process")

    monkeypatch.setattr(peers, "load_train_images", refuse)
    cfg = {"methods": ["gaussian", "tikhonov"], "oracle": [], "prior": None, "regressor": None}
    chosen = peers.setup_peers(cfg, "blur_default", GaussianBlurProcess(0.3, 2.0), 3, "cpu")
    assert set(chosen.methods) == {"tikhonov"} and "mask" in chosen.skipped["gaussian"]
