"""End to end through the command-line entry points: train a tiny model, kill it, resume it, sample, sweep."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, run, tiny_training
from PIL import Image
from safetensors.torch import load_file

TINY = tiny_training()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny blur model trained for 6 steps straight through."""
    out = tmp_path_factory.mktemp("train")
    run("train.py", *TINY, "trainer.max_steps=6", f"hydra.run.dir={out}")
    return out


def test_train_writes_checkpoints_schedule_and_samples(trained):
    last = trained / "checkpoints" / "last"
    state = json.loads((last / "state.json").read_text())
    assert state["step"] == 6 and state["process"]["kind"] == "blur"
    assert state["process"]["schedule"]["kind"] == "greedy" and len(state["process"]["schedule"]["t"]) == 9
    for f in ("model.safetensors", "ema.safetensors", "optimizer.safetensors", "rng.safetensors"):
        assert (last / f).is_file()
    assert not list((trained / "checkpoints").glob(".tmp-*"))  # nothing half-written left behind
    assert list((trained / "samples").glob("*.png"))
    logs = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert logs[-1]["step"] == 6 and all(math.isfinite(r["train/loss"]) for r in logs if "train/loss" in r)


def test_killed_run_resumes_exactly(trained, tmp_path):
    """SIGKILL a run mid-training, resume it with resume=auto: the result equals the uninterrupted run."""
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "train.py", *TINY, "trainer.max_steps=1000", f"hydra.run.dir={out}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    last = out / "checkpoints" / "last"
    deadline = time.time() + 240
    while time.time() < deadline and not (last / "state.json").is_file():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (last / "state.json").is_file(), "the run never wrote a checkpoint"
    killed_at = json.loads((last / "state.json").read_text())["step"]
    assert 2 <= killed_at < 1000
    # continue to step 6 (further checkpoints beyond 6 from the killed run are impossible: it stopped early)
    if killed_at > 6:
        pytest.skip(f"the machine was fast enough to pass step 6 ({killed_at}) before the kill")
    res = run("train.py", *TINY, "trainer.max_steps=6", f"hydra.run.dir={out}")
    assert f"at step {killed_at}" in res.stderr + res.stdout
    a = load_file(str(trained / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(last / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) == 0.0


def test_resume_refuses_another_degradation(trained, tmp_path):
    res = run("train.py", *TINY, "degradation=inpaint", "trainer.max_steps=8", f"hydra.run.dir={trained}", check=False)
    assert res.returncode != 0 and "was trained with degradation=" in res.stderr + res.stdout


def test_sample_writes_metrics_grid_and_pngs(trained, tmp_path):
    out = tmp_path / "sample"
    ckpt = trained / "checkpoints" / "last"
    run(
        "sample.py",
        f"checkpoint={ckpt}",
        f"hydra.run.dir={out}",
        "num_images=6",
        "sampler.steps=4",
        "samples_per_measurement=2",
        "sampler.guidance=std",
        "sampler.guidance_strength=0.5",
    )
    m = json.loads((out / "metrics.json").read_text())
    full = m["points"]["full"]  # no choice file next to this checkpoint: t_stop=auto is one full run
    for key in ("psnr", "ssim", "swd"):
        assert math.isfinite(full[key])
    assert math.isfinite(m["measurement"]["psnr"]) and "full reverse run" in m["meaning"]["full"]
    assert full["num_images"] == 6 and full["samples_per_measurement"] == 2 and len(full["per_image"]) == 6
    assert full["timing"]["nfe_per_image"] == 5 and full["timing"]["wall_s"] > 0
    assert len(list((out / "reconstructions" / "full").glob("*.png"))) == 12
    assert len(list((out / "uncertainty" / "full").glob("*.png"))) == 6
    grid = json.loads((out / "figures" / "grid_001.json").read_text())
    assert Image.open(out / "figures" / "grid_001.png").size[0] > 16 * 4 and "checkpoint" in json.dumps(grid)
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert "metrics.json" in listed and all((out / f).is_file() for f in listed)


def test_sweep_then_sample_at_po_and_auto(trained, tmp_path):
    out = tmp_path / "sweep"
    ckpt = trained / "checkpoints" / "last"
    run(
        "sample.py",
        f"checkpoint={ckpt}",
        "mode=sweep",
        f"hydra.run.dir={out}",
        "num_images=8",
        "sampler.steps=4",
        "sweep.po_samples=2",
        "sweep.baselines=[tikhonov]",
    )
    choice = json.loads((out / "early_stopping.json").read_text())
    assert 0.0 <= choice["do"]["t"] <= 1.0 and 0.0 <= choice["po"]["t"] <= 1.0
    assert choice["weights"].startswith("sha256:")
    curves = json.loads((out / "sweep_curves.json").read_text())
    assert len(curves["psnr"]) == 5 and len(curves["data_consistency"]) == 5
    for fig in ("perception_distortion", "metrics_vs_t", "data_consistency", "schedule", "samples_001"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.json").is_file()
    m = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(m["test"]["do"]["psnr"]) and math.isfinite(m["test"]["po"]["swd"])
    assert m["test"]["tikhonov"]["lambda"] > 0 and "tikhonov_oracle" in m["test"]
    assert m["scores_on_val"]["tikhonov"]  # λ chosen on val; the oracle row is only for reference
    out2 = tmp_path / "po"
    run(
        "sample.py",
        f"checkpoint={ckpt}",
        f"hydra.run.dir={out2}",
        "num_images=4",
        "sampler.t_stop=po",
        f"choice={out / 'early_stopping.json'}",
    )
    m2 = json.loads((out2 / "metrics.json").read_text())
    assert list(m2["points"]) == ["po"] and m2["points"]["po"]["t_stop"] == pytest.approx(choice["po"]["t"])
    out3 = tmp_path / "auto"
    run(
        "sample.py",
        f"checkpoint={ckpt}",
        f"hydra.run.dir={out3}",
        "num_images=3",
        f"choice={out / 'early_stopping.json'}",
    )
    m3 = json.loads((out3 / "metrics.json").read_text())
    assert set(m3["points"]) == {"do", "po"} and "distortion" in m3["meaning"]["do"]
    for label in ("do", "po"):
        assert len(list((out3 / "reconstructions" / label).glob("*.png"))) == 3


def test_sample_on_a_folder_of_measurements(trained, tmp_path):
    folder = tmp_path / "mine" / "sub"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 100, 200)).save(folder / f"m{i}.png")
    out = tmp_path / "out"
    res = run(
        "sample.py",
        f"checkpoint={trained / 'checkpoints' / 'last'}",
        f"measurements={tmp_path / 'mine'}",
        f"hydra.run.dir={out}",
        "sampler.steps=3",
    )
    rec = out / "reconstructions" / "full" / "sub"
    assert sorted(p.name for p in rec.glob("*.png")) == ["m0.png", "m1.png", "m2.png"]
    m = json.loads((out / "metrics.json").read_text())
    assert "psnr" not in m["points"]["full"] and math.isfinite(m["points"]["full"]["data_consistency"])
    # flat noise-free squares are not measurements of the trained degradation: the mismatch check says so
    assert len(m["consistency_ratio"]) == 3 and min(m["consistency_ratio"]) < 0.75
    assert "DegradationMismatchWarning" in res.stderr and "less noise" in res.stderr


def test_sample_with_a_self_ensemble_runs_every_symmetry_and_records_it(trained, tmp_path):
    from helpers import sample

    common = [f"checkpoint={trained / 'checkpoints' / 'last'}", "num_images=2", "sampler.steps=3", "save_images=false"]
    plain = sample(tmp_path, "plain", *common)["points"]["full"]
    ens = sample(tmp_path, "ens", *common, "ensemble=dihedral")["points"]["full"]
    assert ens["ensemble"] == "dihedral" and "ensemble" not in plain
    assert ens["timing"]["nfe_per_image"] == 8 * plain["timing"]["nfe_per_image"]
    assert ens["psnr"] != plain["psnr"]
    folder = tmp_path / "mine"  # the user's own measurements, two sizes: the group is checked at each before any work
    folder.mkdir()
    for i, size in enumerate((16, 24)):
        Image.new("RGB", (size, 20), (60 * i, 90, 180)).save(folder / f"m{i}.png")
    own = sample(tmp_path, "own", *common[:2], "sampler.steps=3", f"measurements={folder}", "ensemble=flip",
                 "samples_per_measurement=2")  # fmt: skip
    assert own["points"]["full"]["timing"]["nfe_per_image"] == 2 * plain["timing"]["nfe_per_image"]
    assert len(own["consistency_ratio"]) == 2  # checked on the mean of each measurement's samples


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["degradation=inpaint"], "trained for the 'blur' degradation"),
        (["no_such_key=1"], "no_such_key"),
        (["sampler.step=heun"], "unknown sampler.step"),
        (["sampler.t_stop=po"], "early_stopping.json does not exist"),
        (["ensemble=rot45"], "ensemble must be null or one of flip|dihedral"),
        (["ensemble=[flip]"], "ensemble must be null or one of flip|dihedral"),
        (["+compare.ensemble.dirac_do=[flip]", "mode=compare"], "compare.ensemble must map a row"),
        (["mode=sweep", "ensemble=flip"], "ensemble= applies to mode=reconstruct"),
        (["compare.ensemble=''", "mode=compare"], "compare.ensemble must map a row"),
    ],
)
def test_sample_bad_input_errors(trained, tmp_path, args, message):
    res = run(
        "sample.py", f"checkpoint={trained / 'checkpoints' / 'last'}", f"hydra.run.dir={tmp_path}", *args, check=False
    )
    assert res.returncode != 0 and message in res.stdout + res.stderr


def test_train_bad_input_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(
        "train.py",
        *[a for a in TINY if not a.startswith("data.train")],
        "data=folder",
        f"data.root={empty}",
        "trainer.max_steps=1",
        f"hydra.run.dir={tmp_path / 'r'}",
        check=False,
    )
    assert res.returncode != 0 and "no images" in (res.stdout + res.stderr).lower()
    res = run(
        "train.py",
        "model=ncsnpp_small",
        "data.image_size=30",
        "trainer.max_steps=1",
        f"hydra.run.dir={tmp_path / 'r2'}",
        check=False,
    )
    assert res.returncode != 0 and "multiple of 4" in res.stdout + res.stderr


def test_multirun_sweep_over_guidance_strength(trained, tmp_path):
    """Hydra -m over guidance strength: one sweep per value, each with its own choice file and metrics."""
    run(
        "sample.py",
        "-m",
        f"checkpoint={trained / 'checkpoints' / 'last'}",
        "mode=sweep",
        "num_images=4",
        "sampler.steps=3",
        "sweep.po_samples=1",
        "sweep.baselines=[]",
        "save_images=false",
        "sampler.guidance=std",
        "sampler.guidance_strength=0,0.5",
        f"hydra.sweep.dir={tmp_path}",
    )
    strengths = []
    for job in ("0", "1"):
        m = json.loads((tmp_path / job / "metrics.json").read_text())
        assert (tmp_path / job / "early_stopping.json").is_file() and math.isfinite(m["test"]["do"]["psnr"])
        strengths.append(m["choice"]["sampler"]["guidance_strength"])
    assert sorted(strengths) == [0.0, 0.5]


def test_wandb_logger_runs_offline(tmp_path):
    """logger=wandb never needs network: offline by default, the run lands under the run folder."""
    pytest.importorskip("wandb")  # an optional extra: pip install "dirac[wandb]"
    quiet = {"WANDB_MODE": None, "WANDB_SILENT": "true"}  # no WANDB_MODE: the config's offline mode decides
    run("train.py", *TINY, "logger=wandb", "trainer.max_steps=2", f"hydra.run.dir={tmp_path}", env=quiet)
    assert list(tmp_path.rglob("offline-run-*")), "no offline wandb run written"
    assert (tmp_path / "checkpoints" / "last" / "state.json").is_file()


def test_export_keeps_ema_weights_and_samples_identically(trained, tmp_path):
    """python -m dirac.export: a small inference checkpoint that samples exactly like the EMA of the source."""
    src = trained / "checkpoints" / "last"
    dst = tmp_path / "exported"
    subprocess.run([sys.executable, "-m", "dirac.export", str(src), str(dst)], cwd=ROOT, check=True)
    assert sorted(f.name for f in dst.iterdir()) == ["model.safetensors", "state.json"]
    ema = load_file(src / "ema.safetensors")
    exported = load_file(dst / "model.safetensors")
    assert exported.keys() == ema.keys() and all((exported[k] == ema[k]).all() for k in ema)
    figures = []
    for ckpt in (src, dst):
        out = tmp_path / f"sample_{ckpt.name}"  # never into the checkpoint folder (refused: files dirac didn't write)
        run("sample.py", f"checkpoint={ckpt}", f"hydra.run.dir={out}", "num_images=4", "sampler.steps=3")
        figures.append(json.loads((out / "metrics.json").read_text())["points"]["full"]["psnr"])
    assert figures[0] == pytest.approx(figures[1], abs=1e-6)
