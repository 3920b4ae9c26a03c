"""A folder of the user's own measurements: every file read once, each failure a one-line reason naming it.

Files are found recursively (hidden ones ignored); two files with the same stem in one folder (``a.png`` and
``a.jpg``) would write the same output ``a.png`` and are refused, naming both. Sizes may differ: the images
are returned one by one and batched per size by the runner.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..data import find_images, load_image
from ..degradations import DegradationProcess, top_up_noise


def check_unique_stems(files: list[str], root: Path) -> None:
    """Refuse two measurement files that would give the same output name (same folder and stem)."""
    seen: dict[str, str] = {}
    for rel in files:
        key = Path(rel).with_suffix("").as_posix()
        if key in seen:
            raise ValueError(
                f"measurements {root / seen[key]} and {root / rel} have the same name and would write one output "
                f"({key}.png); rename or remove one of them"
            )
        seen[key] = rel


def read_measurement(path: Path, channels: int) -> Tensor:
    """One image as ``(C, H, W)`` in [0, 1]; an unreadable or corrupt file is a ``ValueError`` naming it."""
    try:
        return load_image(path, channels)
    except Exception as e:  # PIL raises many types for truncated / corrupt / non-image files
        raise ValueError(f"cannot read measurement {path}: {type(e).__name__}: {e}".splitlines()[0]) from None


def load_measurements(root: str | Path, channels: int, limit: int | None = None) -> tuple[list[Tensor], list[str]]:
    """``(images, relative paths)`` of the first ``limit`` (all when ``None``) measurements under ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"measurements={root} is not a folder; pass a folder of measurement images")
    files = find_images(root)
    if not files:
        raise ValueError(f"measurements={root} holds no images (png, jpg, ...); put the degraded images there")
    check_unique_stems(files, root)
    files = files if limit is None else files[:limit]
    return [read_measurement(root / rel, channels) for rel in files], files


def measure(
    process: DegradationProcess, clean: Tensor, generator: torch.Generator, sigma_y: float | None = None
) -> Tensor:
    """Seeded measurements of ``clean``: ``A_1 x + sigma(1) z`` or, with ``sigma_y`` (``sampler.noise_sigma``),
    ``A_1 x + sigma_y z`` topped up to ``sigma(1)`` the way user measurements are (:func:`top_up_measurements`)."""
    if sigma_y is None:
        return process.measure(clean, generator)
    y = process.degrade(clean, 1.0) + sigma_y * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return top_up_noise(y, sigma_y, process.sigma_y, generator)


def top_up_measurements(
    ys: list[Tensor], process: DegradationProcess, sigma_y: float | None, seed: int
) -> list[Tensor]:
    """User measurements of noise ``sigma_y`` made exactly as noisy as the SDP at t = 1 (one seeded draw per file)."""
    if sigma_y is None:
        return ys
    return [top_up_noise(y[None], sigma_y, process.sigma_y, torch.Generator().manual_seed(seed + i))[0]
            for i, y in enumerate(ys)]  # fmt: skip
