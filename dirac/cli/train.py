"""Train a DiracDiffusion model: ``python train.py experiment=blur_default [overrides]``.

Multi-GPU / multi-node: ``accelerate launch train.py …`` (same arguments).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dirac.checkpoint import read_state
from dirac.degradations import process_from_dict
from dirac.factory import (
    dataset_from_config,
    loss_from_config,
    model_from_config,
    process_from_config,
    schedule_from_config,
)
from dirac.models import count_parameters
from dirac.training import Trainer, train_config_from_dict

log = logging.getLogger("dirac.train")


def _resume_point(cfg: DictConfig, out: Path) -> Path | None:
    last = out / "checkpoints" / "last"
    if cfg.resume == "auto":
        return last if last.exists() else None
    if cfg.resume in ("never", None):
        if last.exists():
            raise SystemExit(
                f"{out} already holds checkpoints and resume=never; use resume=auto to continue it or pick "
                f"another hydra.run.dir"
            )
        return None
    return Path(cfg.resume)


def _check_compatible(state: dict, c: dict, where: Path) -> None:
    """Refuse to continue a run whose degradation or architecture differs from the requested config."""
    old = state["config"]
    for key in ("degradation", "model"):
        if old[key] != c[key]:
            raise SystemExit(
                f"checkpoint {where} was trained with {key}={json.dumps(old[key])}, but this run asks for "
                f"{key}={json.dumps(c[key])}; start a new run (another hydra.run.dir) or use the checkpoint's settings"
            )


@hydra.main(config_path="pkg://dirac.configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    c = OmegaConf.to_container(cfg, resolve=True)
    resume_from = _resume_point(cfg, out)
    torch.manual_seed(int(c["trainer"]["seed"]))  # reproducible initial weights
    net = model_from_config(c["model"])  # first: a size the network cannot take fails before any data work
    train_set = dataset_from_config(c["data"], "train")
    val_set = dataset_from_config(c["data"], "val")
    if resume_from is not None:
        state = read_state(resume_from)
        _check_compatible(state, c, resume_from)
        process = process_from_dict(state["process"])  # keeps the schedule computed when the run started
        log.info("resuming from %s at step %d", resume_from, state["step"])
    else:
        process = process_from_config(c["degradation"])
        n = min(int(c["schedule"].get("num_images", 64)), len(train_set))
        images = torch.stack([train_set[i] for i in range(n)])
        process = process.with_schedule(schedule_from_config(process, images, c["schedule"]))
    (out / "schedule.json").write_text(json.dumps(process.schedule.to_dict(), indent=1))
    log.info("model: %.2f M parameters; process: %s", count_parameters(net) / 1e6, process)
    logger = c.get("logger", {"backend": "none"})
    log_with = "wandb" if logger["backend"] == "wandb" else None
    tracker_init = {"wandb": {"mode": logger.get("mode", "offline"), "dir": str(out), "entity": logger.get("entity")}}
    trainer = Trainer(
        net,
        process,
        loss_from_config(process, c["loss"]),
        train_set,
        val_set,
        train_config_from_dict(c["trainer"]),
        out,
        run_state={"config": c, "model": c["model"], "data": c["data"]},
        log_with=log_with,
        tracker_init=tracker_init,
    )
    if resume_from is not None:
        trainer.resume(resume_from)
    logs = trainer.fit()
    summary = {"step": trainer.step, "checkpoint": str(out / "checkpoints" / "last"), **logs}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
