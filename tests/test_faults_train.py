"""Fault injection on the training side: damaged checkpoints, export into occupied folders, retention, non-finite
training, resume under changed configs, a second training in the same folder, SIGKILL during a checkpoint write.

Every case asserts the exit status (or exception), a one-line message naming the problem and that no file which
existed before was changed (checksums before/after). Pure checkpoint/export cases run in-process; training runs
in-process through :func:`dirac.cli.train.run` (the body of the command line) and in subprocesses only where a
second process is the point (kill, lock) or the command line itself is under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, assert_clear_failure, assert_one_line, checksums, run, tiny_training, unchanged
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors.torch import load_file

from dirac import export
from dirac.checkpoint import (
    CheckpointError,
    is_intact,
    list_checkpoints,
    read_state,
    read_weights,
    rng_state,
    step_of,
    verify_checkpoint,
    write_checkpoint,
)
from dirac.cli.train import run as train_run
from dirac.factory import load_checkpoint, model_from_config, process_from_config
from dirac.losses import IncrementalReconstructionLoss
from dirac.shipped import config_dir, pretrained_dir
from dirac.training import Trainer

TINY = tiny_training(model__dropout=0.1, trainer__sample_steps=2, schedule__num_steps=4, schedule__num_candidates=10)


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return compose(config_name="train", overrides=[*TINY, *overrides])


def train_in_process(out: Path, *overrides: str) -> dict:
    return train_run(compose_cfg(*overrides), out, record=False)


def refused(out: Path, *overrides: str) -> str:
    """Run a training that must be refused; returns its one-line message."""
    with pytest.raises(SystemExit) as err:
        train_in_process(out, *overrides)
    msg = str(err.value.code)
    assert msg.startswith("error: ")
    return msg


# ----------------------------------------------------------------------------------------------------------------
# a checkpoint written in-process (no training): corruption cases
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_ckpt(tmp_path_factory) -> Path:
    c = OmegaConf.to_container(compose_cfg(), resolve=True)
    torch.manual_seed(0)
    net = model_from_config(c["model"])
    opt = torch.optim.Adam(net.parameters())
    folder = tmp_path_factory.mktemp("ck") / "step_0000002"
    write_checkpoint(
        folder,
        model=net.state_dict(),
        ema={k: v + 0.5 for k, v in net.state_dict().items()},
        optimizer={"optimizer": opt.state_dict(), "lr_scheduler": {}, "ema_n_averaged": torch.tensor(1)},
        rng=rng_state(),
        state={"step": 2, "config": c, "model": c["model"], "process": process_from_config(c["degradation"]).to_dict()},
    )
    return folder


@pytest.fixture
def ckpt(base_ckpt, tmp_path) -> Path:
    return Path(shutil.copytree(base_ckpt, tmp_path / "run" / base_ckpt.name))


def _truncate(f: Path, keep: float) -> None:
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * keep)])


def _flip_data_byte(f: Path) -> None:
    raw = bytearray(f.read_bytes())
    header = int.from_bytes(raw[:8], "little")
    raw[8 + header + 16] ^= 0xFF  # a tensor byte, not the header: only the recorded checksum can tell
    f.write_bytes(bytes(raw))


def _edit_state(folder: Path, **changes) -> None:
    state = json.loads((folder / "state.json").read_text())
    for k, v in changes.items():
        if v is _DROP:
            state.pop(k)
        else:
            state[k] = v
    (folder / "state.json").write_text(json.dumps(state))


_DROP = object()
_BIG = {"image_size": 16, "channels": 3, "block_out_channels": [4096] * 4, "layers_per_block": 2}


def _reads(kind: str):
    return {
        "state": read_state,
        "raw": lambda d: read_weights(d, ema=False),
        "ema": lambda d: read_weights(d, ema=True),
        "train": lambda d: verify_checkpoint(d, training=True),
        "load": load_checkpoint,
    }[kind]


CORRUPTIONS = [
    ("state_truncated", lambda d: _truncate(d / "state.json", 0.5), "state", CheckpointError, ["state.json", "trunc"]),
    ("state_empty", lambda d: (d / "state.json").write_text(""), "state", CheckpointError, ["state.json", "corrupt"]),
    (
        "state_binary",
        lambda d: (d / "state.json").write_bytes(b"\xff\xfe\x00\x81"),
        "state",
        CheckpointError,
        ["state.json"],
    ),
    ("state_list", lambda d: (d / "state.json").write_text("[1, 2]"), "state", CheckpointError, ["not a dirac state"]),
    ("version_missing", lambda d: _edit_state(d, format_version=_DROP), "state", CheckpointError, ["format_version"]),
    (
        "version_string",
        lambda d: _edit_state(d, format_version="1"),
        "state",
        CheckpointError,
        ["invalid format_version"],
    ),
    ("version_zero", lambda d: _edit_state(d, format_version=0), "state", CheckpointError, ["invalid format_version"]),
    (
        "version_float",
        lambda d: _edit_state(d, format_version=1.0),
        "state",
        CheckpointError,
        ["invalid format_version"],
    ),
    (
        "version_newer",
        lambda d: _edit_state(d, format_version=99),
        "state",
        CheckpointError,
        ["newer", "upgrade dirac"],
    ),
    (
        "model_truncated",
        lambda d: _truncate(d / "model.safetensors", 0.6),
        "raw",
        CheckpointError,
        ["model.safetensors"],
    ),
    (
        "model_truncated_unrecorded",
        lambda d: (_edit_state(d, files=_DROP), _truncate(d / "model.safetensors", 0.6)),
        "raw",
        CheckpointError,
        ["model.safetensors", "corrupt or truncated"],
    ),
    (
        "model_empty",
        lambda d: (d / "model.safetensors").write_bytes(b""),
        "raw",
        CheckpointError,
        ["model.safetensors"],
    ),
    (
        "model_bad_header",
        lambda d: (d / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{not js}"),
        "raw",
        CheckpointError,
        ["model.safetensors", "corrupt"],
    ),
    (
        "model_bitflip",
        lambda d: _flip_data_byte(d / "model.safetensors"),
        "raw",
        CheckpointError,
        ["model.safetensors", "checksum"],
    ),
    ("ema_truncated", lambda d: _truncate(d / "ema.safetensors", 0.3), "ema", CheckpointError, ["ema.safetensors"]),
    (
        "ema_bitflip",
        lambda d: _flip_data_byte(d / "ema.safetensors"),
        "ema",
        CheckpointError,
        ["ema.safetensors", "checksum"],
    ),
    (
        "optimizer_truncated",
        lambda d: _truncate(d / "optimizer.safetensors", 0.5),
        "train",
        CheckpointError,
        ["optimizer.safetensors"],
    ),
    (
        "rng_missing",
        lambda d: (d / "rng.safetensors").unlink(),
        "train",
        CheckpointError,
        ["rng.safetensors", "missing"],
    ),
    (
        "rng_garbage",
        lambda d: (d / "rng.safetensors").write_bytes(os.urandom(64)),
        "train",
        CheckpointError,
        ["rng.safetensors"],
    ),
    ("state_missing", lambda d: (d / "state.json").unlink(), "state", FileNotFoundError, ["not a dirac checkpoint"]),
    ("model_missing", lambda d: (d / "model.safetensors").unlink(), "raw", FileNotFoundError, ["model.safetensors"]),
    ("folder_missing", lambda d: shutil.rmtree(d), "load", FileNotFoundError, ["does not exist"]),
    ("lacks_process", lambda d: _edit_state(d, process=_DROP), "load", CheckpointError, ["state.json", "process"]),
    ("lacks_step", lambda d: _edit_state(d, step=_DROP), "train", CheckpointError, ["state.json", "step"]),
    (
        "model_unknown_key",
        lambda d: _edit_state(d, model={"bogus": 1}),
        "load",
        ValueError,
        ["invalid network config", "state.json", "bogus"],
    ),
    ("model_too_big", lambda d: _edit_state(d, model=_BIG), "load", ValueError, ["parameters", "DIRAC_MAX_PARAMS"]),
    (
        "model_mismatch",
        lambda d: _edit_state(d, model={**_edit_model(d), "block_out_channels": [16, 16]}),
        "load",
        CheckpointError,
        ["does not match"],
    ),
    ("process_garbage", lambda d: _edit_state(d, process={"kind": "nope"}), "load", CheckpointError, ["cannot load"]),
]


def _edit_model(d: Path) -> dict:
    return json.loads((d / "state.json").read_text())["model"]


@pytest.mark.parametrize(
    ("mutate", "kind", "exc", "words"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS]
)
def test_damaged_checkpoint_is_a_one_line_error(ckpt, mutate, kind, exc, words):
    mutate(ckpt)
    before = checksums(ckpt.parent)
    with pytest.raises(exc) as err:
        _reads(kind)(ckpt)
    assert_one_line(str(err.value), *words)
    if kind != "load":  # the "load" cases are damaged configs, not damaged files
        assert not is_intact(ckpt, training=True)
    assert unchanged(before, checksums(ckpt.parent)) == []


def test_intact_checkpoint_passes_every_check(ckpt):
    assert is_intact(ckpt, training=True) and read_state(ckpt)["files"]["model.safetensors"]["bytes"] > 0
    model, _, state = load_checkpoint(ckpt)
    assert state["step"] == 2 and sum(p.numel() for p in model.parameters()) > 0


def test_failed_write_replaces_nothing_and_leaves_no_partial_folder(ckpt, monkeypatch):
    import dirac.checkpoint as checkpoint

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    before = checksums(ckpt.parent)
    monkeypatch.setattr(checkpoint, "save_tensors", disk_full)
    with pytest.raises(OSError) as err:
        write_checkpoint(ckpt, model={"w": torch.zeros(2)}, state={"step": 3})
    assert_one_line(str(err.value), str(ckpt), "No space left", "previous checkpoints are intact")
    assert checksums(ckpt.parent) == before and is_intact(ckpt, training=True)


def test_parameter_limit_is_read_from_the_environment(monkeypatch, ckpt):
    monkeypatch.setenv("DIRAC_MAX_PARAMS", "1000")
    with pytest.raises(ValueError) as err:
        load_checkpoint(ckpt)
    assert_one_line(str(err.value), "above the limit of 1,000", "DIRAC_MAX_PARAMS=")
    monkeypatch.setenv("DIRAC_MAX_PARAMS", "lots")
    with pytest.raises(ValueError) as err:
        load_checkpoint(ckpt)
    assert_one_line(str(err.value), "DIRAC_MAX_PARAMS must be a positive integer")


# ----------------------------------------------------------------------------------------------------------------
# export: never deletes what dirac did not write
# ----------------------------------------------------------------------------------------------------------------


def _user_folder(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("my thesis")
    return d


EXPORT_REFUSALS = [
    ("user_folder", lambda t, s: _user_folder(t / "dst"), [], ["not empty", "--overwrite"]),
    ("user_folder_overwrite", lambda t, s: _user_folder(t / "dst"), ["--overwrite"], ["not a dirac checkpoint"]),
    ("checkpoint_plus_user_file", lambda t, s: _ckpt_with_extra(t / "dst", s), ["--overwrite"], ["notes.txt"]),
    ("dst_is_file", lambda t, s: _file(t / "dst"), ["--overwrite"], ["not a folder"]),
    ("dst_is_symlink", lambda t, s: _link(t / "dst", _user_folder(t / "elsewhere")), ["--overwrite"], ["not a folder"]),
    ("dst_is_src", lambda t, s: s, ["--overwrite"], ["overlaps"]),
    ("dst_inside_src", lambda t, s: s / "sub", ["--overwrite"], ["overlaps"]),
    ("src_is_dst_parent_child", lambda t, s: s.parent, ["--overwrite"], ["overlaps"]),
]


def _file(p: Path) -> Path:
    p.write_text("x")
    return p


def _link(p: Path, target: Path) -> Path:
    p.symlink_to(target)
    return p


def _ckpt_with_extra(d: Path, src: Path) -> Path:
    shutil.copytree(src, d)
    (d / "notes.txt").write_text("keep me")
    return d


@pytest.mark.parametrize(
    ("make", "flags", "words"), [c[1:] for c in EXPORT_REFUSALS], ids=[c[0] for c in EXPORT_REFUSALS]
)
def test_export_refuses_to_replace_what_it_did_not_write(ckpt, tmp_path, make, flags, words):
    dst = make(tmp_path, ckpt)
    before = checksums(tmp_path)
    with pytest.raises(SystemExit) as err:
        export.main([str(ckpt), str(dst), *flags])
    assert_one_line(str(err.value.code), "error:", *words)
    assert unchanged(before, checksums(tmp_path)) == [] and set(checksums(tmp_path)) == set(before)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: _truncate(d / "ema.safetensors", 0.5), ["ema.safetensors", "corrupt"]),
        (lambda d: _edit_state(d, format_version=7), ["newer"]),
        (lambda d: (d / "state.json").unlink(), ["not a dirac checkpoint"]),
    ],
    ids=["src_truncated", "src_newer", "src_not_checkpoint"],
)
def test_export_of_a_damaged_source_writes_nothing(ckpt, tmp_path, mutate, words):
    mutate(ckpt)
    before = checksums(tmp_path)
    with pytest.raises(SystemExit) as err:
        export.main([str(ckpt), str(tmp_path / "dst")])
    assert_one_line(str(err.value.code), *words)
    assert not (tmp_path / "dst").exists() and unchanged(before, checksums(tmp_path)) == []


@pytest.mark.parametrize("existing", ["absent", "empty", "checkpoint"])
def test_export_writes_absent_empty_or_replaces_a_checkpoint(ckpt, tmp_path, existing, capsys):
    dst = tmp_path / "dst"
    if existing == "empty":
        dst.mkdir()
    elif existing == "checkpoint":
        export.main([str(ckpt), str(dst), "--raw"])
    export.main([str(ckpt), str(dst), *(["--overwrite"] if existing == "checkpoint" else [])])
    assert sorted(p.name for p in dst.iterdir()) == ["model.safetensors", "state.json"]
    exported, ema = load_file(dst / "model.safetensors"), load_file(ckpt / "ema.safetensors")
    assert all(torch.equal(exported[k], ema[k]) for k in ema)
    assert is_intact(dst) and sorted(p.name for p in tmp_path.iterdir()) == ["dst", "run"]  # no .tmp-/.old- left
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["exported"] == str(dst)


# ----------------------------------------------------------------------------------------------------------------
# retention by numeric step
# ----------------------------------------------------------------------------------------------------------------


def _prune(ckpt_dir: Path, keep: int, protected: tuple[str, ...] = ()) -> list[str]:
    fake = SimpleNamespace(
        ckpt_dir=ckpt_dir, cfg=SimpleNamespace(keep_checkpoints=keep), protected={ckpt_dir / p for p in protected}
    )
    return sorted(p.name for p in Trainer.prune(fake))


def _steps(d: Path, *names: str) -> None:
    for n in names:
        (d / n).mkdir(parents=True)
        (d / n / "state.json").write_text("{}")


def test_checkpoints_sort_by_number_not_name(tmp_path):
    _steps(tmp_path, "step_999", "step_0000100", "step_10000000", "step_1000")
    (tmp_path / ".tmp-step_0000001-42").mkdir()
    (tmp_path / "step_5.bak").mkdir()
    os.symlink("step_1000", tmp_path / "last")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000100", "step_999", "step_1000", "step_10000000"]
    assert step_of("step_0000100") == 100 and step_of("last") is None and step_of("step_5.bak") is None
    os.unlink(tmp_path / "last")
    os.symlink("step_10000000", tmp_path / "last")
    assert _prune(tmp_path, keep=2) == ["step_0000100", "step_999"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-step_0000001-42",
        "last",
        "step_1000",
        "step_10000000",
        "step_5.bak",
    ]


def test_retention_keeps_the_resume_source_newer_steps_and_last(tmp_path):
    _steps(tmp_path, "step_0000003", "step_0000005", "step_0000007", "step_0000008", "step_0000009")
    os.symlink("step_0000003", tmp_path / "last")  # odd, but whatever last points to is never deleted
    deleted = _prune(tmp_path, keep=1, protected=("step_0000005", "step_0000007"))
    assert deleted == ["step_0000008"]
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_0000003",
        "step_0000005",
        "step_0000007",
        "step_0000009",
    ]


# ----------------------------------------------------------------------------------------------------------------
# training in-process: non-finite, resume checks, bad configs
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """4 steps with dropout 0.1, checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("trained")
    train_in_process(out, "trainer.max_steps=4")
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run", symlinks=True))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_dropout_run_stopped_and_resumed_is_bit_exact(trained, tmp_path):
    """2 steps, a new process-level start from the checkpoint, 2 more: identical to 4 straight (dropout 0.1)."""
    out = tmp_path / "halves"
    train_in_process(out, "trainer.max_steps=2")
    torch.manual_seed(12345)  # history must not matter: scramble the global RNG between the halves
    torch.rand(1000)
    train_in_process(out, "trainer.max_steps=4")
    a, b = _weights(trained / "checkpoints" / "last"), _weights(out / "checkpoints" / "last")
    assert read_state(out / "checkpoints" / "last")["step"] == 4
    assert all(torch.equal(a[k], b[k]) for k in a)


def _nan_after(monkeypatch, calls: int, target: str) -> None:
    """From the ``calls``-th training step on, make the loss (``loss``) or the weights (``weights``) NaN."""
    n = {"calls": 0}
    if target == "loss":
        original = IncrementalReconstructionLoss.__call__

        def poisoned(self, *a, **k):
            n["calls"] += 1
            out = original(self, *a, **k)
            return out * float("nan") if n["calls"] >= calls else out

        monkeypatch.setattr(IncrementalReconstructionLoss, "__call__", poisoned)
    else:
        original = torch.optim.Adam.step

        def poisoned(self, *a, **k):
            n["calls"] += 1
            out = original(self, *a, **k)
            if n["calls"] >= calls:
                with torch.no_grad():
                    self.param_groups[0]["params"][0].fill_(float("nan"))
            return out

        monkeypatch.setattr(torch.optim.Adam, "step", poisoned)


@pytest.mark.parametrize(("target", "words"), [("loss", ["loss became nan"]), ("weights", ["weights became nan"])])
def test_non_finite_training_keeps_the_last_good_checkpoint(monkeypatch, tmp_path, target, words):
    out = tmp_path / "nan"
    _nan_after(monkeypatch, 3, target)
    msg = refused(out, "trainer.max_steps=6", "trainer.checkpoint_every=1", "trainer.val_every=1")
    assert_one_line(msg, *words, "last -> step_0000002", "trainer.lr")
    ckpts = out / "checkpoints"
    assert [p.name for p in list_checkpoints(ckpts)] == ["step_0000001", "step_0000002"]
    assert os.readlink(ckpts / "last") == "step_0000002" and is_intact(ckpts / "last", training=True)
    assert all(torch.isfinite(t).all() for t in _weights(ckpts / "last").values())
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000001.png", "step_0000002.png"]
    assert not (out / "train_summary.json").exists()


def test_changed_learning_rate_is_applied_when_allowed(run_copy):
    train_in_process(run_copy, "trainer.max_steps=6", "trainer.lr=0.02", "resume_allow_changes=true")
    state = read_state(run_copy / "checkpoints" / "last")
    assert state["step"] == 6 and state["config"]["trainer"]["lr"] == 0.02
    assert state["config_changes"] == [{"step": 4, "changes": ["trainer.lr: 0.001 -> 0.02"]}]
    logs = [json.loads(line) for line in (run_copy / "train_log.jsonl").read_text().splitlines()]
    warm = 100  # configs/trainer/cpu.yaml warm-up: lr = base * (step + 1) / warm at the step's update
    # the lr logged at step s is the one for the next update: base * (s + 1) / warm
    assert logs[-1]["step"] == 6 and logs[-1]["lr"] == pytest.approx(0.02 * 7 / warm)
    assert logs[3]["step"] == 4 and logs[3]["lr"] == pytest.approx(0.001 * 5 / warm)


def test_safe_changes_need_no_permission(run_copy):
    train_in_process(run_copy, "trainer.max_steps=5", "trainer.log_every=3", "trainer.keep_checkpoints=1")
    assert read_state(run_copy / "checkpoints" / "last")["step"] == 5
    # keep 1, but the checkpoint this run resumed from (step 4) is protected
    assert [p.name for p in list_checkpoints(run_copy / "checkpoints")] == ["step_0000004", "step_0000005"]


def _break_last(out: Path, how: str) -> None:
    ck = out / "checkpoints"
    if how == "truncated":
        _truncate(ck / "step_0000004" / "model.safetensors", 0.5)
    elif how == "dangling":
        os.unlink(ck / "last")
        os.symlink("step_0000099", ck / "last")
    elif how == "missing":
        os.unlink(ck / "last")
    elif how == "stale":
        os.unlink(ck / "last")
        os.symlink("step_0000002", ck / "last")
    elif how == "state_garbage":
        (ck / "step_0000004" / "state.json").write_text('{"format_version": 1, "step": ')


RESUME_REFUSALS = [
    ("last_truncated", "truncated", [], ["model.safetensors", "intact checkpoints: step_0000002", "resume="]),
    ("last_dangling", "dangling", [], ["dangling", "step_0000002", "resume="]),
    ("last_missing", "missing", [], ["no 'last'", "step_0000002, step_0000004", "resume="]),
    ("last_not_newest", "stale", [], ["not the newest", "step_0000004"]),
    ("last_state_garbage", "state_garbage", [], ["state.json", "corrupt", "step_0000002"]),
    ("lr_changed", None, ["trainer.lr=0.5"], ["trainer.lr: 0.001 -> 0.5", "resume_allow_changes=true"]),
    ("two_changes", None, ["trainer.seed=3", "loss.delta_t=0.5"], ["loss.delta_t: 1.0 -> 0.5", "trainer.seed: 0 -> 3"]),
    ("model_changed", None, ["model.block_out_channels=[8,8]", "resume_allow_changes=true"], ["model=", "new run"]),
    ("degradation_changed", None, ["degradation=inpaint", "resume_allow_changes=true"], ["degradation="]),
    ("schedule_changed", None, ["schedule.num_steps=5", "resume_allow_changes=true"], ["schedule="]),
    ("max_steps_below", None, ["trainer.max_steps=3"], ["trainer.max_steps=3", "trainer.max_steps>=4"]),
    ("resume_never", None, ["resume=never"], ["resume=never", "resume=auto"]),
    ("resume_older_in_place", None, ["resume={out}/checkpoints/step_0000002"], ["newer", "step_0000004"]),
    ("resume_missing_path", None, ["resume={out}/nowhere"], ["does not exist"]),
]


@pytest.mark.parametrize(
    ("how", "args", "words"), [c[1:] for c in RESUME_REFUSALS], ids=[c[0] for c in RESUME_REFUSALS]
)
def test_resume_refusals_change_nothing(run_copy, how, args, words):
    if how:
        _break_last(run_copy, how)
    before = checksums(run_copy)
    args = [a.format(out=run_copy) for a in args]
    steps = [] if any(a.startswith("trainer.max_steps") for a in args) else ["trainer.max_steps=8"]
    msg = refused(run_copy, *steps, *args)
    assert_one_line(msg, *words)
    assert unchanged(before, checksums(run_copy)) == []


def test_resume_from_another_run_into_a_used_folder_is_refused(run_copy, trained, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained, other, symlinks=True)
    before = checksums(run_copy, other)
    msg = refused(run_copy, "trainer.max_steps=8", f"resume={other}/checkpoints/step_0000002")
    assert_one_line(msg, "already holds checkpoints of another run")
    assert unchanged(before, checksums(run_copy, other)) == []


def test_an_exported_checkpoint_cannot_be_resumed(tmp_path):
    shipped = pretrained_dir() / "blur_default"
    before = checksums(shipped)
    msg = refused(tmp_path / "fresh", f"resume={shipped}")
    assert_one_line(msg, "optimizer.safetensors is missing", "cannot resume")
    assert checksums(shipped) == before and not (tmp_path / "fresh" / "checkpoints").exists()


def test_no_intact_checkpoint_at_all(run_copy):
    for p in list_checkpoints(run_copy / "checkpoints"):
        _truncate(p / "rng.safetensors", 0.5)
    before = checksums(run_copy)
    assert_one_line(refused(run_copy, "trainer.max_steps=8"), "no intact checkpoint", "another run folder")
    assert unchanged(before, checksums(run_copy)) == []


BAD_VALUES = [
    ("trainer.max_steps=-5", ["trainer.max_steps must be > 0"]),
    ("trainer.batch_size=0", ["trainer.batch_size must be > 0"]),
    ("trainer.lr=abc", ["trainer.lr must be float"]),
    ("trainer.seed=1.5", ["trainer.seed must be int"]),
    ("+trainer.momentum=0.9", ["unknown trainer keys", "momentum"]),
    ("resume_allow_changes=maybe", ["resume_allow_changes must be true or false"]),
    ("init_new_input=maybe", ["init_new_input must be true or false"]),
    ("++data.train.augment.warp=abc", ["data.train.augment.warp must be a finite number"]),
    ("++data.train.augment.mixup=2", ["mixup in [0, 1]"]),
    ("++data.train.augment.warp=1e30", ["data.train.augment.warp=1e+30 pixels would scramble", "1-2"]),
    ("++data.train.augment.shift=500", ["data.train.augment.shift=500 pixels would scramble"]),
    ("++data.train.augment.dihedral=no", ["data.train.augment.dihedral must be true or false", "'no'"]),
    ("model.block_out_channels=[8,x]", ["invalid network config", "model"]),
    ("trainer.batch_size=1000", ["trainer.batch_size"]),
    ("trainer.lr=nan", ["trainer.lr must be a finite number"]),
    ("loss.delta_t=abc", ["loss.delta_t must be a finite number"]),
    ("loss.delta_t=2", ["loss", "delta_t must lie in [0, 1]"]),
    ("loss.norm=l3", ["unknown loss.norm", "l1"]),
    ("data.train.random_rotation=maybe", ["random_rotation must be true or false"]),
    ("data.train.random_aspect=[2.0,0.5]", ["random_aspect must be (lo, hi) with 0 < lo <= hi"]),
    ("schedule.num_steps=0", ["schedule.num_steps must be a positive integer"]),
    ("schedule.num_images=x", ["schedule.num_images must be a positive integer"]),
    ("trainer.grad_clip=inf", ["trainer.grad_clip must be a finite number"]),
]


@pytest.mark.parametrize(("override", "words"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_named_in_one_line(tmp_path, override, words):
    out = tmp_path / "fresh"
    assert_one_line(refused(out, "trainer.max_steps=2", override), *words)
    assert not (out / "checkpoints").exists()


# ----------------------------------------------------------------------------------------------------------------
# subprocesses: the command line itself, the lock, SIGKILL during a checkpoint write
# ----------------------------------------------------------------------------------------------------------------


def test_unknown_experiment_fails_instead_of_training_the_default(tmp_path):
    res = run("train.py", *TINY[1:], "experiment=no_such_experiment", f"hydra.run.dir={tmp_path}", check=False)
    assert_clear_failure(res, "experiment/no_such_experiment", "blur_default")
    assert not (tmp_path / "checkpoints").exists()


def test_command_line_errors_are_one_line(run_copy):
    _break_last(run_copy, "truncated")
    before = checksums(run_copy)
    res = run("train.py", *TINY, "trainer.max_steps=8", f"hydra.run.dir={run_copy}", check=False)
    text = assert_clear_failure(res, "error:", "intact checkpoints: step_0000002")
    assert len([line for line in text.splitlines() if "error:" in line]) == 1
    assert unchanged(before, checksums(run_copy)) == []
    res = run("train.py", *TINY, "trainer.max_steps=-1", f"hydra.run.dir={run_copy}", check=False)
    assert_clear_failure(res, "error: trainer.max_steps must be > 0")


def _start(out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "train.py", *TINY, *args, f"hydra.run.dir={out}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def _wait_for(cond, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_second_training_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "shared"
    holder = _start(out, "trainer.max_steps=100000", "trainer.checkpoint_every=1")
    try:
        _wait_for(lambda: (out / "checkpoints" / "last").is_symlink(), "a first checkpoint")
        holder.send_signal(signal.SIGSTOP)  # frozen: nothing changes under the second run but its own doing
        before = checksums(out)
        res = run("train.py", *TINY, "trainer.max_steps=100000", f"hydra.run.dir={out}", check=False)
        assert_clear_failure(res, f"run folder {out} is in use", f"pid={holder.pid}", "hydra.run.dir")
        assert checksums(out) == before
    finally:
        holder.kill()
        holder.wait()


def test_sigkill_during_a_checkpoint_write_then_resume_is_bit_exact(tmp_path):
    out = tmp_path / "killed"
    ck = out / "checkpoints"
    proc = _start(out, "trainer.max_steps=100000", "trainer.checkpoint_every=1", "trainer.val_every=1000")
    try:
        _wait_for(
            lambda: (ck / "last").is_symlink() and any(n.startswith(".tmp-step") for n in os.listdir(ck)), "a write"
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    partial = [n for n in os.listdir(ck) if n.startswith(".tmp-step")]
    last_step = read_state(ck / "last")["step"]
    assert is_intact(ck / "last", training=True), "the previous checkpoint was damaged by the kill"
    assert partial, "the write finished before the kill (nothing was interrupted)"
    target = last_step + 2
    run("train.py", *TINY, f"trainer.max_steps={target}", f"hydra.run.dir={out}", env={"OMP_NUM_THREADS": "1"})
    assert not [n for n in os.listdir(ck) if n.startswith(".tmp-")], "the partial write was not cleaned up"
    recorded = OmegaConf.load(out / ".hydra" / "config.yaml")  # written by dirac once it held the lock
    assert recorded.trainer.max_steps == target
    straight = tmp_path / "straight"
    run("train.py", *TINY, f"trainer.max_steps={target}", f"hydra.run.dir={straight}", env={"OMP_NUM_THREADS": "1"})
    a, b = _weights(ck / "last"), _weights(straight / "checkpoints" / "last")
    assert read_state(ck / "last")["step"] == target and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, target + 1)), "the log repeats the steps the killed run never saved"


def test_export_command_line_refuses_a_non_empty_destination(ckpt, tmp_path):
    dst = _user_folder(tmp_path / "mine")
    before = checksums(dst)
    res = run("-m dirac.export", str(ckpt), str(dst), check=False)
    assert_clear_failure(res, "error:", "not empty", "--overwrite")
    assert checksums(dst) == before


def test_checkpoint_files_get_the_umask_permissions_not_safetensors_0600(tmp_path):
    """safetensors writes 0600 files; a group sharing trained models must be able to read every file dirac wrote."""
    old = os.umask(0o022)
    try:
        w = {"w": torch.arange(6.0).view(2, 3)}
        folder = write_checkpoint(
            tmp_path / "ckpt", model=w, ema=w, state={"step": 1}, optimizer={"state": {0: {"m": torch.ones(2)}}}
        )
    finally:
        os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in folder.iterdir()}
    assert set(modes) >= {"model.safetensors", "ema.safetensors", "optimizer.safetensors", "state.json"}
    assert set(modes.values()) == {0o644}, modes
    assert torch.equal(load_file(folder / "model.safetensors")["w"], w["w"])


def test_a_tensor_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """save_tensors streams into a temporary file: a failure (disk full) mid-write keeps the previous file."""
    import safetensors.torch
    from safetensors import SafetensorError

    from dirac.io import save_tensors

    target = save_tensors(tmp_path / "w.safetensors", {"w": torch.ones(3)})
    before = target.read_bytes()

    def half_then_full(tensors, filename, metadata=None):  # how safetensors reports a full disk: not an OSError
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_full)
    with pytest.raises(OSError, match="No space left"):  # an OSError, so the callers' disk-full messages apply
        save_tensors(target, {"w": torch.zeros(3)})
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_atomic_write_takes_a_long_but_valid_file_name(tmp_path):
    from dirac.io import atomic_write

    name = "m" * 240 + ".png"  # 244 characters: valid (255 is the usual limit), the temporary name must fit too
    assert atomic_write(tmp_path / name, b"x").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == [name]
