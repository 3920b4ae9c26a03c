"""Properties of dirac.evaluation: the restorer interface, λ tuned on validation only, batch-size invariance
of the runner, measurement folders, the metric registry and the output manifest (what overwrite may delete)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from PIL import Image

from dirac.degradations import GaussianBlurProcess
from dirac.evaluation import (
    AdmmTvRestorer,
    OutputFolder,
    SamplerRestorer,
    TikhonovRestorer,
    run_restorer,
    tune,
)
from dirac.evaluation.measurements import load_measurements
from dirac.evaluation.methods import METHODS, Resources
from dirac.evaluation.runner import require_finite, run_mixed_sizes
from dirac.evaluation.settings import stopping_points
from dirac.evaluation.sweep import oracle_methods, tune_methods
from dirac.evaluation.tuning import params_label
from dirac.metrics import psnr
from dirac.metrics.registry import Metric, available_metrics, build_metric, register_metric
from dirac.reconstruction import Reconstruction, Restorer
from dirac.sampling import ReverseSampler
from dirac.stopping_choice import write_stopping_choice
from tests.conftest import smooth_images

PROC = GaussianBlurProcess(0.3, 2.0)


def identity_model(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return y


class NoiseRestorer(Restorer):
    """A stochastic stand-in honouring diffusers' generator convention (one, or one per image)."""

    name = "noise"

    def __init__(self) -> None:
        self.process = PROC

    @property
    def stochastic(self) -> bool:
        return True

    def __call__(self, y, generator=None):
        if isinstance(generator, list):
            z = torch.stack([torch.randn(y.shape[1:], generator=g) for g in generator])
        else:
            z = torch.randn(y.shape, generator=generator)
        return Reconstruction(y + 0.1 * z, nfe=1)


@pytest.fixture
def data():
    clean = smooth_images(6, 3, 16, seed=1).clamp(0, 1)
    return clean, PROC.measure(clean, torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SamplerRestorer(identity_model, ReverseSampler(PROC, steps=3, t_stop=0.0)),
        lambda: TikhonovRestorer(PROC, 0.05),
        lambda: AdmmTvRestorer(PROC, 0.01, iterations=5),
        NoiseRestorer,
    ],
)
def test_every_restorer_keeps_shape_and_reports_nfe(make, data):
    r = make()
    _, y = data
    rec = r(y, torch.Generator().manual_seed(0))
    assert isinstance(rec, Reconstruction) and rec.x.shape == y.shape and torch.isfinite(rec.x).all()
    assert rec.nfe >= 0 and r.process is PROC and isinstance(r.name, str)


def test_sampler_restorer_counts_network_calls_and_records_the_trajectory(data):
    r = SamplerRestorer(identity_model, ReverseSampler(PROC, steps=4, t_stop=0.0), record_x0="all")
    rec = r(data[1], torch.Generator().manual_seed(0))
    assert rec.nfe == 5 and sorted(rec.extras["x0_trajectory"]) == list(range(5))
    assert rec.extras["data_consistency"].shape == (5, 6) and r.stochastic and r.t_stop == 0.0
    det = SamplerRestorer(identity_model, ReverseSampler(PROC, steps=4, step="deterministic", t_stop=0.5))
    assert not det.stochastic and det.t_stop == pytest.approx(0.5)


@pytest.mark.parametrize("batch_size", [1, 4, 5])
def test_runner_output_does_not_depend_on_batch_size(data, batch_size):
    _, y = data
    ref = run_restorer(TikhonovRestorer(PROC, 0.05), y, batch_size=6).output
    assert torch.allclose(run_restorer(TikhonovRestorer(PROC, 0.05), y, batch_size=batch_size).output, ref, atol=1e-5)
    noisy_ref = run_restorer(NoiseRestorer(), y, 6, samples=2, seed=3, per_image_noise=True).output
    noisy = run_restorer(NoiseRestorer(), y, batch_size, samples=2, seed=3, per_image_noise=True).output
    assert noisy.shape == (6, 2, 3, 16, 16) and torch.equal(noisy, noisy_ref)
    assert not torch.equal(noisy[:, 0], noisy[:, 1])  # the samples of one measurement differ


def test_shared_generator_is_batch_dependent_so_the_invariance_test_can_fail(data):
    _, y = data
    a = run_restorer(NoiseRestorer(), y, 1, seed=3).output
    b = run_restorer(NoiseRestorer(), y, 4, seed=3).output
    c = run_restorer(NoiseRestorer(), y, 1, seed=3, per_image_noise=True).output
    assert torch.equal(a, b) and not torch.equal(a, c)  # one generator in order vs one per image


def test_tuned_lambda_is_the_best_on_the_tuning_split(data):
    clean, y = data
    cands = [{"lam": lam} for lam in (1e-4, 1e-2, 1.0, 100.0)]
    tuned = tune(lambda p: TikhonovRestorer(PROC, p["lam"]), cands, clean, y)
    assert tuned.scores[params_label(tuned.params)] == max(tuned.scores.values()) and len(tuned.scores) == 4
    best = run_restorer(tuned.restorer, y, 6).output[:, 0]
    assert float(psnr(best.clamp(0, 1), clean).mean()) == pytest.approx(max(tuned.scores.values()), abs=1e-4)


def test_baselines_are_tuned_on_validation_without_touching_test(data):
    """A split loader that raises if anything but the validation split is read during tuning."""
    clean, y = data
    asked = []

    def load(split):
        asked.append(split)
        if split != "val":
            raise AssertionError(f"tuning read the {split} split")
        return clean, y

    restorers, tuned = tune_methods(["tikhonov"], Resources(PROC), load, "val", batch_size=6)
    scores = tuned["tikhonov"].scores
    assert asked == ["val"] and f"lam={restorers['tikhonov'].lam:.6g}" == max(scores, key=scores.get)
    with pytest.raises(ValueError, match="unknown method"):
        tune_methods(["nope"], Resources(PROC), load, "val", batch_size=6)


def test_oracle_rows_are_tuned_on_the_evaluated_images_and_bound_the_tuned_row(data, monkeypatch):
    """An oracle row picks λ on the images it is scored on, so there it is never below the val-tuned row;
    a method with nothing to tune has no oracle row."""
    clean, y = data
    monkeypatch.setitem(METHODS, "tikhonov_fixed", dataclasses.replace(METHODS["tikhonov"], grid={}))
    val, test = slice(0, len(y) // 2), slice(len(y) // 2, None)
    restorers, _ = tune_methods(["tikhonov"], Resources(PROC), lambda s: (clean[val], y[val]), "val", batch_size=6)
    oracles = oracle_methods(["tikhonov", "tikhonov_fixed"], Resources(PROC), clean[test], y[test], batch_size=6)
    assert set(oracles) == {"tikhonov_oracle"}

    def score(r):
        return psnr(run_restorer(r, y[test], 6).output[:, 0], clean[test]).mean().item()

    assert score(oracles["tikhonov_oracle"]) >= score(restorers["tikhonov"]) - 1e-4


def test_mixed_sizes_run_per_size_in_input_order():
    ims = [torch.rand(3, 16, 16), torch.rand(3, 12, 20), torch.rand(3, 16, 16)]
    outs, runs = run_mixed_sizes(TikhonovRestorer(PROC, 0.05), ims, batch_size=4)
    assert [tuple(o.shape) for o in outs] == [(1, 3, 16, 16), (1, 3, 12, 20), (1, 3, 16, 16)] and len(runs) == 2
    alone = run_restorer(TikhonovRestorer(PROC, 0.05), ims[2][None], 1).output[0]
    assert torch.allclose(outs[2], alone, atol=1e-5)
    noisy, _ = run_mixed_sizes(NoiseRestorer(), ims, batch_size=4, seed=1, per_image_noise=True)
    third = run_restorer(NoiseRestorer(), ims[2][None], 1, seed=1, per_image_noise=True, indices=[2]).output[0]
    assert torch.equal(noisy[2], third)  # an image's noise follows its index in the whole set, not its group


def test_non_finite_reconstructions_are_refused():
    with pytest.raises(ValueError, match="NaN or Inf"):
        require_finite(torch.tensor([[0.0, float("nan")]]), "do")


def test_measurement_folder_same_stem_corrupt_file_and_sizes(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    Image.new("RGB", (12, 8)).save(tmp_path / "b.png")
    ims, names = load_measurements(tmp_path, 3)
    assert names == ["a.png", "b.png"] and ims[1].shape == (3, 8, 12)
    Image.new("RGB", (16, 16)).save(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg.*a\.png|a\.png.*a\.jpg"):
        load_measurements(tmp_path, 3)
    (tmp_path / "a.jpg").unlink()
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="c.png"):
        load_measurements(tmp_path, 3)


def test_metric_registry_builds_named_metrics_and_accepts_new_ones(data):
    clean, y = data
    assert {"psnr", "ssim", "swd", "lpips"} <= set(available_metrics())
    assert torch.allclose(build_metric("psnr")(y, clean), psnr(y.clamp(0, 1), clean))
    assert not build_metric("swd").per_image and build_metric("ssim")(y, clean).shape == (6,)
    with pytest.raises(ValueError, match="unknown metric"):
        build_metric("nope")
    with pytest.raises(ValueError, match="lpips_weights"):
        build_metric("lpips")
    register_metric(
        "mae_test", lambda **_: Metric("mae_test", lambda x, r: (x - r).abs().flatten(1).mean(1), True, False)
    )
    assert build_metric("mae_test").mean(clean, clean) == 0.0
    with pytest.raises(ValueError, match="already registered"):
        register_metric("mae_test", lambda **_: None)


def test_auto_t_stop_uses_the_choice_for_these_weights_only(tmp_path):
    s = {"steps": 5, "step": "euler", "guidance": "none", "guidance_strength": 0.0, "output": "x0", "t_stop": "auto"}
    assert list(stopping_points(s, tmp_path / "none.json", "sha256:a")) == ["full"]
    choice = {"do": {"t": 0.8}, "po": {"t": 0.2}, "sampler": {k: v for k, v in s.items() if k != "t_stop"}}
    path = write_stopping_choice(tmp_path / "c.json", choice, "sha256:a")
    points = stopping_points(s, path, "sha256:a")
    assert {k: v[0] for k, v in points.items()} == {"do": 0.8, "po": 0.2}
    assert list(stopping_points({**s, "t_stop": 0.5}, path, "sha256:a")) == ["t0.5"]
    with pytest.raises(ValueError, match="other weights"):
        stopping_points(s, path, "sha256:b")


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_lists_outputs_and_overwrite_removes_only_those(tmp_path):
    out = OutputFolder(tmp_path)
    assert out.prepare() == []
    out.image("reconstructions/do/a.png", torch.rand(3, 4, 4))
    out.json("metrics.json", {"psnr": 1.0})
    out.finish()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"] == ["metrics.json", "reconstructions/do/a.png"] and manifest["complete"]
    with pytest.raises(FileExistsError, match="earlier run"):
        OutputFolder(tmp_path).prepare()
    (tmp_path / "mine.txt").write_text("keep me")
    before = _tree(tmp_path)
    with pytest.raises(FileExistsError, match="mine.txt"):
        OutputFolder(tmp_path).prepare()
    assert _tree(tmp_path) == before  # refusing changes nothing
    again = OutputFolder(tmp_path)
    assert sorted(again.prepare(overwrite=True)) == ["metrics.json", "reconstructions/do/a.png"]
    assert _tree(tmp_path) == before  # removed only when this run writes: a run that stops first changes nothing
    again.json("metrics.json", {"psnr": 2.0})
    assert set(_tree(tmp_path)) == {"mine.txt", "metrics.json", "manifest.json"}
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_overwrite_never_follows_a_manifest_outside_the_folder(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not dirac's")
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"format": "dirac-outputs", "files": ["../outside.txt"]}))
    with pytest.raises(ValueError, match="not a path dirac writes"):
        OutputFolder(run).prepare(overwrite=True)
    assert outside.read_text() == "not dirac's"
    (run / "manifest.json").write_text("{broken")
    with pytest.raises(ValueError, match="not a dirac manifest"):
        OutputFolder(run).prepare(overwrite=True)


def test_interrupted_run_is_listed_before_each_write(tmp_path):
    out = OutputFolder(tmp_path)
    out.prepare()
    out.image("reconstructions/do/a.png", torch.rand(3, 4, 4))  # no finish(): as if killed here
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"] == ["reconstructions/do/a.png"] and manifest["complete"] is False
    again = OutputFolder(tmp_path)
    assert again.prepare(overwrite=True) == ["reconstructions/do/a.png"]
    again.finish()  # a run that writes nothing still clears the previous one's files when it completes
    assert not (tmp_path / "reconstructions" / "do" / "a.png").exists()


def test_settings_mirror_the_sampler_choices():
    from dirac.evaluation import settings
    from dirac.sampling import sampler

    assert settings.STEP_TYPES == sampler.STEP_TYPES and settings.OUTPUTS == sampler.OUTPUTS


def test_sampler_restorer_tiles_large_images_and_refuses_untileable_huge_ones():
    """Above its tile size the CLI's restorer runs seeded tiles: same result as one piece up to seams."""
    from dirac.data.embedded import load_photo
    from dirac.evaluation.restorers import SamplerRestorer
    from dirac.factory import load_checkpoint
    from dirac.metrics import psnr
    from dirac.sampling import ReverseSampler

    model, process, _ = load_checkpoint("blur_default")
    x = load_photo("chelsea", downscale=4.0)[None, :, :96, :96]
    y = process.measure(x, torch.Generator().manual_seed(0))
    sampler = ReverseSampler(process, steps=50, step="deterministic", t_stop=0.98)
    whole = SamplerRestorer(model, sampler, tile_size=None)(y)
    tiled = SamplerRestorer(model, sampler, tile_size=64, tile_above=0)(y, [torch.Generator().manual_seed(1)])
    assert tiled.extras.get("tiled") and "tiled" not in whole.extras and tiled.nfe == whole.nfe
    assert abs(float(psnr(tiled.x.clamp(0, 1), x)) - float(psnr(whole.x.clamp(0, 1), x))) < 0.05
    inpaint_model, inpaint, _ = load_checkpoint("inpaint_default")
    with pytest.raises(ValueError, match="cannot be tiled"):
        SamplerRestorer(inpaint_model, ReverseSampler(inpaint, steps=2))(torch.rand(1, 1, 600, 500))
