"""The early-stopping choice file (``early_stopping.json``): where DO and PO stop, for exactly which weights.

A sweep (``sample.py mode=sweep``) picks the distortion-optimised (DO) and perception-optimised (PO) stopping
times on the validation split. Those times only mean something for the weights they were chosen with, so the
file records a fingerprint of the weights file (SHA-256 of its bytes); loading it for other weights is refused
with a message saying how to re-choose, instead of silently using another model's stopping points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import file_sha256, weights_file
from .io import write_json

CHOICE_FILE = "early_stopping.json"
SAMPLER_KEYS = ("steps", "step", "guidance", "guidance_strength", "output")
LABELS = ("do", "po")


def weights_fingerprint(folder: str | Path, ema: bool = True) -> str:
    """``sha256:<first 16 hex digits>`` of the weights file sampling uses (:func:`dirac.checkpoint.weights_file`)."""
    return f"sha256:{file_sha256(weights_file(folder, ema))[:16]}"


def write_stopping_choice(path: str | Path, choice: dict[str, Any], fingerprint: str) -> Path:
    """Write ``choice`` (``do``/``po`` points with their ``t``, ``sampler`` settings, …) with the fingerprint."""
    return write_json(path, {**choice, "weights": fingerprint}, nonfinite="null")


def load_stopping_choice(path: str | Path, fingerprint: str | None) -> dict[str, Any]:
    """Read and validate a choice file; with ``fingerprint``, refuse a file chosen for other weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"early-stopping choice file {path} does not exist; run `python sample.py mode=sweep checkpoint=...` "
            f"to choose DO/PO on the validation split, or pass a float t_stop in [0, 1]"
        )
    try:
        choice = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-create it with `python sample.py mode=sweep`") from e
    if not isinstance(choice, dict) or "do" not in choice or "sampler" not in choice:
        raise ValueError(f"{path} is not an early-stopping choice file (needs 'do' and 'sampler' entries)")
    redo = "re-create it with `python sample.py mode=sweep`"
    if not isinstance(choice["sampler"], dict):
        raise ValueError(f"{path}: 'sampler' must be an object of sampler settings; {redo}")
    missing = [k for k in SAMPLER_KEYS if k not in choice["sampler"]]
    if missing:
        raise ValueError(f"{path}: 'sampler' lacks {missing}; {redo}")
    for label in (k for k in LABELS if k in choice):
        point = choice[label]
        t = point.get("t") if isinstance(point, dict) else None
        if type(t) not in (int, float) or not 0.0 <= t <= 1.0:
            raise ValueError(f"{path}: '{label}' must be an object with a number 't' in [0, 1], got {point!r}; {redo}")
    stored = choice.get("weights")
    if fingerprint is not None and stored != fingerprint:
        raise ValueError(
            f"{path} was chosen for other weights ({stored or 'no fingerprint'}, these are {fingerprint}); "
            f"re-run `python sample.py mode=sweep` for this checkpoint, or pass a float t_stop in [0, 1]"
        )
    return choice


def stopping_point(choice: dict[str, Any], label: str, path: str | Path = CHOICE_FILE) -> tuple[float, dict]:
    """``(t_stop, sampler settings)`` of the ``do`` or ``po`` point of a loaded choice."""
    if label not in LABELS:
        raise ValueError(f"t_stop label must be one of {LABELS} or a float in [0, 1], got {label!r}")
    if label not in choice:
        raise ValueError(f"{path} has no '{label}' point (it holds {sorted(k for k in choice if k in LABELS)})")
    return float(choice[label]["t"]), {k: choice["sampler"][k] for k in SAMPLER_KEYS}
