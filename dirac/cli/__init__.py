"""Hydra command-line entry points: ``dirac-train`` / ``dirac-sample`` (also ``python train.py`` /
``python sample.py`` at the repository's top level). Configs are read from the package (``dirac.configs``)."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def hydra_record(cfg: DictConfig) -> dict[str, str]:
    """What Hydra's ``output_subdir`` would write, ``{relative path: text}`` (``.hydra/config.yaml``,
    ``overrides.yaml``). Both configs set ``hydra.output_subdir: null`` and dirac writes these itself, once the run
    holds its folder (Hydra writes before any check, so a refused run would replace another run's record)."""
    overrides = list(HydraConfig.get().overrides.task)
    return {".hydra/config.yaml": OmegaConf.to_yaml(cfg), ".hydra/overrides.yaml": OmegaConf.to_yaml(overrides)}
