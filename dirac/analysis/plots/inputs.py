"""Validation of plot inputs: plain numbers in, a one-line ``ValueError`` naming the argument otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor


def floats(values: Any, name: str) -> list[float]:
    """A non-empty 1-D sequence of numbers (list, tuple, tensor, array) -> list of Python floats."""
    if isinstance(values, Tensor):
        if values.dim() > 1:
            raise ValueError(f"{name} must be 1-D, got a tensor of shape {tuple(values.shape)}")
        values = values.detach().cpu().reshape(-1).tolist()
    elif isinstance(values, np.ndarray):
        if values.ndim > 1:
            raise ValueError(f"{name} must be 1-D, got an array of shape {values.shape}")
        values = values.reshape(-1).tolist()
    elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must contain only numbers ({e})") from None
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def same_length(**seqs: list[float]) -> int:
    """The common length of the named sequences; a ``ValueError`` listing every length when they differ."""
    lengths = {k: len(v) for k, v in seqs.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"len({k})={n}" for k, n in lengths.items())
        raise ValueError(f"length mismatch: {desc}; all must be equal")
    return next(iter(lengths.values()))


def series_like(x: list[float], series: dict[str, Any], x_name: str, series_name: str) -> dict[str, list[float]]:
    """Named series, each as long as ``x`` (e.g. metrics against t, curves against x)."""
    if not series:
        raise ValueError(f"{series_name} is empty: need at least one entry")
    out = {str(k): floats(v, f"{series_name}[{k!r}]") for k, v in series.items()}
    for name, vals in out.items():
        if len(vals) != len(x):
            raise ValueError(f"length mismatch: len({x_name})={len(x)} but len({series_name}[{name!r}])={len(vals)}")
    return out


def pair(values: Any, name: str, meaning: str) -> tuple[float, float]:
    """Exactly two numbers, e.g. ``(s_min, s_max)``; ``meaning`` names them in the error."""
    vals = floats(list(values), name)
    if len(vals) != 2:
        raise ValueError(f"{name} must be {meaning}, got {len(vals)} values")
    return vals[0], vals[1]


def index_or_none(i: int | None, n: int, name: str) -> int | None:
    """A valid (possibly negative) index into ``n`` points, normalised to ``0 ≤ i < n``; ``None`` stays ``None``."""
    if i is None:
        return None
    if isinstance(i, bool) or not isinstance(i, int | np.integer):
        raise ValueError(f"{name} must be an int or None, got {type(i).__name__}")
    if not -n <= i < n:
        raise ValueError(f"{name}={i} out of range for {n} points")
    return int(i) % n


def fmt(v: float) -> str:
    """Short, readable number: 3 significant digits, no scientific notation for ordinary ranges."""
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.3g}" if a < 100 else f"{v:.1f}"
