"""Build core objects from plain config dicts (what the Hydra entry points pass in).

Core modules never read configs; this module is the one place that turns resolved config mappings into
processes, networks, losses, samplers and datasets, and reloads them from checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import read_state, read_weights
from .data import build_dataset
from .degradations import DegradationProcess, SeveritySchedule, build_process, process_from_dict
from .losses import IncrementalReconstructionLoss
from .models import NCSNppConfig, Reconstructor, build_ncsnpp
from .sampling import ReverseSampler, build_guidance
from .scheduling import greedy_schedule, mse_distance
from .shipped import resolve_checkpoint


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def process_from_config(cfg: dict[str, Any]) -> DegradationProcess:
    """``{"kind": "blur", "std_min": …, "noise": {...}}`` -> process (linear schedule until scheduled)."""
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    noise = cfg.pop("noise", None)
    return build_process(kind, noise=noise, **cfg)


def model_from_config(cfg: dict[str, Any]) -> torch.nn.Module:
    return build_ncsnpp(NCSNppConfig.from_dict(dict(cfg)))


def loss_from_config(process: DegradationProcess, cfg: dict[str, Any]) -> IncrementalReconstructionLoss:
    return IncrementalReconstructionLoss(
        process, delta_t=float(cfg["delta_t"]), weighting=cfg["weighting"], t_min=float(cfg.get("t_min", 1e-3))
    )


def sampler_from_config(
    process: DegradationProcess, cfg: dict[str, Any], t_stop: float | None = None
) -> ReverseSampler:
    return ReverseSampler(
        process,
        steps=int(cfg["steps"]),
        step=cfg["step"],
        guidance=build_guidance(cfg.get("guidance"), float(cfg.get("guidance_strength", 0.0))),
        t_stop=float(cfg["t_stop"] if t_stop is None else t_stop),
        output=cfg.get("output", "x0"),
    )


def dataset_from_config(cfg: dict[str, Any], split: str, **extra: Any) -> torch.utils.data.Dataset:
    """``{"name": "photos", "train": {...}, "eval": {...}, **common}``: split-specific kwargs merged in."""
    cfg = dict(cfg)
    name = cfg.pop("name")
    per_split = cfg.pop("train", None) or {}, cfg.pop("eval", None) or {}
    kwargs = {**cfg, **(per_split[0] if split == "train" else per_split[1]), **extra}
    return build_dataset(name, split, **kwargs)


def schedule_from_config(process: DegradationProcess, images: torch.Tensor, cfg: dict[str, Any]) -> SeveritySchedule:
    """Greedy (Alg. 2) or linear severity schedule as configured."""
    kind = cfg.get("kind", "greedy")
    if kind == "linear" or process.kind == "identity":
        return process.schedule
    if kind != "greedy":
        raise ValueError(f"unknown schedule kind {kind!r}; choose 'greedy' or 'linear'")
    distance = cfg.get("distance", "mse")
    if distance == "mse":
        dist_fn = mse_distance
    elif distance == "lpips":
        from .metrics import load_lpips

        lp = load_lpips(cfg.get("lpips_net", "alex"), cfg["lpips_weights"])
        dist_fn = lp
    else:
        raise ValueError(f"unknown schedule distance {distance!r}; choose 'mse' or 'lpips' (needs lpips_weights)")
    return greedy_schedule(
        process, images, num_steps=int(cfg["num_steps"]), num_candidates=int(cfg["num_candidates"]), distance=dist_fn
    )


def load_checkpoint(folder: str | Path, ema: bool = True, device: str | torch.device = "cpu"):
    """``(Reconstructor in eval mode, process with its stored schedule, state dict)`` from a checkpoint folder
    or the name of a shipped model."""
    folder = resolve_checkpoint(folder)
    state = read_state(folder)
    process = process_from_dict(state["process"])
    net = model_from_config(state["model"])
    weights = read_weights(folder, ema=ema)
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {folder} does not match its model config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model = Reconstructor(net, process.noise).to(device).eval()
    return model, process, state
