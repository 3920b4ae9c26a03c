"""Hydra command-line entry points: ``dirac-train`` / ``dirac-sample`` (also ``python train.py`` /
``python sample.py`` at the repository's top level). Configs are read from the package (``dirac.configs``)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dirac.io import atomic_write


def record_hydra_config(cfg: DictConfig, out: Path) -> None:
    """What Hydra's ``output_subdir`` would write (``.hydra/config.yaml``, ``overrides.yaml``), written by dirac
    only once the run holds its folder: Hydra writes before any check, so a refused run would replace them.
    Both configs set ``hydra.output_subdir: null``."""
    atomic_write(out / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write(out / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(list(HydraConfig.get().overrides.task)))
