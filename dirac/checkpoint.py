"""Atomic, pickle-free checkpoints: safetensors for every tensor, JSON for everything else.

A checkpoint is a folder::

    model.safetensors      network weights (raw)
    ema.safetensors        EMA weights (what sampling uses by default), optional
    optimizer.safetensors  optimizer + LR-scheduler tensors; their non-tensor structure in the metadata
    rng.safetensors        torch CPU/CUDA RNG states and the training noise generator state
    state.json             step, resolved config, degradation process (with its schedule), model config

Why not ``accelerate.save_state``: it writes optimizer, scheduler and RNG states with ``torch.save`` and
reads them back by unpickling, and our rule is that nothing is ever unpickled. Folders are written under a
temporary name and renamed into place, so a killed run never leaves a half-written checkpoint; ``last`` is
a symlink swapped atomically (``os.replace``) to the newest complete one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
STATE_FILE = "state.json"


def _flatten_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into ``tensors`` (key = path) and return the JSON skeleton."""
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(state, dict):
        return {"__dict__": [[_key(k), _flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in state.items()]}
    if isinstance(state, (list, tuple)):
        return {"__list__": [_flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(state)]}
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"cannot store {type(state).__name__} at {prefix!r} in a checkpoint (tensors and JSON only)")


def _key(k: Any) -> Any:
    return {"__int__": k} if isinstance(k, int) else k


def _unflatten_state(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skel, dict):
        if "__tensor__" in skel:
            return tensors[skel["__tensor__"]]
        if "__dict__" in skel:
            return {
                (k["__int__"] if isinstance(k, dict) else k): _unflatten_state(v, tensors) for k, v in skel["__dict__"]
            }
        if "__list__" in skel:
            return [_unflatten_state(v, tensors) for v in skel["__list__"]]
    return skel


def save_nested(path: Path, state: dict[str, Any]) -> None:
    """Save a nested state (e.g. an optimizer ``state_dict``) as safetensors + JSON skeleton metadata."""
    tensors: dict[str, torch.Tensor] = {}
    skel = _flatten_state(state, "s", tensors)
    save_file(tensors, str(path), metadata={"skeleton": json.dumps(skel)})


def load_nested(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        skel = json.loads(f.metadata()["skeleton"])
    return _unflatten_state(skel, load_file(str(path)))


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG a training step touches: torch CPU (and CUDA), NumPy, Python, the noise generator."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def write_checkpoint(
    folder: str | Path,
    *,
    model: dict[str, torch.Tensor],
    state: dict[str, Any],
    ema: dict[str, torch.Tensor] | None = None,
    optimizer: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (temporary folder, then rename)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in model.items()}, str(tmp / "model.safetensors"))
    if ema is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
    if optimizer is not None:
        save_nested(tmp / "optimizer.safetensors", optimizer)
    if rng is not None:
        save_nested(tmp / "rng.safetensors", rng)
    (tmp / STATE_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, **state}, indent=2))
    for f in tmp.iterdir():  # make the data durable before the rename publishes it
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if folder.exists():
        old = folder.parent / f".old-{folder.name}-{os.getpid()}"
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    return folder


def point_last(checkpoints_dir: str | Path, target: str) -> Path:
    """Atomically make ``checkpoints_dir/last`` a relative symlink to ``target`` (a sibling folder)."""
    d = Path(checkpoints_dir)
    tmp = d / f".last-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, d / "last")
    return d / "last"


def read_state(folder: str | Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint, with a clear error when the folder is not one."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(
            f"checkpoint {folder} does not exist; pass the folder of a checkpoint (e.g. RUN/checkpoints/last "
            f"or pretrained/blur_default)"
        )
    f = folder / STATE_FILE
    if not f.is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{folder} is not a dirac checkpoint: expected {STATE_FILE} and model.safetensors inside; "
            f"found {sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'a file'}"
        )
    return json.loads(f.read_text())


def read_weights(folder: str | Path, ema: bool = True) -> dict[str, torch.Tensor]:
    """EMA weights when present and asked for, else the raw weights (safetensors, never unpickled)."""
    folder = Path(folder)
    f = folder / "ema.safetensors"
    return load_file(str(f if ema and f.is_file() else folder / "model.safetensors"))
