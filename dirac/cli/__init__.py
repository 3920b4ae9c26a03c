"""Hydra command-line entry points: ``dirac-train`` / ``dirac-sample`` (also ``python train.py`` /
``python sample.py`` at the repository's top level). Configs are read from the package (``dirac.configs``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dirac.shipped import refuse_shipped

NO_OUTPUT_SUBDIR = "hydra.output_subdir=null"


def check_hydra_overrides(args: list[str]) -> None:
    """Refuse, before Hydra acts on them, overrides under which Hydra itself would write or fail in the run folder
    ahead of dirac's checks: ``hydra.output_subdir`` set (its record would replace another run's ``.hydra/``), a
    ``hydra.run.dir`` under a file (Hydra's ``mkdir`` would end in a traceback) or inside the shipped models (Hydra
    would leave its job log there)."""
    for arg in args:
        key, value = _override(arg)
        if value is None:
            continue
        if key == "hydra.output_subdir" and value not in ("null", "~", ""):
            raise SystemExit(
                f"error: hydra.output_subdir={value} makes Hydra write its record before dirac checks the folder; "
                f"leave it null (dirac writes .hydra/ itself once the folder passed its checks)"
            )
        if key == "hydra.run.dir" and value and "${" not in value:
            _check_run_dir(Path(value))


def _override(arg: str) -> tuple[str, str | None]:
    """``(key, value)`` of a Hydra override (``+``/``++``/``~`` prefixes and quotes dropped); value ``None`` for a
    flag (``-m``, ``--config-dir``) or an argument without ``=``."""
    key, sep, value = arg.lstrip("+~").partition("=")
    return key, (value.strip("'\"") if sep and not arg.startswith("-") else None)


def _check_run_dir(path: Path) -> None:
    blocking = [p for p in (path, *path.parents) if p.exists() and not p.is_dir()]
    if blocking:
        raise SystemExit(f"error: hydra.run.dir={path}: {blocking[0]} is a file, not a folder; name a folder")
    try:
        refuse_shipped(path, "write outputs")
    except ValueError as e:
        raise SystemExit(f"error: hydra.run.dir={e}") from None


def hydra_command(app: Callable[[], None]) -> None:
    """Run a Hydra application as dirac's command: the command line checked first (:func:`check_hydra_overrides`),
    then ``hydra.output_subdir`` forced to null (a config file may set it too; dirac writes the record itself)."""
    args = sys.argv[1:]
    check_hydra_overrides(args)
    argv = sys.argv
    sys.argv = [argv[0], *(a for a in args if _override(a)[0] != "hydra.output_subdir"), NO_OUTPUT_SUBDIR]
    try:
        app()
    finally:
        sys.argv = argv


def hydra_record(cfg: DictConfig) -> dict[str, str]:
    """What Hydra's ``output_subdir`` would write, ``{relative path: text}`` (``.hydra/config.yaml``,
    ``overrides.yaml``). dirac forces ``hydra.output_subdir`` to null and writes these itself, once the run holds
    its folder (Hydra writes before any check, so a refused run would replace another run's record)."""
    overrides = list(HydraConfig.get().overrides.task)
    return {".hydra/config.yaml": OmegaConf.to_yaml(cfg), ".hydra/overrides.yaml": OmegaConf.to_yaml(overrides)}
