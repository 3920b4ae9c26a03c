"""Fault injection for ``sample.py``: every bad input is a one-line reason naming the key or file (exit != 0, no
traceback), nothing written by the failed run, and no pre-existing file changed (checksums before/after)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, assert_clear_failure, checksums, run
from omegaconf import OmegaConf
from PIL import Image
from safetensors.torch import load_file, save_file

SHIPPED = ROOT / "pretrained" / "blur_default"
FAST = ["num_images=2", "sampler.steps=2", "metrics=[psnr]"]


def _fast(args: list[str]) -> list[str]:
    """Tiny settings; a float t_stop unless the case sets one (``auto`` would use the choice file's 50 steps)."""
    t_stop = [] if any(a.startswith("sampler.t_stop=") or a == "mode=sweep" for a in args) else ["sampler.t_stop=0.5"]
    return [*FAST, *t_stop, *args]


def sample_inprocess(*args: str) -> subprocess.CompletedProcess:
    """``sample.py ARGS`` run in this process (Hydra and all, no interpreter start-up): the exit status and text
    a real run would give (a ``SystemExit`` message goes to stderr with status 1)."""
    from dirac.cli.sample import main

    argv, sys.argv = sys.argv, ["sample.py", *args]
    code, text = 0, ""
    try:
        main()
    except SystemExit as e:
        code, text = (1, str(e.code)) if isinstance(e.code, str) else (int(e.code or 0), "")
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["sample.py", *args], code, "", text)


def _user_files(root: Path) -> dict[str, str]:
    """Checksums of everything under ``root`` except Hydra's job log and the run lock's file (``.hydra/`` counts:
    dirac writes it only once the run holds its folder, so a refused run leaves another run's record alone)."""
    return {k: v for k, v in checksums(root).items() if not k.endswith(("sample.log", ".dirac.lock"))}


def _png(path: Path, size=(16, 16), colour=(40, 100, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _foreign_out(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "mine.txt").write_text("not dirac's")


def _another_runs_record(tmp: Path) -> None:
    _foreign_out(tmp)
    (tmp / "out" / ".hydra").mkdir()
    (tmp / "out" / ".hydra" / "config.yaml").write_text("their: run\n")


def _tuned_on_test(tmp: Path) -> None:
    doc = (ROOT / "configs" / "compare" / "blur_default.yaml").read_text()
    (tmp / "tuned.yaml").write_text(doc.replace("split: val", "split: test"))


def _edited_tuned(tmp: Path, old: str, new: str) -> None:
    doc = (ROOT / "configs" / "compare" / "blur_default.yaml").read_text()
    assert old in doc
    (tmp / "tuned.yaml").write_text(doc.replace(old, new, 1))


TUNED_EDITS = {  # a hand edit of the shipped tuned file -> what the refusal must name
    "a number for an entry": (
        "  tikhonov:\n    params:\n      lam: 0.05623413251903491\n    fixed: {}\n",
        "  tikhonov: 0.05\n  tikhonov_scores:\n",
        ["methods.tikhonov", "mapping"],
    ),
    "text for a value": ("lam: 0.05623413251903491", "lam: abc", ["methods.tikhonov.params.lam", "positive", "abc"]),
    "a misspelt key": ("lam: 0.05623413251903491", "lamda: 0.05", ["methods.tikhonov.params", "lam"]),
    "a negative weight": ("lam: 0.05623413251903491", "lam: -1", ["methods.tikhonov.params.lam", "positive"]),
    "NaN": ("lam: 0.05623413251903491", "lam: .nan", ["methods.tikhonov.params.lam", "nan"]),
    "DDRM eta outside [0, 1]": ("eta: 0.85", "eta: 5.0", ["methods.ddrm.params.eta", "[0, 1]"]),
    "a string for the process": (
        "process:\n  kind: blur",
        "process: blur\nold_process:\n  kind: blur",
        ["not a tuned file"],
    ),
}


@pytest.mark.parametrize("edit", list(TUNED_EDITS), ids=list(TUNED_EDITS))
def test_a_hand_edited_tuned_file_is_named_with_its_key_before_anything_runs(tmp_path, edit):
    old, new, words = TUNED_EDITS[edit]
    _edited_tuned(tmp_path, old, new)
    methods = "[tikhonov,ddrm]" if "ddrm" in words[0] else "[tikhonov]"
    args = ["mode=compare", f"compare.methods={methods}", f"compare.tuned={tmp_path / 'tuned.yaml'}",
            "compare.oracle=[]", "compare.trajectory=false", "compare.ot_curves=false"]  # fmt: skip
    res = sample_inprocess(*_fast(args), f"hydra.run.dir={tmp_path / 'out'}")
    assert_clear_failure(res, "tuned.yaml", *words)
    assert not list((tmp_path / "out").rglob("*.png")), "rows ran before the tuned file was checked"


def _big_png(tmp: Path) -> None:
    _png(tmp / "m" / "small.png")
    _png(tmp / "m" / "big.png", (600, 600))


def _stale_out(tmp: Path) -> None:
    _png(tmp / "out" / "reconstructions" / "do" / "0000.png")
    manifest = {"format": "dirac-outputs", "version": 1, "complete": True, "files": ["reconstructions/do/0000.png"]}
    (tmp / "out" / "manifest.json").write_text(json.dumps(manifest))


def _same_stem(tmp: Path) -> None:
    _png(tmp / "m" / "a.png")
    _png(tmp / "m" / "a.jpg")


def _corrupt(tmp: Path) -> None:
    _png(tmp / "m" / "good.png")
    (tmp / "m" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")


def _other_choice(tmp: Path) -> None:
    choice = json.loads((SHIPPED / "early_stopping.json").read_text())
    (tmp / "choice.json").write_text(json.dumps({**choice, "weights": "sha256:0000000000000000"}))


def _bad_choice(tmp: Path) -> None:
    (tmp / "choice.json").write_text('{"do": {"t": 0.5}, ')


def _nan_checkpoint(tmp: Path) -> None:
    shutil.copytree(SHIPPED, tmp / "ckpt")
    w = load_file(tmp / "ckpt" / "model.safetensors")
    key = next(k for k, v in w.items() if v.is_floating_point() and v.numel() > 1)
    w[key][...] = float("nan")
    save_file(w, tmp / "ckpt" / "model.safetensors")
    state = json.loads((tmp / "ckpt" / "state.json").read_text())
    state.pop("files", None)  # a well-formed checkpoint without checksums whose weights diverged
    (tmp / "ckpt" / "state.json").write_text(json.dumps(state))


CASES = {
    "negative steps": (["sampler.steps=-3"], ["sampler.steps"], None),
    "zero steps": (["sampler.steps=0"], ["sampler.steps"], None),
    "t_stop above 1": (["sampler.t_stop=1.5"], ["sampler.t_stop", "[0, 1]"], None),
    "t_stop below 0": (["sampler.t_stop=-0.1"], ["sampler.t_stop"], None),
    "t_stop unknown label": (["sampler.t_stop=best"], ["sampler.t_stop", "auto"], None),
    "batch size 0": (["batch_size=0"], ["batch_size"], None),
    "batch size text": (["batch_size=abc"], ["batch_size", "abc"], None),
    "batch size fraction": (["batch_size=2.5"], ["batch_size"], None),
    "unknown mode": (["mode=denoise"], ["mode", "reconstruct"], None),
    "missing checkpoint": (["checkpoint=/no/such/ckpt"], ["/no/such/ckpt", "does not exist"], None),
    "zero samples": (["samples_per_measurement=0"], ["samples_per_measurement"], None),
    "negative num_images": (["num_images=-1"], ["num_images"], None),
    "negative seed": (["seed=-1"], ["seed"], None),
    "unknown metric": (["metrics=[psnr,nope]"], ["unknown metric", "nope"], None),
    "lpips without weights": (["metrics=[lpips]"], ["lpips_weights"], None),
    "overwrite not a bool": (["overwrite=maybe"], ["overwrite"], None),
    "negative guidance": (["sampler.guidance_strength=-1"], ["guidance_strength"], None),
    "unknown step type": (["sampler.step=heun"], ["sampler.step", "heun", "euler"], None),
    "unknown guidance": (["sampler.guidance=strong", "sampler.t_stop=auto"], ["sampler.guidance", "strong"], None),
    "steps wrong type": (["sampler.steps=[1,2]"], ["sampler.steps"], None),
    "unknown device": (["device=tpu7"], ["device", "tpu7"], None),
    "zero po samples": (["mode=sweep", "sweep.po_samples=0"], ["sweep.po_samples"], None),
    "sweep with a label": (["mode=sweep", "sampler.t_stop=do"], ["mode=sweep", "t_stop"], None),
    "other degradation": (["degradation=inpaint"], ["trained for the 'blur'"], None),
    "choice for other weights": (["sampler.t_stop=do", "choice=CHOICE"], ["other weights"], _other_choice),
    "auto with a choice for other weights": (
        ["sampler.t_stop=auto", "choice=CHOICE"],
        ["other weights"],
        _other_choice,
    ),
    "corrupt choice": (["sampler.t_stop=do", "choice=CHOICE"], ["choice.json", "not valid JSON"], _bad_choice),
    "missing choice": (["sampler.t_stop=po", "choice=TMP/none.json"], ["none.json", "does not exist"], None),
    "same stem": (["measurements=TMP/m"], ["a.png", "a.jpg", "same name"], _same_stem),
    "corrupt image": (["measurements=TMP/m"], ["bad.png", "cannot read"], _corrupt),
    "measurements not a folder": (["measurements=TMP/nothing"], ["nothing", "not a folder"], None),
    "foreign files in output": ([], ["mine.txt", "overwrite=true"], _foreign_out),
    "stale outputs": ([], ["earlier run", "overwrite=true"], _stale_out),
    "another run's .hydra": ([], ["did not write", "overwrite=true"], _another_runs_record),
    "overwrite onto another run's .hydra": (
        ["overwrite=true"],
        [".hydra/config.yaml", "did not write"],
        _another_runs_record,
    ),
    "OT map fitted on the evaluated split": (
        ["mode=perception_control", "split=val"],
        ["fit_split=val", "split=test"],
        None,
    ),
    "OT patch too large for the fit images": (
        ["mode=perception_control", "perception_control.patch=32"],
        ["perception_control.patch", "patches cannot fit"],
        None,
    ),
    "UP patch too large for the images": (["mode=up", "up.samples=2", "up.patch=32"], ["up.patch", "cannot fit"], None),
    "OT one-pixel patch keeping the mean": (
        ["mode=perception_control", "perception_control.patch=1"],
        ["patch=1", "transports nothing"],
        None,
    ),
    "up with the deterministic step": (
        ["mode=up", "up.samples=2", "sampler.step=deterministic"],
        ["mode=up", "deterministic", "euler"],
        None,
    ),
    "measurement too large to run and untileable": (
        ["checkpoint=inpaint_default", "measurements=TMP/m"],
        ["measurement big.png", "600x600", "too large"],
        _big_png,
    ),
    "up peer unknown": (["mode=up", "up.samples=2", "up.methods=[tikhonv]"], ["up.methods", "tikhonv"], None),
    "up peer that cannot run here": (
        ["mode=up", "up.samples=2", "up.methods=[gaussian]"],
        ["up.methods: gaussian cannot run here", "mask"],
        None,
    ),
    "compare's OT curves fitted on test": (
        ["mode=compare", "perception_control.fit_split=test"],
        ["fit_split=test"],
        None,
    ),
    "OT map fitted on test": (
        ["mode=perception_control", "perception_control.clean_split=test"],
        ["clean_split=test"],
        None,
    ),
    "up peers tuned on the evaluated split": (
        ["mode=up", "split=val", "up.methods=[tikhonov]"],
        ["tunes its peers (tikhonov) on val", "split=test"],
        None,
    ),
    "compare bootstrap_set negative": (["mode=compare", "compare.bootstrap_set=-1"], ["compare.bootstrap_set"], None),
    "compare override unknown setting": (
        ["mode=compare", "compare.methods=[tikhonov]", "+compare.overrides.tikhonov.foo=1"],
        ["compare.overrides.tikhonov.foo", "no such setting"],
        None,
    ),
    "compare override out of range": (
        ["mode=compare", "compare.methods=[ddrm]", "+compare.overrides.ddrm.eta_b=-3"],
        ["compare.overrides.ddrm.eta_b", "[0, 1]", "-3"],
        None,
    ),
    "compare with peers tuned on test": (
        ["mode=compare", "compare.tuned=TMP/tuned.yaml", "compare.methods=[tikhonov]"],
        ["tuned.yaml was tuned on split=test", "mode=tune with sweep.split other than test"],
        _tuned_on_test,
    ),
    "non-finite weights": (
        ["checkpoint=TMP/ckpt", "sampler.t_stop=0.5"],
        ["NaN", "nothing was written"],
        _nan_checkpoint,
    ),
}


def _check_case(tmp_path: Path, case: str, launch) -> None:
    args, words, setup = CASES[case]
    if setup:
        setup(tmp_path)
    args = [a.replace("CHOICE", str(tmp_path / "choice.json")).replace("TMP", str(tmp_path)) for a in args]
    before, shipped = _user_files(tmp_path), checksums(SHIPPED)
    res = launch(*_fast(args), f"hydra.run.dir={tmp_path / 'out'}")
    text = assert_clear_failure(res, *words)
    assert len(text.strip().splitlines()) <= 3, f"not a short reason:\n{text}"
    assert _user_files(tmp_path) == before, f"files changed although the run failed:\n{text[-1500:]}"
    assert checksums(SHIPPED) == shipped
    assert not list((tmp_path / "out").rglob("*.png")) or setup in (_stale_out,)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(tmp_path, case):
    _check_case(tmp_path, case, sample_inprocess)


@pytest.mark.parametrize("case", ["batch size text", "missing checkpoint", "same stem", "non-finite weights"])
def test_real_process_exit_status_and_stderr(tmp_path, case):
    """The same cases as a real ``python sample.py`` process: exit status 1 and the reason on stderr."""
    _check_case(tmp_path, case, lambda *a: run("sample.py", *a, check=False))


def test_overwrite_removes_only_the_previous_runs_files(tmp_path):
    _stale_out(tmp_path)
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    _png(tmp_path / "out" / "reconstructions" / "do" / "extra.png")  # not in the manifest: not dirac's
    assert sample_inprocess(*_fast(["overwrite=true"]), f"hydra.run.dir={tmp_path / 'out'}").returncode == 0
    out = tmp_path / "out"
    assert (out / "mine.txt").read_text() == "keep me" and (out / "reconstructions" / "do" / "extra.png").is_file()
    assert not (out / "reconstructions" / "do" / "0000.png").exists()  # the stale output went
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert "reconstructions/t0.5/0000.png" in files and all((out / f).is_file() for f in files)
    assert OmegaConf.load(out / ".hydra" / "config.yaml").sampler.steps == 2  # Hydra's record, written by dirac


def test_samples_of_a_deterministic_point_are_flagged_not_passed_off_as_uncertainty(tmp_path):
    from dirac import DiracPipeline
    from dirac.sampling import ReverseSampler

    pipe = DiracPipeline.from_pretrained("blur_default")
    y = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    assert not pipe.sampler(1.0).stochastic and not pipe.sampler(0.5, step="deterministic").stochastic
    assert pipe.sampler(0.5).stochastic and isinstance(pipe.sampler(0.5), ReverseSampler)
    with pytest.warns(UserWarning, match="stops at t = 1.*2 samples are one image.*t_stop < 1"):
        out = pipe(y, t_stop=1.0, num_samples=2, return_dict=True, check_consistency=False)
    assert float(out.std.abs().max()) == 0.0  # what the warning says
    with pytest.warns(UserWarning, match="step is 'deterministic'.*step='euler'"):
        pipe(y, t_stop=0.5, num_samples=2, step="deterministic", check_consistency=False)
    with pytest.warns(UserWarning, match="point do: it stops at t = 1"):
        args = ["sampler.t_stop=do", "samples_per_measurement=2", f"hydra.run.dir={tmp_path / 'out'}"]
        assert sample_inprocess(*FAST, *args).returncode == 0


def test_uncertainty_peers_get_the_networks_of_compare_prior_and_regressor(tmp_path):
    """``up.methods=[regressor]`` used to fail after the K reverse runs, asking for compare.regressor (already
    resolved); the networks now come from the same loader as mode=compare's."""
    args = ["mode=up", "up.samples=2", "up.methods=[regressor]", f"hydra.run.dir={tmp_path / 'out'}"]
    assert sample_inprocess(*_fast(args)).returncode == 0
    points = json.loads((tmp_path / "out" / "up.json").read_text())["points"]
    assert "regressor" in points and points["regressor"]["uncertainty"] > 0


def test_overwrite_of_a_run_whose_hydra_record_is_not_in_its_manifest(tmp_path):
    """An earlier dirac let Hydra write .hydra/ unlisted: with a manifest beside it, it is that run's record and
    goes with its outputs; the new record is listed."""
    _stale_out(tmp_path)
    (tmp_path / "out" / ".hydra").mkdir()
    (tmp_path / "out" / ".hydra" / "config.yaml").write_text("old: run\n")
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    assert sample_inprocess(*_fast(["overwrite=true"]), f"hydra.run.dir={tmp_path / 'out'}").returncode == 0
    files = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert ".hydra/config.yaml" in files and "old: run" not in (tmp_path / "out" / ".hydra" / "config.yaml").read_text()
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


def test_hydra_writing_its_own_record_is_refused_with_the_setting_to_change(tmp_path):
    res = sample_inprocess(*_fast([]), "hydra.output_subdir=.hydra", f"hydra.run.dir={tmp_path / 'out'}")
    assert_clear_failure(res, "hydra.output_subdir", "leave it null")


def test_mixed_sizes_in_one_measurement_folder(tmp_path):
    _png(tmp_path / "m" / "a.png", (16, 16))
    _png(tmp_path / "m" / "sub" / "b.jpg", (20, 12))
    args = (
        "sampler.t_stop=0.5",
        "sampler.steps=2",
        f"measurements={tmp_path / 'm'}",
        f"hydra.run.dir={tmp_path / 'out'}",
    )
    assert sample_inprocess(*args).returncode == 0
    rec = tmp_path / "out" / "reconstructions" / "t0.5"
    assert Image.open(rec / "a.png").size == (16, 16) and Image.open(rec / "sub" / "b.png").size == (20, 12)
