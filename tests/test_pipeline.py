"""DiracPipeline: type round trips, per-image generators, any size, tiling, save/load, mismatch warning."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dirac import DegradationMismatchWarning, DiracPipeline, DiracPipelineOutput
from dirac.data.embedded import load_photo
from dirac.factory import dataset_from_config
from dirac.metrics import psnr
from dirac.tiling import image_seeds

FAST = {"steps": 4, "progress": False}


@pytest.fixture(scope="module")
def pipe() -> DiracPipeline:
    return DiracPipeline.from_pretrained("blur_default")


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    x = load_photo("coffee", downscale=4.0)
    return torch.stack([x[:, :40, :52], x[:, 40:80, 60:112], x[:, 60:100, 20:72]])


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def quiet(pipe: DiracPipeline, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegradationMismatchWarning)
        return pipe(y, **{**FAST, **kw})


def test_types_round_trip(pipe, crops):
    x = crops[0]
    arr = x.permute(1, 2, 0).numpy()
    pil = Image.fromarray((arr * 255).round().astype(np.uint8))
    cases = {
        "pil": pil,
        "float32": arr.astype(np.float32),
        "float64": arr.astype(np.float64),
        "uint8": np.asarray(pil),
        "chw": x,
        "bchw": crops,
        "list": [crops[0], crops[1, :, :37, :41]],
    }
    for name, image in cases.items():
        y = pipe.degrade(image, generator=torch.Generator().manual_seed(0))
        out = quiet(pipe, y, t_stop="do")
        if isinstance(image, Image.Image):
            assert isinstance(out, Image.Image) and out.size == image.size and out.mode == "RGB", name
        elif isinstance(image, np.ndarray):
            assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == image.dtype, name
        elif isinstance(image, list):
            assert [o.shape for o in out] == [i.shape for i in image], name
        else:
            assert isinstance(out, torch.Tensor) and out.shape == image.shape and out.dtype == image.dtype, name


@pytest.mark.parametrize("bad, hint", [(lambda x: 2 * x - 1, "(x + 1) / 2"), (lambda x: 255 * x, "255")])
def test_out_of_range_input_is_refused(pipe, crops, bad, hint):
    with pytest.raises(ValueError, match="outside \\[0, 1\\]") as e:
        pipe(bad(crops), t_stop=0.5, **FAST)
    assert hint in str(e.value)
    with pytest.raises(ValueError, match="outside"):
        pipe.degrade(bad(crops))


def test_per_image_generators_make_results_batch_invariant(pipe, crops):
    """With one generator per image, an image's reconstruction does not depend on its batch or position."""
    y = pipe.degrade(crops, generator=gens(1, 2, 3))
    full = quiet(pipe, y, t_stop=0.0, generator=gens(10, 11, 12))
    alone = quiet(pipe, y[1:2], t_stop=0.0, generator=gens(11))
    swapped = quiet(pipe, y[[2, 1]], t_stop=0.0, generator=gens(12, 11), batch_size=1)
    torch.testing.assert_close(full[1:2], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(full[[2, 1]], swapped, atol=1e-5, rtol=0)
    other = quiet(pipe, y[1:2], t_stop=0.0, generator=gens(99))
    assert (other - alone).abs().max() > 1e-3  # the noise really comes from the generator


def test_degrade_per_image_generators(pipe, crops):
    both = pipe.degrade(crops[:2], generator=gens(5, 6))
    second = pipe.degrade(crops[1:2], generator=gens(6))
    torch.testing.assert_close(both[1:2], second)


def test_image_seeds_need_one_generator_per_image():
    with pytest.raises(ValueError, match="one per image"):
        image_seeds(gens(1, 2), 3)
    assert image_seeds(gens(1, 2), 2) == image_seeds(gens(1), 1) + image_seeds(gens(2), 1)


def test_odd_sizes_reconstruct_and_gain_over_the_measurement(pipe):
    x = load_photo("chelsea", downscale=2.0)[None, :, :101, :149]
    y = pipe.degrade(x, generator=torch.Generator().manual_seed(0))
    out = pipe(y, t_stop="do", progress=False, return_dict=True)
    assert out.images.shape == x.shape
    assert float(psnr(out.images.clamp(0, 1), x)) > float(psnr(y.clamp(0, 1), x)) + 2.0
    t_do, steps = pipe.choice["do"]["t"], pipe.choice["sampler"]["steps"]
    assert abs(out.t_stop - t_do) < 1e-6
    assert out.nfe == round((1 - t_do) * steps) + 1  # the Euler steps down to t_stop, then the final x̂0
    assert out.nfe_per_image == out.nfe  # one run per image


def test_tiled_matches_untiled(pipe):
    """Deterministic steps, so the only difference is the tiling: seams cost < 0.05 dB."""
    x = load_photo("chelsea", downscale=4.0)[None, :, :96, :96]
    y = pipe.degrade(x, generator=torch.Generator().manual_seed(0))
    kw = {"t_stop": "do", "progress": False, "step": "deterministic"}
    untiled = pipe(y, tile_size=None, **kw)
    tiled = pipe(y, tile_size=64, tile_overlap=32, tile_batch=3, tile_above=0, **kw)
    gap = abs(float(psnr(tiled.clamp(0, 1), x)) - float(psnr(untiled.clamp(0, 1), x)))
    assert gap < 0.05, gap
    assert (tiled - untiled).abs().max() > 0  # the tiled path really ran


def test_num_samples_mean_and_std(pipe, crops):
    y = pipe.degrade(crops[:2], generator=gens(1, 2))
    out = quiet(pipe, y, t_stop=0.0, num_samples=3, generator=gens(3, 4), return_dict=True)
    assert isinstance(out, DiracPipelineOutput) and len(out.samples) == 2
    assert out.samples[0].shape == (3, *crops.shape[1:])
    torch.testing.assert_close(out.images[0], out.samples[0].mean(0))
    torch.testing.assert_close(out.std[1], out.samples[1].std(0))
    assert float(out.std.mean()) > 0
    single = quiet(pipe, y, t_stop=0.0, generator=gens(3, 4), return_dict=True)
    assert single.std is None


def test_callback_and_trajectory(pipe, crops):
    seen: list[tuple[int, float]] = []
    out = quiet(
        pipe,
        crops[:1],
        t_stop=0.5,
        callback=lambda i, t, x0: seen.append((i, t)),
        return_trajectory=True,
        return_dict=True,
    )
    assert len(seen) == out.nfe == 3  # a 4-step grid stopped at t = 0.5: 2 steps + the final x̂0
    assert [i for i, _ in seen] == sorted(i for i, _ in seen)
    assert [t for _, t in seen] == sorted((t for _, t in seen), reverse=True)
    assert sorted(out.trajectory[0], reverse=True) == [1.0, 0.75, 0.5]
    torch.testing.assert_close(out.trajectory[0][0.5], out.images[0])
    with pytest.raises(ValueError, match="return_dict=True"):
        pipe(crops[:1], return_trajectory=True)


def test_bad_t_stop(pipe, crops):
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="\\[0, 1\\]"):
            pipe(crops[:1], t_stop=bad)
    with pytest.raises(ValueError, match="'do', 'po'"):
        pipe(crops[:1], t_stop="best")


def test_save_and_load_round_trip(pipe, crops, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any working directory
    again = DiracPipeline.from_pretrained("blur_default")
    folder = again.save_pretrained(tmp_path / "mine")
    loaded = DiracPipeline.from_pretrained(folder)
    y = pipe.degrade(crops[:2], generator=gens(1, 2))
    for t_stop in ("do", 0.5):
        torch.testing.assert_close(
            quiet(loaded, y, t_stop=t_stop, generator=gens(7, 8)), quiet(pipe, y, t_stop=t_stop, generator=gens(7, 8))
        )
    assert loaded.choice["do"] == pipe.choice["do"]


def test_save_refuses_to_clobber(pipe, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pipe.save_pretrained(other)
    with pytest.raises(FileExistsError, match="not a dirac checkpoint") as e:
        pipe.save_pretrained(other, overwrite=True)
    assert "thesis.tex" in str(e.value) and (other / "thesis.tex").read_text() == "precious"
    ckpt = pipe.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(FileExistsError):
        pipe.save_pretrained(ckpt)
    pipe.save_pretrained(ckpt, overwrite=True)
    assert DiracPipeline.from_pretrained(ckpt).choice is not None


def test_choice_from_other_weights_is_refused(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "ckpt")
    shutil.copy(tmp_path / "ckpt" / "early_stopping.json", tmp_path / "choice.json")
    changed = DiracPipeline.from_pretrained(folder)
    with torch.no_grad():
        next(changed.model.parameters()).add_(0.01)
    changed.save_pretrained(folder, overwrite=True)
    shutil.copy(tmp_path / "choice.json", folder / "early_stopping.json")  # a stale choice file
    stale = DiracPipeline.from_pretrained(folder)
    assert stale.choice is None
    with pytest.raises(ValueError, match="other weights"):
        stale(torch.rand(1, 3, 16, 16), t_stop="do")
    stale(torch.rand(1, 3, 16, 16), t_stop=0.5, **FAST)  # a float t_stop still works


def test_unknown_model_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="blur_default"):
        DiracPipeline.from_pretrained("no_such_model")


def test_mismatch_warning(pipe):
    x = torch.stack([load_photo(n, downscale=4.0)[:, :48, :48] for n in ("chelsea", "coffee")])
    clean = pipe.process.degrade(x, 1.0)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    sigma = pipe.process.sigma_y
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegradationMismatchWarning)
        out = pipe(clean + sigma * noise, t_stop="do", progress=False, return_dict=True)
    assert ((out.consistency > 0.75) & (out.consistency < 1.3)).all()
    with pytest.warns(DegradationMismatchWarning, match="more noise") as rec:
        pipe(clean + 3 * sigma * noise, t_stop="do", progress=False)
    assert f"{sigma:.4f}" in str(rec[0].message)
    with pytest.warns(DegradationMismatchWarning, match="less noise"):
        pipe(clean, t_stop="do", progress=False)


def test_inpainting_is_not_tiled_and_huge_inputs_are_refused(pipe):
    with pytest.raises(ValueError, match="tile_size=None"):
        pipe(torch.rand(1, 3, 600, 500), t_stop=0.5, tile_size=None, **FAST)
    pipe = DiracPipeline.from_pretrained("inpaint_default")
    with pytest.raises(ValueError, match="cannot be tiled"):
        pipe(torch.rand(1, pipe.channels, 600, 500), t_stop=0.5, **FAST)


def test_small_images_run_in_one_piece_by_default(pipe):
    x = load_photo("chelsea", downscale=4.0)[None, :, :96, :130]  # wider than a tile, fewer pixels than 256²
    y = pipe.degrade(x, generator=gens(0))
    kw = {"t_stop": "do", "progress": False, "step": "deterministic"}
    torch.testing.assert_close(pipe(y, **kw), pipe(y, tile_size=None, **kw))


def test_unknown_options_and_bad_numbers_are_named(pipe, crops):
    with pytest.raises(TypeError, match="num_inference_steps"):
        pipe(crops[:1], num_inference_steps=3)
    with pytest.raises(ValueError, match="num_samples"):
        pipe(crops[:1], num_samples=2.5)
    with pytest.raises(ValueError, match="tile_size"):
        pipe(crops[:1], tile_size=16, tile_overlap=32)
    with pytest.raises(ValueError, match="empty"):
        pipe(crops[:0])
    with pytest.raises(ValueError, match="transpose"):
        pipe(crops[0].numpy())  # channels-first NumPy
    torch.testing.assert_close(
        quiet(pipe, crops[:1], t_stop="DO", generator=gens(1)), quiet(pipe, crops[:1], t_stop="do", generator=gens(1))
    )


def test_tensor_dtype_and_16_bit_pil_round_trip(pipe, crops):
    y = pipe.degrade(crops[:1].double(), generator=gens(0))
    assert y.dtype == torch.float64
    out = quiet(pipe, y.requires_grad_(True), t_stop="do")
    assert out.dtype == torch.float64 and out.device == y.device and not out.requires_grad
    grey16 = Image.fromarray((crops[0].mean(0).numpy() * 65535).round().astype(np.uint16))
    y16 = pipe.degrade(grey16, generator=gens(0))
    assert y16.mode == "I;16" and y16.size == grey16.size
    got, want = np.asarray(y16, dtype=np.float64) / 65535, crops[0].mean(0).numpy()
    assert 0.3 < np.corrcoef(got.ravel(), want.ravel())[0, 1]  # the image, not a saturated block
    out = quiet(pipe, Image.fromarray(crops[0].mul(255).byte().permute(1, 2, 0).numpy()), t_stop=0.0,
                num_samples=2, generator=gens(1), return_dict=True)  # fmt: skip
    assert isinstance(out.std, np.ndarray) and out.std.dtype == np.float32 and 0 < out.std.mean() < 0.5


def test_inpainting_warns_off_its_training_size_and_shipped_models_are_not_overwritten(pipe, tmp_path):
    ip = DiracPipeline.from_pretrained("inpaint_default")
    with pytest.warns(DegradationMismatchWarning, match="trained on 32x32"):
        ip(torch.rand(1, 1, 48, 48), t_stop="do", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegradationMismatchWarning)
        face = dataset_from_config(ip.state["data"], "test")[0][None]  # a 32x32 face, as trained
        ip(ip.degrade(face, generator=gens(0)), t_stop="do", generator=gens(1))
    from dirac.shipped import pretrained_dir

    with pytest.raises(ValueError, match="shipped models"):
        pipe.save_pretrained(pretrained_dir() / "blur_default", overwrite=True)


def test_self_ensemble_averages_the_mapped_back_reconstructions_of_the_symmetric_copies(pipe, crops):
    from dirac.degradations import build_process
    from dirac.symmetry import GROUPS, inverse_transform, transform

    y = pipe.degrade(crops[:2], generator=gens(5, 6))  # 40x52: the quarter turns give 52x40 inputs
    ens = quiet(pipe, y, t_stop=1.0, ensemble="dihedral")
    manual = torch.stack([inverse_transform(quiet(pipe, transform(y, k), t_stop=1.0), k) for k in GROUPS["dihedral"]])
    torch.testing.assert_close(ens, manual.mean(0), atol=1e-5, rtol=0)
    assert (ens - quiet(pipe, y, t_stop=1.0)).abs().max() > 1e-4  # the network is not equivariant: it changes
    out = quiet(pipe, y, t_stop=0.5, num_samples=2, ensemble="flip", generator=gens(7, 8), return_dict=True)
    assert out.samples[0].shape == (2, *y.shape[1:])  # 2 samples, each the average over the 2 members
    assert out.nfe_per_image == 2 * out.nfe  # a sample is the average of 2 runs (sample.py's count too)
    torch.testing.assert_close(out.images[1], out.samples[1].mean(0))
    torch.testing.assert_close(out.std[1], out.samples[1].std(0), atol=1e-6, rtol=0)
    from dirac.evaluation.restorers import SamplerRestorer
    from dirac.evaluation.runner import run_restorer
    from dirac.symmetry import SymmetryEnsemble

    # the same setting through sample.py's path: a sample is an ensemble average there too, so the spreads agree
    wide = quiet(pipe, y, t_stop=0.5, num_samples=3, ensemble="dihedral", generator=gens(7, 8), return_dict=True)
    restorer = SymmetryEnsemble(SamplerRestorer(pipe.model, pipe.sampler(0.5)), "dihedral")
    cli = run_restorer(restorer, y, 2, samples=3, per_image_noise=True)
    ratio = float(cli.output.std(1).mean() / wide.std.mean())
    assert 0.6 < ratio < 1.6, ratio  # other noise draws, the same quantity (the std of all 24 runs gave ~1/sqrt(8))
    alone = quiet(pipe, y[1:], t_stop=0.5, num_samples=2, ensemble="flip", generator=gens(8))
    torch.testing.assert_close(alone[0], out.images[1], atol=1e-5, rtol=0)  # independent of the batch
    motion = DiracPipeline(pipe.model, build_process("kernel", kernel="example"), pipe.state)
    with pytest.raises(ValueError, match="does not fit the kernel degradation"):
        motion(y, t_stop=1.0, ensemble="dihedral")
    for bad in ("rot45", "", ["flip"]):
        with pytest.raises(ValueError, match="unknown symmetry group"):
            pipe(y, t_stop=1.0, ensemble=bad)
