"""Several processes on CPU (gloo): training and sampling launched as a user would, checked for the properties
that matter — identical weights on every rank, one set of output files, the learning rate on the global step, an
exact resume, and sampling results equal to a single-process run.

Marked ``distributed`` (skipped by the default ``pytest`` run, run by CI: ``pytest -m "distributed or slow"``).
Each launch is a few steps of the tiny network; every launch gets its own free port.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
from helpers import run, sample, tiny_training
from safetensors.torch import load_file

from dirac.checkpoint import load_nested, read_state, tensors_sha256
from dirac.training import lr_factor, train_config_from_dict

pytestmark = pytest.mark.distributed
THREADS = {"OMP_NUM_THREADS": "1"}
TRAIN = tiny_training(trainer__max_steps=4, trainer__warmup_steps=3, trainer__lr=0.01)


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


# a launch takes ~20–60 s on an idle 2-core machine; a loaded one needs far more (DIRAC_LAUNCH_TIMEOUT seconds)
TIMEOUT = int(os.environ.get("DIRAC_LAUNCH_TIMEOUT", "900"))


def launch(script: str, *args: str, processes: int = 2, timeout: int = TIMEOUT):
    """``accelerate launch --multi_gpu --num_processes N SCRIPT ARGS`` with ``trainer.cpu=true``/``device=cpu``
    in the arguments: N gloo processes on the CPU (``--cpu`` alone would start one)."""
    flags = f"--multi_gpu --num_processes {processes} --num_machines 1 --mixed_precision no --dynamo_backend no"
    return run(f"-m accelerate.commands.launch {flags} --main_process_port {free_port()} {script}", *args,
               timeout=timeout, env=THREADS)  # fmt: skip


def train2(out: Path, *extra: str):
    return launch("train.py", *TRAIN, "trainer.cpu=true", f"hydra.run.dir={out}", *extra)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """4 steps on 2 processes, checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("straight") / "run"
    train2(out)
    return out


def test_two_processes_train_in_sync_and_write_one_set_of_files(straight):
    summary = json.loads((straight / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["effective_batch_size"] == 2 * 8
    last = straight / "checkpoints" / "last"
    state = read_state(last)
    hashes = state["weights_sha256_per_rank"]
    assert len(hashes) == 2 and hashes[0] == hashes[1] == tensors_sha256(load_file(last / "model.safetensors"))
    # every rank's RNG states, and they differ (each rank draws its own noise)
    ranks = load_nested(last / "rng.safetensors")["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["generator"], ranks[1]["generator"])
    # exactly one set of outputs: the run folder alone in its parent, no temporary or duplicate files
    assert [p.name for p in straight.parent.iterdir()] == ["run"]
    assert sorted(p.name for p in (straight / "checkpoints").iterdir()) == [
        ".dirac-training",
        "last",
        "step_0000002",
        "step_0000004",
    ]
    log = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # one line per step, not one per process
    assert sorted(p.name for p in (straight / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]


def test_learning_rate_follows_the_global_step(straight):
    """Warm-up over 3 optimiser steps, then cosine: lr after step k is lr·factor(k), however many processes."""
    cfg = train_config_from_dict(read_state(straight / "checkpoints" / "last")["config"]["trainer"])
    assert cfg.warmup_steps == 3 and cfg.lr == 0.01
    log = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    for rec in log:
        assert rec["lr"] == pytest.approx(cfg.lr * lr_factor(rec["step"], cfg), rel=1e-6)


def test_two_process_run_stopped_and_resumed_equals_the_straight_run(straight, tmp_path):
    out = tmp_path / "halves"
    train2(out, "trainer.max_steps=2")
    train2(out)  # resume=auto from step 2, each rank with its own RNG states
    assert read_state(out / "checkpoints" / "last")["step"] == 4
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = (load_file(r / "checkpoints" / "last" / name) for r in (straight, out))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_resume_with_another_number_of_processes_is_refused(straight, tmp_path):
    import shutil

    out = Path(shutil.copytree(straight, tmp_path / "copy", symlinks=True))
    proc = run("train.py", *TRAIN, "trainer.cpu=true", "trainer.max_steps=6", f"hydra.run.dir={out}", check=False,
               env=THREADS)  # fmt: skip
    assert proc.returncode != 0
    assert "2 process(es), this run has 1" in proc.stderr + proc.stdout


def _per_image(folder: Path) -> dict[str, list[float]]:
    m = json.loads((folder / "metrics.json").read_text())
    return {f"{lb}/{k}": [row[k] for row in p["per_image"]] for lb, p in m["points"].items() for k in ("psnr", "ssim")}


def test_sampling_on_two_processes_equals_one_process(tmp_path):
    """The shipped blur model on 4 test images, batch size 2: rank 0 reconstructs images 0–1, rank 1 images 2–3
    (the same batches as one process), each image with its own seeded noise; the gathered outputs, per-image
    metrics and files equal a single-process run exactly, and only one set of files is written."""
    args = ["checkpoint=blur_default", "num_images=4", "batch_size=2", "sampler.steps=4", "sampler.t_stop=0",
            "metrics=[psnr,ssim]", "device=cpu"]  # fmt: skip
    torch.set_num_threads(1)
    sample(tmp_path, "one", *args)
    launch("sample.py", *args, f"hydra.run.dir={tmp_path / 'two'}")
    one, two = tmp_path / "one", tmp_path / "two"
    a, b = _per_image(one), _per_image(two)
    assert a.keys() == b.keys() and all(len(v) == 4 for v in a.values())
    assert a == b  # bit for bit (same batches); other batchings agree to float rounding
    files = json.loads((two / "manifest.json").read_text())["files"]
    record = [".hydra/config.yaml", ".hydra/overrides.yaml"]  # the CLI's record; run() in this process writes none
    assert files[:2] == record and all((two / f).is_file() for f in record)
    assert json.loads((one / "manifest.json").read_text())["files"] == files[2:] and len(files) == len(set(files))
    pngs = [f for f in files if f.endswith(".png") and f.startswith(("reconstructions/", "measurements/"))]
    assert len(pngs) == 8
    for f in pngs:
        assert (two / f).read_bytes() == (one / f).read_bytes(), f
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-m", "distributed", "-q"]))
