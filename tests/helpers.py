"""Helpers shared by the end-to-end and fault-injection tests: run a CLI, checksum a tree, check a failure."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(
    script: str, *args: str, check: bool = True, timeout: int = 300, env: dict | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` (a top-level script, or ``-m module``) from the repository root; raises on failure
    when ``check``. ``env`` values of ``None`` remove a variable."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **(env or {})}
    env = {k: v for k, v in env.items() if v is not None}
    cmd = [sys.executable, *script.split(), *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def checksums(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (symlinks recorded by target): compare before/after."""
    out: dict[str, str] = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_symlink():
                out[str(p)] = "->" + os.readlink(p)
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_clear_failure(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed with a short reason containing every word (case-insensitive), and no traceback."""
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"expected a failure, got exit 0:\n{text[-2000:]}"
    assert "Traceback" not in text, f"raw traceback instead of a reason:\n{text[-3000:]}"
    for w in words:
        assert w.lower() in text.lower(), f"message does not mention {w!r}:\n{text[-2000:]}"
    return text


def unchanged(before: dict[str, str], after: dict[str, str], ignore: tuple[str, ...] = (".dirac.lock",)) -> list[str]:
    """Paths of ``before`` (a :func:`checksums` result) that changed or vanished in ``after``; files named in
    ``ignore`` (dirac's own lock file, which records its latest holder) are skipped. Empty means nothing changed."""
    return [p for p, h in before.items() if Path(p).name not in ignore and after.get(p) != h]


def assert_one_line(message: str, *words: str) -> None:
    """An error message is a single line that mentions every word (case-insensitive)."""
    text = message.strip()
    assert "\n" not in text and "Traceback" not in text, f"not a one-line reason:\n{text[-2000:]}"
    for w in words:
        assert w.lower() in text.lower(), f"message does not mention {w!r}: {text}"


TINY_TRAINING = {
    "experiment": "blur_default",
    "model": "ncsnpp_tiny",
    "data.image_size": 16,
    "data.train.length": 64,
    "trainer.batch_size": 8,
    "trainer.log_every": 1,
    "trainer.val_every": 2,
    "trainer.checkpoint_every": 2,
    "trainer.val_images": 8,
    "trainer.sample_steps": 3,
    "trainer.progress": "false",
    "schedule.num_steps": 8,
    "schedule.num_candidates": 40,
    "schedule.num_images": 8,
}


def tiny_training(**changes: object) -> list[str]:
    """Hydra overrides of a seconds-long training run (``experiment=…`` first); ``changes`` use ``__`` for dots."""
    settings = {**TINY_TRAINING, **{k.replace("__", "."): v for k, v in changes.items()}}
    return [f"{k}={v}" for k, v in settings.items()]


def compose_config(name: str, *overrides: str) -> dict:
    """``configs/<name>.yaml`` (``train`` or ``sample``) composed by Hydra with ``overrides``, resolved to plain
    containers."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose(config_name=name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def compose_train(*overrides: str) -> dict:
    """The training config composed with ``overrides`` (:func:`compose_config` of ``train``)."""
    return compose_config("train", *overrides)


def train_tiny(out: Path, overrides: list[str]) -> Path:
    """A seconds-long training in this process (``dirac.cli.train.run``; no interpreter start-up)."""
    from hydra import compose, initialize_config_module

    from dirac.cli.train import run as train_run

    with initialize_config_module("dirac.configs", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    train_run(cfg, out, record=False)
    return out / "checkpoints" / "last"


def sample(tmp: Path, name: str, *overrides: str) -> dict:
    """``run()`` of the sample CLI in this process (no interpreter start-up): the composed config, checked."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from dirac.cli.sample import run as sample_run

    with initialize_config_module("dirac.configs", version_base="1.3"):
        cfg = OmegaConf.to_container(compose("sample", overrides=list(overrides)), resolve=True)
    return sample_run(cfg, tmp / name, "sample.log")
