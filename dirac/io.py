"""I/O at the edges: atomic file writes, strict JSON, tensors saved as PNG, image grids.

Every file dirac writes goes through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed to disk, and the file is renamed over the target, so a crash leaves either the old file or
the new one, never a torn one. The result gets the permissions any other new file would get (0666 minus the
umask), not the 0600 of a temporary file.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(x: Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H, W)`` or ``(H, W, 3)`` uint8 (clamped)."""
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()


def _umask() -> int:
    """The process umask, read from ``/proc`` where it can be (setting it to read it races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_BEFORE_WRITE: ContextVar[Callable[[Path], None] | None] = ContextVar("dirac_before_write", default=None)


@contextmanager
def before_each_write(check: Callable[[Path], None]) -> Iterator[None]:
    """Inside the block every :func:`atomic_write_with` (so every dirac write) calls ``check(path)`` before it
    touches ``path``; ``check`` may raise to stop the write. :class:`dirac.evaluation.OutputFolder` uses it to list
    a figure's files in its manifest, and to refuse a user's file of the same name, *before* figure code writes."""
    token = _BEFORE_WRITE.set(check)
    try:
        yield
    finally:
        _BEFORE_WRITE.reset(token)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    raw = data.encode() if isinstance(data, str) else data

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(raw)

    return atomic_write_with(path, write)


def atomic_write_with(path: str | Path, write: Callable[[str], None]) -> Path:
    """Let ``write(tmp)`` fill a temporary file in ``path``'s folder, then fsync it, give it the permissions of a new
    file and rename it over ``path``; on any failure the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    check = _BEFORE_WRITE.get()
    if check is not None:
        check(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the name is cut short so that a long (valid) file name still leaves room for the temporary file's suffix
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name[:40]}-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Save ``tensors`` as safetensors through :func:`atomic_write_with`. ``safetensors.torch.save_file`` streams to
    the temporary file (no second copy of the weights in memory as bytes); its files have mode 0600, which the
    rename step replaces with a new file's permissions (a group sharing the models can read them). Its write
    errors (``SafetensorError``, not an ``OSError``) are raised as ``OSError`` so a full disk reads as one."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}

    def write(tmp: str) -> None:
        try:
            save_file(contiguous, tmp, metadata=metadata)
        except SafetensorError as err:
            raise OSError(f"could not write {path}: {err}") from err

    return atomic_write_with(path, write)


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def to_json(obj: Any, nonfinite: str = "error", indent: int | None = 2) -> str:
    """Strict JSON text (``allow_nan=False``). ``nonfinite="null"`` writes NaN/Inf as ``null`` instead of failing."""
    if nonfinite not in ("error", "null"):
        raise ValueError(f"nonfinite must be 'error' or 'null', got {nonfinite!r}")
    if nonfinite == "null":
        obj = _finite_or_none(obj)
    try:
        return json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"refusing to write NaN/Inf into JSON ({e}); the values it describes are not finite") from e


def write_json(path: str | Path, obj: Any, nonfinite: str = "error", indent: int | None = 2) -> Path:
    """Atomically write strict JSON (see :func:`to_json`)."""
    return atomic_write(path, to_json(obj, nonfinite=nonfinite, indent=indent) + "\n")


def check_finite_image(x: Tensor, path: str | Path) -> None:
    """Refuse an image with NaN or Inf values (it would be saved black), naming the file it was meant for."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"refusing to save {path}: the image contains NaN or Inf values (a diverged model or input)")


def save_image(x: Tensor, path: str | Path) -> None:
    """Save one ``(C, H, W)`` image in [0, 1] as PNG (atomically); a non-finite image is refused, not saved black."""
    check_finite_image(x, path)
    buf = io.BytesIO()
    Image.fromarray(to_uint8(x)).save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def image_grid(columns: Sequence[Tensor], pad: int = 2, scale: int = 1) -> Tensor:
    """Tile equal-length batches side by side: row i = (columns[0][i], columns[1][i], …) -> ``(C, H', W')``.

    Grey columns are replicated to RGB when any column is RGB; images are upscaled by ``scale`` (nearest).
    """
    cols = [c.detach().float().cpu().clamp(0, 1) for c in columns]
    rgb = any(c.shape[1] == 3 for c in cols)
    cols = [c.expand(-1, 3, -1, -1) if rgb and c.shape[1] == 1 else c for c in cols]
    if scale > 1:
        cols = [torch.nn.functional.interpolate(c, scale_factor=scale, mode="nearest") for c in cols]
    n = min(c.shape[0] for c in cols)
    h = max(c.shape[2] for c in cols)
    w = max(c.shape[3] for c in cols)
    ch = cols[0].shape[1]
    grid = torch.ones(ch, n * (h + pad) + pad, len(cols) * (w + pad) + pad)
    for j, c in enumerate(cols):
        for i in range(n):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top : top + c.shape[2], left : left + c.shape[3]] = c[i]
    return grid


def save_grid(columns: Sequence[Tensor], path: str | Path, scale: int = 1) -> None:
    """Save ``image_grid(columns)`` as a PNG."""
    save_image(image_grid(columns, scale=scale), path)
