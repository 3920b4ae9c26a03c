"""Shipped models and configs, found by name from any working directory (package data ``dirac.pretrained``
and ``dirac.configs``, which live at the repository's top level as ``pretrained/`` and ``configs/``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def pretrained_dir() -> Path:
    """Folder holding the shipped checkpoints (one sub-folder per model)."""
    return Path(str(files("dirac.pretrained")))


def refuse_shipped(folder: str | Path, what: str = "save") -> None:
    """Refuse, in one line, to write into dirac's shipped models (a user call must never replace them)."""
    shipped = pretrained_dir().resolve()
    target = Path(folder).resolve()
    if target == shipped or shipped in target.parents:
        raise ValueError(f"{folder} is inside dirac's shipped models ({shipped}); {what} to a folder of your own")


def config_dir() -> Path:
    """Folder holding the Hydra configs (``train.yaml``, ``sample.yaml`` and the config groups)."""
    return Path(str(files("dirac.configs")))


def shipped_models() -> list[str]:
    """Names of the shipped checkpoints, e.g. ``["blur_default", "inpaint_default"]``."""
    return sorted(p.name for p in pretrained_dir().iterdir() if (p / "state.json").is_file())


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint folder from an existing path or the name of a shipped model.

    An existing path always wins (a local folder named like a shipped model is the user's own); otherwise a
    shipped name resolves to its package folder; anything else is a ``FileNotFoundError`` naming the choices.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if str(name_or_path) in shipped_models():
        return pretrained_dir() / str(name_or_path)
    raise FileNotFoundError(
        f"checkpoint {name_or_path} does not exist; pass the folder of a checkpoint (e.g. RUN/checkpoints/last) "
        f"or the name of a shipped model ({', '.join(shipped_models())})"
    )
