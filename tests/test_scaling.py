"""Scaling options in one process: sharding arithmetic, NumPy scalars removed for torch.compile, bf16 and compiled
networks against float32 eager, the optional wandb extra. Multi-process launches are in test_distributed.py."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest
import torch
from helpers import assert_one_line, sample, tiny_training, train_tiny

import dirac.distributed as dd
from dirac.models import build_ncsnpp
from dirac.models.ncsnpp import python_floats


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_shards_cover_the_set_in_order(monkeypatch, size):
    for n in range(0, 12):
        parts = []
        for rank in range(size):
            monkeypatch.setattr(dd, "world", lambda r=rank: (r, size))
            parts.append(dd.shard(n))
        assert [i for p in parts for i in p] == list(range(n))  # rank order = the single-process order
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_ncsnpp("tiny").eval()
    with torch.no_grad():
        for p in net.parameters():  # the output layers start at zero: give every layer a say
            p.normal_(0, 0.05)
    return net


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 3, 16, 16, generator=g), torch.tensor([0.01, 0.03, 0.05])


def test_numpy_scalars_are_python_floats_and_outputs_do_not_change():
    net = _net()
    found = [(m, k) for m in net.modules() for k in ("output_scale_factor", "rescale_output_factor") if hasattr(m, k)]
    assert found and not any(isinstance(getattr(m, k), np.generic) for m, k in found)
    y, s = _inputs()
    with torch.no_grad():
        ours = net(y, s)
        for m, k in found:  # diffusers' own NumPy scalars back
            setattr(m, k, np.float64(getattr(m, k)))
        theirs = net(y, s)
    assert python_floats(net) == len(found)
    assert torch.equal(ours, theirs)


def test_bf16_network_stays_close_to_float32():
    net = _net()
    y, s = _inputs()
    with torch.no_grad():
        ref = net(y, s)
        low = net.set_precision("bf16")(y, s)
    assert low.dtype == torch.float32
    err = (low - ref).abs().max().item()
    assert 0 < err < 0.05 * ref.abs().max().item()  # bf16 changes the result, a little
    with pytest.raises(ValueError, match="mixed_precision"):
        net.set_precision("fp8")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_network_matches_eager(backend):
    """Forward and input gradient (what guidance uses) of a compiled tiny NCSN++ against eager."""
    if backend == "inductor" and not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("inductor on CPU needs a C compiler")
    if backend == "inductor" and not os.environ.get("DIRAC_TEST_INDUCTOR"):
        # compiling C++ kernels took > 10 min on 2 busy cores: too slow for CI's budget; run it on purpose
        pytest.skip("set DIRAC_TEST_INDUCTOR=1 to compile with inductor (minutes of C++ compilation on a CPU)")
    eager, compiled = _net(), _net().compile_unet(backend)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints keep their names
    y, s = _inputs()
    outs = []
    for net in (eager, compiled):
        x = y.clone().requires_grad_(True)
        out = net(x, s)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        outs.append((out.detach(), grad))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5, rtol=1e-5)
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-4, rtol=1e-4)


def test_missing_wandb_is_a_one_line_error_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(SystemExit) as err:
        train_tiny(tmp_path / "run", tiny_training(logger="wandb", trainer__max_steps=2))
    assert_one_line(str(err.value.code), "logger=wandb", 'pip install "dirac[wandb]"')
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bf16_training_runs_and_stays_finite(tmp_path):
    out = tmp_path / "bf16"
    train_tiny(out, tiny_training(trainer__max_steps=2, trainer__mixed_precision="bf16", trainer__cpu="true"))
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["train/loss"]) for r in log)


@pytest.mark.slow
def test_wandb_offline_logs_sample_grids_and_figures(tmp_path):
    """Training logs its sample grids, sample.py its figures, into offline runs under RUN/wandb/ (no network)."""
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    overrides = tiny_training(logger="wandb", trainer__max_steps=2, **{"logger.project": "dirac-test"})
    train_tiny(out, [*overrides, "logger.tags=[ci,tiny]"])
    (run,) = (out / "wandb").glob("offline-run-*")
    assert list(run.rglob("media/images/samples*.png")), "no sample grid was logged"
    assert list(run.glob("*.wandb"))
    args = [f"checkpoint={out / 'checkpoints' / 'last'}", "num_images=2", "sampler.steps=2", "sampler.t_stop=0",
            "metrics=[psnr]", "logger=wandb", "logger.mode=offline"]  # fmt: skip
    sample(tmp_path, "s", *args)
    (run,) = (tmp_path / "s" / "wandb").glob("offline-run-*")
    assert list(run.rglob("media/images/figures/grid*.png")), "no figure was logged"
    assert "wandb/" not in " ".join(json.loads((tmp_path / "s" / "manifest.json").read_text())["files"])


@pytest.mark.parametrize(
    ("override", "words"),
    [("mixed_precision=fp8", ["mixed_precision", "bf16"]), ("compile=maybe", ["compile", "true or false"])],
)
def test_bad_speed_options_of_sample_are_named(tmp_path, override, words):
    with pytest.raises(ValueError) as err:
        sample(tmp_path, "bad", override)
    assert_one_line(str(err.value), *words)
    assert not (tmp_path / "bad").exists()


def test_sample_in_bf16_stays_close_to_float32(tmp_path):
    args = ["num_images=2", "sampler.steps=2", "sampler.t_stop=1", "metrics=[psnr]", "device=cpu"]
    fp32 = sample(tmp_path, "fp32", *args)["points"]["t1"]["psnr"]
    bf16 = sample(tmp_path, "bf16", *args, "mixed_precision=bf16")["points"]["t1"]["psnr"]
    assert fp32 != bf16 and abs(fp32 - bf16) < 0.05
