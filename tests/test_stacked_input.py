"""``model.input=tikhonov_gaussian``: a grey network fed the Tikhonov and the Gaussian-prior estimates of ``x0``
stacked on its replicated input channels, and the weight surgery that starts it as a Tikhonov-input network."""

import json

import pytest
import torch
from torch import nn

from dirac.data import FaceCrops
from dirac.degradations import GaussianBlurProcess, GeometricNoiseSchedule, SmoothInpaintingProcess
from dirac.export import export_checkpoint
from dirac.factory import load_checkpoint
from dirac.models import Reconstructor, build_ncsnpp
from dirac.models.gaussian_prior import fit_gaussian_prior, gaussian_input
from dirac.models.ncsnpp import reads_input_image, stacked_input
from dirac.models.reconstructor import tikhonov_input
from dirac.pipeline import DiracPipeline
from tests.helpers import tiny_training, train_tiny

SIZE = 16


def _randomised(net: nn.Module, seed: int) -> nn.Module:
    """Every parameter drawn at random (the zero-initialised output layers too), so each input weight matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return net.eval()


def test_the_surgery_makes_a_two_estimate_network_compute_what_the_single_one_did():
    single = _randomised(build_ncsnpp("tiny", channels=1, input="tikhonov"), seed=0)
    weights = single.state_dict()
    assert sum(map(reads_input_image, weights)) >= 2  # conv_in and at least one skip down-block
    fused = build_ncsnpp("tiny", channels=1, input="tikhonov_gaussian").eval()
    missing, unexpected = fused.load_state_dict(stacked_input(weights), strict=False)
    assert set(missing) == {"prior_mean", "prior_cov"} and not unexpected
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 1, SIZE, SIZE, generator=g), torch.rand(3, 1, SIZE, SIZE, generator=g)
    sigma = torch.tensor([0.01, 0.03, 0.05])
    with torch.no_grad():
        want = single(a, sigma)
        assert torch.allclose(fused(torch.cat([a, b], 1), sigma), want, atol=1e-5)
        fused.load_state_dict(weights, strict=False)  # without the surgery the second estimate changes the output
        assert not torch.allclose(fused(torch.cat([a, b], 1), sigma), want, atol=1e-3)
    assert torch.equal(weights["unet.conv_in.weight"], single.state_dict()["unet.conv_in.weight"])  # not in place


def test_the_network_is_fed_the_tikhonov_and_the_gaussian_estimate_at_each_images_time():
    proc = SmoothInpaintingProcess(0.0, 3.0, noise=GeometricNoiseSchedule(0.01, 0.05))
    faces = FaceCrops("train", image_size=SIZE, hflip=False)._images
    net = build_ncsnpp("tiny", channels=1, input="tikhonov_gaussian", tikhonov_lambda=0.2)
    mean, cov = fit_gaussian_prior(faces, 0.5, 0.3)
    net.set_gaussian_prior(mean, cov)
    seen: list[torch.Tensor] = []
    net.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model = Reconstructor(net, proc.noise, proc).eval()
    t = torch.tensor([1.0, 0.4, 1.0])
    y = proc.sample(faces[:3], t, torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(y, t)
    (fed,) = seen
    assert fed.shape == (3, 2, SIZE, SIZE)
    torch.testing.assert_close(fed[:, :1], tikhonov_input(proc, y, t, 0.2))
    torch.testing.assert_close(fed[:, 1:], gaussian_input(proc, y, t, mean, cov))
    torch.testing.assert_close(out, fed[:, :1])  # untrained (zero output layers): the residual's base is Tikhonov


def test_bad_two_estimate_settings_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="needs model.channels=1"):
        build_ncsnpp("tiny", channels=3, input="tikhonov_gaussian")
    net = build_ncsnpp("tiny", channels=1, input="tikhonov_gaussian")
    with pytest.raises(ValueError, match="stacked on the channel axis"):
        net(torch.rand(1, 1, SIZE, SIZE), 0.05)
    settings = net.config.input_settings()
    assert {"tikhonov_lambda", "gaussian_shrinkage", "gaussian_smoothness"} <= set(settings)
    blur = GaussianBlurProcess(0.3, 2.0)
    with pytest.raises(ValueError, match="model.input=tikhonov_gaussian needs a mask"):  # the user's value named
        Reconstructor(net, blur.noise, blur)
    proc = SmoothInpaintingProcess(0.0, 3.0, noise=GeometricNoiseSchedule(0.01, 0.05))
    faces = FaceCrops("train", image_size=SIZE, hflip=False)._images
    net.set_gaussian_prior(*fit_gaussian_prior(faces, 0.5, 0.3))
    with pytest.raises(ValueError, match="model.input=tikhonov_gaussian was fitted on"):
        Reconstructor(net, proc.noise, proc)(torch.rand(1, 1, 2 * SIZE, 2 * SIZE), 1.0)


FACES = [
    o
    for o in tiny_training(experiment="inpaint_default", data__image_size=16, degradation__width_max=3.0)
    if not o.startswith("data.train.length")  # the faces are a fixed set
]


def _source_and_fine_tune(tmp_path, source_input: str, *extra: str):
    """A tiny faces run with ``source_input``, then a one-step ``tikhonov_gaussian`` fine-tune of it at lr 1e-12
    (the weights it starts from, unchanged): ``(source, fine-tune)`` checkpoint folders."""
    first = train_tiny(tmp_path / "a", [*FACES, "trainer.max_steps=2", f"model.input={source_input}"])
    tuned = train_tiny(
        tmp_path / "b",
        [*FACES, "trainer.max_steps=1", "trainer.lr=1e-12", "trainer.warmup_steps=0", f"init_from={first}",
         "model.input=tikhonov_gaussian", "init_new_input=true", *extra],
    )  # fmt: skip
    return first, tuned


def test_a_fine_tune_from_a_tikhonov_network_starts_as_it_and_ships_with_its_prior(tmp_path, caplog):
    first, tuned = _source_and_fine_tune(tmp_path, "tikhonov")
    assert json.loads((tuned / "state.json").read_text())["model"]["input"] == "tikhonov_gaussian"
    model, proc, _ = load_checkpoint(tuned)
    before, _, _ = load_checkpoint(first)
    assert bool((model.net.prior_cov.diagonal() > 0).all())  # fitted when the run started
    y = proc.measure(FaceCrops("val", image_size=16)._images[:2], torch.Generator().manual_seed(7))
    t = torch.tensor([1.0, 0.5])
    with torch.no_grad():  # the same function (lr 1e-12): the Gaussian estimate enters with zero weight
        assert torch.allclose(model(y, t), before(y, t), atol=1e-4)
    pipe = DiracPipeline.from_pretrained(export_checkpoint(tuned, tmp_path / "exported"))
    with torch.no_grad():
        assert torch.allclose(pipe.model(y, t), model(y, t), atol=1e-5)
    assert not [r for r in caplog.records if "network input changes" in r.getMessage() and "lambda" in r.getMessage()]
    caplog.clear()
    with caplog.at_level("WARNING", logger="dirac.train"):  # a λ left at the group default is a change: said
        train_tiny(
            tmp_path / "c",
            [
                *FACES,
                "trainer.max_steps=1",
                f"init_from={first}",
                "model.input=tikhonov_gaussian",
                "init_new_input=true",
                "model.tikhonov_lambda=0.2",
            ],
        )
    said = [r.getMessage() for r in caplog.records if "network input changes" in r.getMessage()]
    assert (
        len(said) == 1 and "tikhonov_lambda 0.05 -> 0.2" in said[0] and "input tikhonov -> tikhonov_gaussian" in said[0]
    )


def test_a_fine_tune_from_a_gaussian_network_keeps_its_input_weights_unfolded(tmp_path):
    first, tuned = _source_and_fine_tune(tmp_path, "gaussian")
    (before, _, _), (after, _, _) = load_checkpoint(first), load_checkpoint(tuned)
    key = "unet.conv_in.weight"  # the fold is for a Tikhonov source only: channel 0 carries its estimate
    torch.testing.assert_close(after.net.state_dict()[key], before.net.state_dict()[key], atol=1e-6, rtol=0)
