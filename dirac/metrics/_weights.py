"""Metric-network weights: safetensors reading, key checking and the one-off .pth conversion (private).

The loaders only read safetensors.  ``convert_pth_to_safetensors`` (CLI: ``python -m
dirac.metrics.convert_weights``) is the only code in the project that reads a pickle, and it does so with
``torch.load(..., weights_only=True)``, PyTorch's restricted unpickler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ..io import save_tensors

CONVERT_CMD = "python -m dirac.metrics.convert_weights"


@dataclass(frozen=True)
class WeightFile:
    """One expected safetensors file and how to produce it."""

    filename: str  # name of the converted safetensors file
    original: str  # name of the standard .pth file it is converted from
    source: str  # where the original comes from
    keep: tuple[str, ...] = ()  # key prefixes passed to the converter with --keep (empty: keep all)

    def convert_command(self, directory: Path | str) -> str:
        keep = "".join(f" --keep {p}" for p in self.keep)
        return f"{CONVERT_CMD} {self.original} {Path(directory) / self.filename}{keep}"


def missing_weights_error(missing: Iterable[tuple[Path, WeightFile]], what: str) -> FileNotFoundError:
    """Build a FileNotFoundError naming the expected files, their originals and the conversion command."""
    lines = [f"{what}: weight file(s) not found (nothing can be downloaded here):"]
    for path, spec in missing:
        lines += [
            f"  - expected {path}",
            f"    original: {spec.original} ({spec.source})",
            f"    convert once with: {spec.convert_command(path.parent)}",
        ]
    lines.append(
        "The converter reads the .pth with torch.load(weights_only=True) and writes safetensors; "
        "copy the original files onto this machine first."
    )
    return FileNotFoundError("\n".join(lines))


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """Load all tensors of a safetensors file on the CPU."""
    return load_file(str(path), device="cpu")


def load_checked(
    module: nn.Module,
    state: Mapping[str, Tensor],
    source: str,
    ignore_prefixes: tuple[str, ...] = (),
    optional_suffixes: tuple[str, ...] = ("num_batches_tracked",),
) -> None:
    """Copy ``state`` into ``module`` after checking keys and shapes.

    Keys of ``state`` starting with one of ``ignore_prefixes`` are dropped silently (e.g. a classifier head
    we do not use); keys ending with one of ``optional_suffixes`` may be missing on either side.  Any other
    missing, unexpected or mis-shaped entry raises ``ValueError`` listing the offenders.
    """
    own = module.state_dict()
    given = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    missing = [k for k in own if k not in given and not k.endswith(optional_suffixes)]
    unexpected = [k for k in given if k not in own and not k.endswith(optional_suffixes)]
    bad_shape = [
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in given and tuple(given[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or bad_shape:

        def _fmt(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = [f"weights in {source} do not match {type(module).__name__}:"]
        if missing:
            parts.append(f"missing keys: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt(unexpected)}")
        if bad_shape:
            parts.append(f"shape mismatches: {_fmt(bad_shape)}")
        raise ValueError("\n  ".join(parts))
    to_load = {k: v for k, v in given.items() if k in own}
    module.load_state_dict(to_load, strict=False)


def _unwrap(obj: object, src: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{src} does not hold a state dict (got {type(obj).__name__})")
    non_tensor = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise ValueError(f"{src}: entries that are not tensors: {non_tensor[:8]}")
    state = {str(k): v for k, v in obj.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def convert_pth_to_safetensors(src: str | Path, dst: str | Path, keep: Sequence[str] = ()) -> list[str]:
    """Convert ``src`` (.pth state dict) to ``dst`` (.safetensors); return the keys written.

    ``keep``: if non-empty, only keys starting with one of these prefixes are written.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"source weight file not found: {src}")
    obj = torch.load(src, map_location="cpu", weights_only=True)
    state = _unwrap(obj, src)
    if keep:
        state = {k: v for k, v in state.items() if k.startswith(tuple(keep))}
        if not state:
            raise ValueError(f"{src}: no key starts with any of {list(keep)}")
    # safetensors refuses shared or non-contiguous storage: give every tensor its own contiguous copy.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(dst, tensors, metadata={"converted_from": src.name})
    return list(tensors)
