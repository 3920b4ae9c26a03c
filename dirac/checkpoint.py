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

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from .io import atomic_write, save_tensors, to_json

FORMAT_VERSION = 1
STATE_FILE = "state.json"
_STEP_NAME = re.compile(r"step_(\d+)")
_FIX = "resume from or export another checkpoint (ls RUN/checkpoints), or re-export this one from its source"


class CheckpointError(ValueError):
    """A checkpoint that exists but cannot be used: corrupt, truncated, incomplete or from a newer dirac."""


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
    save_tensors(path, tensors, metadata={"skeleton": json.dumps(skel)})


def load_nested(path: Path, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inverse of :func:`save_nested`; a damaged file is a one-line :class:`CheckpointError` naming it."""
    from safetensors import safe_open

    tensors = _load_tensors(Path(path), state)
    try:
        with safe_open(str(path), framework="pt") as f:
            skel = json.loads(f.metadata()["skeleton"])
        return _unflatten_state(skel, tensors)
    except Exception as e:
        raise CheckpointError(f"{path} is corrupt (its structure cannot be read: {_short(e)}); {_FIX}") from None


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
    """Write a checkpoint folder atomically (temporary folder, fsync, rename); ``state.json`` lists every
    file's size and SHA-256 so later corruption is detected."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _fill(tmp, model, state, ema, optimizer, rng)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise OSError(
                f"could not write checkpoint {folder} ({_short(e)}); nothing was replaced, the previous checkpoints "
                f"are intact: free space or fix permissions, then resume"
            ) from None
        raise
    if folder.exists() or folder.is_symlink():
        old = folder.parent / f".old-{folder.name}-{os.getpid()}"
        os.replace(folder, old)
        os.replace(tmp, folder)
        _remove(old)
    else:
        os.replace(tmp, folder)
    _fsync_dir(folder.parent)
    return folder


def _fill(
    tmp: Path,
    model: dict[str, torch.Tensor],
    state: dict[str, Any],
    ema: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any] | None,
    rng: dict[str, Any] | None,
) -> None:
    """Write every file of a checkpoint into ``tmp`` through :func:`atomic_write` (durable, umask permissions;
    ``state.json`` last, with checksums)."""
    save_tensors(tmp / "model.safetensors", model)
    if ema is not None:
        save_tensors(tmp / "ema.safetensors", ema)
    if optimizer is not None:
        save_nested(tmp / "optimizer.safetensors", optimizer)
    if rng is not None:
        save_nested(tmp / "rng.safetensors", rng)
    body = {k: v for k, v in state.items() if k not in ("format_version", "files")}
    files = {f.name: _fingerprint(f) for f in sorted(tmp.iterdir())}
    atomic_write(tmp / STATE_FILE, to_json({"format_version": FORMAT_VERSION, **body, "files": files}))
    _fsync_dir(tmp)  # every file was fsynced by atomic_write; the folder's entries before the rename publishes it


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of ``tensors`` (in key order): equal iff bit-identical."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fingerprint(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def point_last(checkpoints_dir: str | Path, target: str) -> Path:
    """Atomically make ``checkpoints_dir/last`` a relative symlink to ``target`` (a sibling folder)."""
    d = Path(checkpoints_dir)
    tmp = d / f".last-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, d / "last")
    _fsync_dir(d)
    return d / "last"


def _check_version(state: Any, f: Path) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"{f} is not a dirac state file (a JSON object was expected); {_FIX}")
    v = state.get("format_version")
    if v is None:
        raise CheckpointError(f"{f} has no format_version, so it was not written by dirac; {_FIX}")
    if type(v) is not int or v < 1:
        raise CheckpointError(f"{f} has an invalid format_version {v!r} (expected an integer >= 1); {_FIX}")
    if v > FORMAT_VERSION:
        raise CheckpointError(
            f"{f} has format_version {v}, newer than this dirac reads ({FORMAT_VERSION}); upgrade dirac to load it"
        )


def read_state(folder: str | Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint, with a one-line error when the folder is not one, the file is corrupt or
    its ``format_version`` is missing, invalid or newer than this version of dirac reads."""
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
    try:
        state = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{f} is corrupt or truncated ({_short(e)}); {_FIX}") from None
    _check_version(state, f)
    return state


def require_keys(state: dict[str, Any], keys: tuple[str, ...], folder: str | Path) -> None:
    """Refuse a state that lacks any of ``keys`` (e.g. ``step`` for a training checkpoint)."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{Path(folder) / STATE_FILE} lacks the keys {missing}; {_FIX}")


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def _verify_file(path: Path, state: dict[str, Any] | None) -> None:
    """Compare a file with the size and SHA-256 ``state.json`` recorded for it, if it recorded any."""
    files = (state or {}).get("files")
    rec = files.get(path.name) if isinstance(files, dict) else None
    if not isinstance(rec, dict):
        return
    if path.stat().st_size != rec.get("bytes") or _fingerprint(path)["sha256"] != rec.get("sha256"):
        raise CheckpointError(f"{path} does not match the size/checksum recorded in {STATE_FILE} (corrupt); {_FIX}")


def _load_tensors(path: Path, state: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; {_FIX}")
    _verify_file(path, state)
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for every kind of damage
        raise CheckpointError(f"{path} is corrupt or truncated ({_short(e)}); {_FIX}") from None


def weights_file(folder: str | Path, ema: bool = True) -> Path:
    """The weights file sampling uses: ``ema.safetensors`` when present and asked for, else ``model.safetensors``."""
    folder = Path(folder)
    f = folder / "ema.safetensors"
    return f if ema and f.is_file() else folder / "model.safetensors"


def read_weights(folder: str | Path, ema: bool = True) -> dict[str, torch.Tensor]:
    """EMA weights when present and asked for, else the raw weights (safetensors, never unpickled)."""
    return _load_tensors(weights_file(folder, ema), read_state(folder))


def verify_checkpoint(folder: str | Path, training: bool = False) -> dict[str, Any]:
    """``state.json`` of ``folder`` after checking that every file loads (and matches its recorded size and
    checksum); ``training`` also requires what resuming needs. Raises a one-line error naming the bad file."""
    folder = Path(folder)
    state = read_state(folder)
    if training:
        require_keys(state, ("step", "config", "process", "model"), folder)
        for name in ("optimizer.safetensors", "rng.safetensors"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder / name} is missing, so training cannot resume from {folder}; {_FIX}")
    for f in sorted(folder.glob("*.safetensors")):
        if f.name in ("optimizer.safetensors", "rng.safetensors"):
            load_nested(f, state)
        else:
            _load_tensors(f, state)
    return state


def is_intact(folder: str | Path, training: bool = False) -> bool:
    """Whether :func:`verify_checkpoint` accepts ``folder``."""
    try:
        verify_checkpoint(folder, training=training)
    except (OSError, ValueError):
        return False
    return True


def step_of(path: str | Path) -> int | None:
    """The step of a checkpoint folder named ``step_0000100`` (any number of digits), else ``None``."""
    m = _STEP_NAME.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(checkpoints_dir: str | Path) -> list[Path]:
    """The ``step_N`` folders of a run's ``checkpoints`` folder, sorted by numeric step (oldest first)."""
    d = Path(checkpoints_dir)
    if not d.is_dir():
        return []
    found = [p for p in d.iterdir() if step_of(p) is not None and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: step_of(p))


DIRAC_FILES = frozenset(
    {
        STATE_FILE,
        "model.safetensors",
        "ema.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "early_stopping.json",
    }
)


def check_destination(
    dst: str | Path, overwrite: bool, src: str | Path | None = None, how: str = "pass --overwrite"
) -> None:
    """Refuse to write a checkpoint to ``dst`` unless it is absent or an empty folder, or ``overwrite`` is set
    and ``dst`` is itself a dirac checkpoint holding nothing but dirac's files (so nothing else is deleted)."""
    dst = Path(dst)
    if src is not None and _overlaps(Path(src), dst):
        raise ValueError(f"destination {dst} overlaps the source {src}; export to another folder")
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        raise FileExistsError(f"destination {dst} exists and is not a folder; remove it yourself or pick another")
    if not dst.exists() or not any(dst.iterdir()):
        return
    names = sorted(p.name for p in dst.iterdir())
    if not overwrite:
        raise FileExistsError(
            f"destination {dst} is not empty ({', '.join(names[:5])}); {how} to replace a dirac "
            f"checkpoint there, or pick another folder"
        )
    foreign = [n for n in names if n not in DIRAC_FILES]
    if foreign or STATE_FILE not in names or "model.safetensors" not in names:
        raise FileExistsError(
            f"refusing to overwrite {dst}: it is not a dirac checkpoint (state.json + model.safetensors only; "
            f"found {', '.join(names[:5])}); remove it yourself or pick another folder"
        )


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents
