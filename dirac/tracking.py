"""Experiment tracking with Weights & Biases, an optional extra (``pip install "dirac[wandb]"``).

``configs/logger/wandb.yaml``: ``project``, ``entity``, ``mode`` (``offline`` by default: no network, ``wandb sync``
uploads later; ``online``; ``disabled``) and ``tags``. Training logs its scalars and sample grids through
accelerate's tracker; ``sample.py`` logs its summary figures (P–D plane, early-stopping curves, grids) and
scalars once at the end. Only the main process talks to wandb; run files go to ``RUN/wandb/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

INSTALL = 'pip install "dirac[wandb]"'
MODES = ("offline", "online", "disabled")


def require_wandb() -> Any:
    """The ``wandb`` module, or a one-line error naming the extra to install."""
    try:
        import wandb
    except ImportError:
        raise ValueError(
            f"logger=wandb needs the wandb package, which is not installed: {INSTALL} (or logger=none)"
        ) from None
    return wandb


def wandb_init_kwargs(logger: Mapping[str, Any], out: str | Path) -> dict[str, Any]:
    """Checked ``wandb.init`` keyword arguments (besides the project) from the ``logger`` config group."""
    mode = logger.get("mode", "offline")
    if mode not in MODES:
        raise ValueError(f"logger.mode must be one of {'|'.join(MODES)}, got {mode!r}")
    tags = logger.get("tags") or []
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"logger.tags must be a list of strings (e.g. logger.tags=[blur,gpu]), got {tags!r}")
    for key in ("project", "entity"):
        if logger.get(key) is not None and not isinstance(logger.get(key), str):
            raise ValueError(f"logger.{key} must be a string, got {logger.get(key)!r}")
    return {"mode": mode, "dir": str(out), "entity": logger.get("entity"), "tags": list(tags)}


def project_of(logger: Mapping[str, Any]) -> str:
    return str(logger.get("project") or "dirac")


def log_image_files(run: Any, images: Mapping[str, str | Path], step: int | None = None) -> None:
    """Log PNG files as ``wandb.Image`` under their names (``run``: a wandb run; nothing when ``None``)."""
    if run is None:
        return
    wandb = require_wandb()
    run.log({name: wandb.Image(str(path)) for name, path in images.items()}, step=step)


def numbers(tree: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in nested dicts as ``{"a/b/c": value}`` (lists and text are skipped)."""
    if isinstance(tree, Mapping):
        out: dict[str, float] = {}
        for k, v in tree.items():
            out.update(numbers(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(tree, (int, float)) and not isinstance(tree, bool) and float(tree) == float(tree):
        return {prefix: float(tree)} if abs(float(tree)) != float("inf") else {}
    return {}


def log_sample_run(
    logger: Mapping[str, Any], out: Path, config: dict[str, Any], summary: dict[str, Any], figures: list[Path]
) -> None:
    """One wandb run for a ``sample.py`` call: its config, the summary's numbers and every figure PNG."""
    wandb = require_wandb()
    run = wandb.init(project=project_of(logger), config=config, **wandb_init_kwargs(logger, out))
    try:
        run.summary.update(numbers(summary))
        log_image_files(run, {f"figures/{p.stem}": p for p in figures if p.suffix == ".png"})
    finally:
        run.finish()


__all__ = [
    "INSTALL",
    "log_image_files",
    "log_sample_run",
    "numbers",
    "project_of",
    "require_wandb",
    "wandb_init_kwargs",
]
