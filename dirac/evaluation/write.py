"""Write a run's images under an :class:`~.outputs.OutputFolder`: ``reconstructions/LABEL/NAME.png`` (one
folder per stopping point or method: ``do``, ``po``, …), ``uncertainty/LABEL/NAME.png`` with several samples,
``measurements/NAME.png``. Names keep the measurement's sub-folders; the extension becomes ``.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .outputs import OutputFolder


def png_name(name: str) -> str:
    return Path(name).with_suffix(".png").as_posix()


def std_scale(outputs: Sequence[Tensor]) -> float:
    """One scale for every uncertainty PNG of a label: the largest pixelwise std (so PNGs compare)."""
    peaks = [float(o.std(0).mean(0).max()) for o in outputs if o.shape[0] > 1]
    return max(peaks, default=0.0)


def write_reconstructions(out: OutputFolder, label: str, outputs: Sequence[Tensor], names: Sequence[str]) -> dict:
    """Every sample of every ``(S, C, H, W)`` output; returns what was written (folder, std scale)."""
    scale = std_scale(outputs)
    for o, name in zip(outputs, names, strict=True):
        stem = Path(name).with_suffix("").as_posix()
        for s in range(o.shape[0]):
            out.image(f"reconstructions/{label}/{stem}{f'_s{s}' if o.shape[0] > 1 else ''}.png", o[s])
        if o.shape[0] > 1:
            std = o.std(0).mean(0, keepdim=True)
            out.image(f"uncertainty/{label}/{png_name(name)}", std / max(scale, 1e-8))
    info = {"folder": f"reconstructions/{label}"}
    if scale > 0:
        info["uncertainty"] = {"folder": f"uncertainty/{label}", "white_is_std": scale}
    return info


def write_measurements(out: OutputFolder, ys: Sequence[Tensor], names: Sequence[str]) -> None:
    for y, name in zip(ys, names, strict=True):
        out.image(f"measurements/{png_name(name)}", torch.as_tensor(y).clamp(0, 1))
