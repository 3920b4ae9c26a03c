"""Faults on the library and output side (a fault hunt of 2026-12-07): a user's file is never replaced, dirac's
shipped models are never written by a user call, and broken records and bad call values are named in one line
instead of a traceback or a silent default."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from dirac.checkpoint import CheckpointError
from dirac.cli.sample import split_loader
from dirac.evaluation import OutputFolder
from dirac.evaluation.figures import comparison_grid
from dirac.evaluation.measurements import read_measurement
from dirac.export import export_checkpoint
from dirac.factory import load_checkpoint
from dirac.io import atomic_write
from dirac.pipeline import DiracPipeline
from dirac.shipped import pretrained_dir
from dirac.stopping_choice import SAMPLER_KEYS, load_stopping_choice
from tests.helpers import assert_one_line


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_overwrite_never_replaces_a_file_dirac_did_not_write(tmp_path):
    (tmp_path / "metrics.json").write_text("mine")
    out = OutputFolder(tmp_path)
    out.prepare(overwrite=True)  # allowed: only the previous manifest's files would go
    with pytest.raises(FileExistsError) as e:
        out.json("metrics.json", {"psnr": 1.0})
    assert_one_line(str(e.value), "metrics.json", "did not write", "another output folder")
    assert (tmp_path / "metrics.json").read_text() == "mine"
    out.json("other.json", {"psnr": 1.0})  # other names are written as before
    assert json.loads((tmp_path / "other.json").read_text()) == {"psnr": 1.0}


def test_figure_code_never_replaces_a_users_file_and_lists_its_files_before_writing(tmp_path):
    """Figures write their own files (PNG + JSON twin): each is claimed before it is written, so a user's file of
    the same name stops the run untouched, and a figure interrupted half-way is still in the manifest."""
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "grid_001.json").write_text("my notes")
    out = OutputFolder(tmp_path)
    out.prepare(overwrite=True)
    clean = torch.rand(2, 3, 8, 8)
    with pytest.raises(FileExistsError) as e:
        out.produce(comparison_grid, tmp_path / "figures" / "grid", clean, clean, {"do": clean[:, None]}, "caption")
    assert_one_line(str(e.value), "grid_001.json", "did not write")
    assert (tmp_path / "figures" / "grid_001.json").read_text() == "my notes"

    def interrupted(path):
        atomic_write(path, b"half of a figure")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        out.produce(interrupted, tmp_path / "figures" / "plane.png")
    assert "figures/plane.png" in json.loads((tmp_path / "manifest.json").read_text())["files"]
    for stray in (tmp_path / "manifest.json", tmp_path.parent / "elsewhere.png"):  # never an output
        with pytest.raises(ValueError, match="refusing to write"):
            out.produce(atomic_write, stray, b"{}")
    assert not (tmp_path.parent / "elsewhere.png").exists()


def test_no_output_goes_through_a_symbolic_link_inside_the_folder(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "plane.png").write_text("PRECIOUS")
    root = tmp_path / "out"
    root.mkdir()
    (root / "figures").symlink_to(theirs, target_is_directory=True)
    out = OutputFolder(root)
    out.prepare(overwrite=True)
    for write in (lambda: out.produce(atomic_write, root / "figures" / "plane.png", b"DIRAC"),
                  lambda: out.json("figures/plane.png", {"a": 1}), lambda: out.json("../escape.json", {})):  # fmt: skip
        with pytest.raises(ValueError) as e:
            write()
        assert_one_line(str(e.value), "refusing to write", "symbolic link")
    assert (theirs / "plane.png").read_text() == "PRECIOUS" and not (tmp_path / "escape.json").exists()


def test_overwrite_removes_a_listed_link_not_the_file_it_points_to(tmp_path):
    mine = tmp_path / "mine.png"
    mine.write_text("the user's")
    root = tmp_path / "out"
    (root / "keep").mkdir(parents=True)
    (root / "keep" / "x.png").write_text("behind a link")
    (root / "a.png").symlink_to(mine)
    (root / "sub").symlink_to(root / "keep", target_is_directory=True)
    manifest = {"format": "dirac-outputs", "version": 1, "complete": True, "files": ["a.png", "sub/x.png"]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FileExistsError, match="sub is a file or link dirac did not write"):
        OutputFolder(root).prepare(overwrite=True)  # never removed through a linked folder: refused, nothing gone
    assert (root / "keep" / "x.png").read_text() == "behind a link" and (root / "a.png").is_symlink()
    (root / "manifest.json").write_text(json.dumps({**manifest, "files": ["a.png"]}))
    out = OutputFolder(root)
    out.prepare(overwrite=True)
    out.json("metrics.json", {"psnr": 1.0})
    assert mine.read_text() == "the user's" and not (root / "a.png").is_symlink()  # the link went, not its target
    assert (root / "keep" / "x.png").read_text() == "behind a link"


def test_a_run_refused_after_the_folder_check_leaves_the_previous_run_in_place(tmp_path):
    first = OutputFolder(tmp_path)
    first.prepare()
    first.json("metrics.json", {"psnr": 1.0})
    first.finish()
    before = _digest(tmp_path)
    second = OutputFolder(tmp_path, record={".hydra/config.yaml": "x: 1\n"})
    second.prepare(overwrite=True)  # a setting refused now (after the check, before any output) changes nothing
    assert _digest(tmp_path) == before and not (tmp_path / ".hydra").exists()
    second.json("metrics.json", {"psnr": 2.0})  # the first write clears the old run and records the config
    assert json.loads((tmp_path / "manifest.json").read_text())["files"] == [".hydra/config.yaml", "metrics.json"]


def test_no_user_call_writes_into_the_shipped_models(tmp_path, monkeypatch):
    stand_in = tmp_path / "pretrained"  # a copy: a regression must not destroy the real shipped models
    for name in ("blur_default", "inpaint_default"):
        shutil.copytree(pretrained_dir() / name, stand_in / name)
    monkeypatch.setattr("dirac.shipped.pretrained_dir", lambda: stand_in)
    shipped = stand_in / "blur_default"
    before = _digest(shipped)
    with pytest.raises(ValueError) as e:
        OutputFolder(shipped).prepare(overwrite=True)
    assert_one_line(str(e.value), "inside dirac's shipped models")
    with pytest.raises(ValueError, match="inside dirac's shipped models"):
        export_checkpoint("inpaint_default", shipped, overwrite=True)
    with pytest.raises(ValueError, match="inside dirac's shipped models"):
        DiracPipeline.from_pretrained("blur_default").save_pretrained(shipped, overwrite=True)
    assert _digest(shipped) == before


def _copy_shipped(tmp_path, name: str = "blur_default"):
    folder = tmp_path / name
    shutil.copytree(pretrained_dir() / name, folder)
    return folder, json.loads((folder / "state.json").read_text())


def test_a_checkpoint_whose_process_record_is_incomplete_is_refused(tmp_path):
    folder, state = _copy_shipped(tmp_path)
    del state["process"]["schedule"]  # defaults would give another t-grid than DO/PO were chosen on
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(folder)
    assert_one_line(str(e.value), "cannot load checkpoint", "'process' in state.json lacks ['schedule']")


def test_a_checkpoint_without_a_data_record_names_what_is_missing(tmp_path):
    folder, state = _copy_shipped(tmp_path)
    del state["data"]
    (folder / "state.json").write_text(json.dumps(state))
    _, process, loaded = load_checkpoint(folder)  # the model itself still loads
    with pytest.raises(ValueError) as e:
        split_loader({"num_images": 2, "seed": 0}, loaded, process)("test")
    assert_one_line(str(e.value), "records no 'data'", "measurements=")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"do": 0.3, "sampler": dict.fromkeys(SAMPLER_KEYS, 1)}, ["'do' must be an object", "mode=sweep"]),
        ({"do": {"t": "abc"}, "sampler": dict.fromkeys(SAMPLER_KEYS, 1)}, ["'do' must be an object", "'abc'"]),
        ({"do": {"t": 0.5}, "sampler": 5}, ["'sampler' must be an object"]),
    ],
)
def test_a_malformed_choice_file_is_named_in_one_line(tmp_path, content, words):
    path = tmp_path / "early_stopping.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError) as e:
        load_stopping_choice(path, None)
    assert_one_line(str(e.value), str(path), *words)


def test_a_pipeline_with_a_malformed_choice_file_still_runs_a_float_stop(tmp_path):
    folder, _ = _copy_shipped(tmp_path)
    (folder / "early_stopping.json").write_text(json.dumps({"do": 0.3, "sampler": {}}))
    pipe = DiracPipeline.from_pretrained(folder)
    y = pipe.degrade(torch.rand(1, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(pipe(y, t_stop=1.0, steps=2, progress=False)).all()
    with pytest.raises(ValueError, match="early_stopping.json"):
        pipe(y, t_stop="do", steps=2, progress=False)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"guidance": "std", "guidance_strength": float("nan")}, ["guidance_strength must be a finite number"]),
        ({"steps": 2.99}, ["steps must be a positive integer", "2.99"]),  # was silently 2
        ({"steps": "3"}, ["steps must be a positive integer"]),
        ({"t_stop": None}, ["t_stop must be 'do', 'po' or a float"]),
        ({"t_stop": True}, ["t_stop must be 'do', 'po' or a float"]),  # was silently 1.0
        ({"generator": 0}, ["generator must be a torch.Generator or a list"]),
        ({"generator": [1]}, ["generator list holds int"]),
    ],
)
def test_bad_pipeline_values_are_named_in_one_line(options, words):
    pipe = DiracPipeline.from_pretrained("blur_default")
    with pytest.raises((ValueError, TypeError)) as e:
        pipe(torch.rand(1, 3, 16, 16), progress=False, **({"t_stop": 1.0, "steps": 2} | options))
    assert_one_line(str(e.value), *words)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        pipe.degrade(torch.rand(1, 3, 16, 16), generator=0)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (np.full((8, 8), 200.0, dtype=np.float32), ["values in [200, 200]", "divide by 255"]),  # was clipped to 1
        (np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), ["values in [-1, 1]", "(x + 1) / 2"]),
        (np.where(np.eye(8) > 0, np.nan, 0.5).astype(np.float32), ["NaN or Inf"]),
    ],
)
def test_a_float_measurement_outside_the_range_is_named_not_clipped(tmp_path, values, words):
    path = tmp_path / "m.tif"
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(ValueError) as e:
        read_measurement(path, 1)
    assert_one_line(str(e.value), str(path), *words)
    Image.fromarray(np.full((8, 8), 0.25, dtype=np.float32), mode="F").save(path)  # in range: read as it is
    assert torch.allclose(read_measurement(path, 1), torch.full((1, 8, 8), 0.25))


def test_the_pipeline_reads_an_image_as_sample_py_reads_its_file(tmp_path):
    """A 32-bit integer (PIL ``I``) image of 8-bit values: the pipeline read it /65535 (near black) while
    ``sample.py measurements=`` read it /255; both now decode through ``pil_to_tensor`` and the image comes back
    in its own mode and scale."""
    from dirac.data.transforms import load_image
    from dirac.image_types import to_tensors

    values = (np.arange(400).reshape(20, 20) % 255).astype(np.int32)
    Image.fromarray(values).save(tmp_path / "m.tif")
    with Image.open(tmp_path / "m.tif") as img:
        assert img.mode == "I"
        (x,), restore = to_tensors(img, 1, "measurement")
    assert torch.allclose(x[0], load_image(tmp_path / "m.tif", 1))
    assert float(x.max()) == pytest.approx(254 / 255)
    back = restore([x])
    assert back.mode == "I" and np.array_equal(np.asarray(back), values)


def test_an_image_too_large_for_the_tile_size_says_which_setting_keeps_it_whole():
    pipe = DiracPipeline.from_pretrained("blur_default")
    with pytest.raises(ValueError) as e:
        pipe(torch.rand(1, 3, 600, 600) * 0.5 + 0.25, t_stop=1.0, tile_size=1000)
    assert_one_line(str(e.value), "600x600", "tile_size=1000 covers it whole", "smaller tile_size")
    with pytest.raises(ValueError) as e:
        pipe(torch.rand(1, 3, 600, 600) * 0.5 + 0.25, t_stop=1.0, tile_size=None)
    assert_one_line(str(e.value), "tiling is off")


def test_peer_settings_are_checked_by_kind_and_accept_what_the_restorers_accept():
    from dirac.evaluation.methods import METHODS, Method

    ddrm = METHODS["ddrm"]
    ddrm.check_settings({"eta": np.float64(0.5), "steps": np.int64(20), "sigma_min": None}, "ddrm")  # all valid
    bad_settings = [
        ({"eta": 1.5}, ["ddrm.eta", "[0, 1]"]),
        ({"steps": 2.5}, ["ddrm.steps", "whole"]),
        ({"eta": True}, ["ddrm.eta"]),
        ({"sigma": 0.1}, ["ddrm.sigma", "no such setting", "options"]),
    ]
    for bad, words in bad_settings:
        with pytest.raises(ValueError) as e:
            ddrm.check_settings(bad, "ddrm")
        assert_one_line(str(e.value), *words)
    with pytest.raises(ValueError, match="nonneg"):
        Method(METHODS["tikhonov"].make, ranges={"lam": "nonneg"})
