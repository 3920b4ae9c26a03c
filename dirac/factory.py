"""Build core objects from plain config dicts (what the Hydra entry points pass in).

Core modules never read configs; this module is the one place that turns resolved config mappings into
processes, networks, losses, samplers and datasets, and reloads them from checkpoints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, read_state, read_weights, require_keys
from .data import build_dataset
from .data.augment import Augmented
from .data.procedural import ProceduralMix
from .degradations import DegradationProcess, SeveritySchedule, build_process, process_from_dict
from .losses import IncrementalReconstructionLoss
from .models import NCSNppConfig, Reconstructor, build_ncsnpp, count_parameters
from .sampling import ReverseSampler, build_guidance
from .scheduling import greedy_schedule, mse_distance
from .shipped import resolve_checkpoint
from .symmetry import GROUPS, is_group


def _one_line(e: BaseException, limit: int = 300) -> str:
    return " ".join(str(e).split())[:limit]


def config_number(cfg: dict[str, Any], key: str, group: str, kind: type = float, default: Any = None) -> Any:
    """``cfg[key]`` as a finite ``int``/``float`` (ints accepted for floats), or a ``ValueError`` naming
    ``group.key``; ``int`` values must also be positive."""
    v = cfg.get(key, default)
    if kind is float and type(v) is int:
        v = float(v)
    if type(v) is not kind or (kind is float and not math.isfinite(v)) or (kind is int and v <= 0):
        want = "a positive integer" if kind is int else "a finite number"
        raise ValueError(f"{group}.{key} must be {want}, got {v!r}")
    return v


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def process_from_config(cfg: dict[str, Any]) -> DegradationProcess:
    """``{"kind": "blur", "std_min": …, "noise": {...}}`` -> process (linear schedule until scheduled)."""
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    noise = cfg.pop("noise", None)
    return build_process(kind, noise=noise, **cfg)


DEFAULT_MAX_PARAMS = 500_000_000


def max_parameters() -> int:
    """The largest network dirac builds: ``DIRAC_MAX_PARAMS`` (default 500 M parameters)."""
    raw = os.environ.get("DIRAC_MAX_PARAMS", str(DEFAULT_MAX_PARAMS))
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"DIRAC_MAX_PARAMS must be a positive integer, got {raw!r}")
    return limit


def model_from_config(cfg: dict[str, Any], where: str = "model") -> torch.nn.Module:
    """Build the network, after counting its parameters on the meta device (no memory) against
    :func:`max_parameters`; a bad config is a one-line ``ValueError`` naming ``where``."""
    try:
        spec = NCSNppConfig.from_dict(dict(cfg))
        with torch.device("meta"):
            n = count_parameters(build_ncsnpp(spec))
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise ValueError(f"invalid network config in {where}: {_one_line(e)}") from None
    limit = max_parameters()
    if n > limit:
        raise ValueError(
            f"the network in {where} would have {n:,} parameters, above the limit of {limit:,}; if that is "
            f"intended, raise it with the environment variable DIRAC_MAX_PARAMS={n}"
        )
    return build_ncsnpp(spec)


# the loss keys a config may leave out, with the value that means (older runs lack the later ones)
LOSS_DEFAULTS: dict[str, float | str | None] = {
    "t_min": 1e-3,
    "t_final_prob": 0.0,
    "norm": "l2",
    "teacher": None,
    "teacher_weight": 0.5,
    "teacher_group": "dihedral",
}


def loss_from_config(
    process: DegradationProcess, cfg: dict[str, Any], teacher: Callable[..., torch.Tensor] | None = None
) -> IncrementalReconstructionLoss:
    """The loss of the ``loss`` config group (``teacher_group`` and ``teacher_weight`` checked here); ``teacher``,
    built by the caller from the checkpoint ``loss.teacher`` names (I/O stays in the CLI), is the distillation
    target's source."""
    group = cfg.get("teacher_group", LOSS_DEFAULTS["teacher_group"])
    if not is_group(group):
        raise ValueError(f"loss.teacher_group={group!r} is not a symmetry group; choose one of {sorted(GROUPS)}")
    try:
        return IncrementalReconstructionLoss(
            process,
            delta_t=config_number(cfg, "delta_t", "loss", float),
            weighting=cfg.get("weighting"),
            t_min=config_number(cfg, "t_min", "loss", float, LOSS_DEFAULTS["t_min"]),
            t_final_prob=config_number(cfg, "t_final_prob", "loss", float, LOSS_DEFAULTS["t_final_prob"]),
            norm=str(cfg.get("norm", LOSS_DEFAULTS["norm"])),
            teacher=teacher,
            teacher_weight=config_number(cfg, "teacher_weight", "loss", float, LOSS_DEFAULTS["teacher_weight"]),
        )
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("loss.") else f"loss: {msg}") from None


def _sampler_number(v: Any, key: str, whole: bool = False) -> float:
    """``v`` as a finite float (a positive whole number with ``whole``), any real type but ``bool`` (NumPy and 0-d
    tensors included); otherwise a one-line error naming ``sampler.key`` (``steps=2.99`` once ran 2 steps)."""
    try:
        x = float(v) if not isinstance(v, (bool, str)) and v is not None else math.nan
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or (whole and (x < 1 or x != int(x))):
        want = "a positive integer" if whole else "a finite number"
        raise ValueError(f"sampler.{key} must be {want}, got {v!r}")
    return x


def sampler_from_config(
    process: DegradationProcess, cfg: dict[str, Any], t_stop: float | None = None
) -> ReverseSampler:
    """A ``ReverseSampler`` from ``configs/sampler``; ``t_stop`` labels (auto/do/po) must be resolved to a time
    first (``dirac.stopping_choice``), or passed as the ``t_stop`` argument."""
    chosen = cfg["t_stop"] if t_stop is None else t_stop
    if isinstance(chosen, str):
        raise ValueError(
            f"sampler.t_stop={chosen!r} is a label: resolve it with dirac.stopping_choice (or DiracPipeline) "
            f"or pass a float t_stop in [0, 1]"
        )
    return ReverseSampler(
        process,
        steps=int(_sampler_number(cfg["steps"], "steps", whole=True)),
        step=cfg["step"],
        guidance=build_guidance(
            cfg.get("guidance"), _sampler_number(cfg.get("guidance_strength", 0.0), "guidance_strength")
        ),
        t_stop=_sampler_number(chosen, "t_stop"),
        output=cfg.get("output", "x0"),
    )


def dataset_from_config(cfg: dict[str, Any], split: str, **extra: Any) -> torch.utils.data.Dataset:
    """``{"name": "photos", "train": {...}, "eval": {...}, **common}``: split-specific kwargs merged in."""
    cfg = dict(cfg)
    if "name" not in cfg:
        raise ValueError(
            f"data has no name (got keys {sorted(cfg)}): pick a dataset group first, e.g. data=photos "
            f"data.eval.KEY=..., or set data.name"
        )
    name = cfg.pop("name")
    per_split = dict(cfg.pop("train", None) or {}), cfg.pop("eval", None) or {}
    augment, procedural = per_split[0].pop("augment", None), per_split[0].pop("procedural", None)
    kwargs = {**cfg, **(per_split[0] if split == "train" else per_split[1]), **extra}
    data = build_dataset(name, split, **kwargs)
    if split != "train":
        return data
    seed = int(kwargs.get("seed", 0))
    if augment:  # data.train.augment: augment.AUGMENT_KEYS
        # named here: Augmented's float() would not say which key held a non-number
        numbers = ("jitter", "shift", "hue", "warp", "shading", "mixup")
        augment = {**augment, **{k: config_number(augment, k, "data.train.augment") for k in numbers if k in augment}}
        data = Augmented(data, seed=seed, **augment)
    if procedural:  # data.train.procedural: {fraction, r_min, r_max, max_shapes}
        opts = dict(procedural)
        if "fraction" not in opts:
            raise ValueError("data.train.procedural needs a fraction (share of dead-leaves images, 0..1)")
        sample = data[0]
        data = ProceduralMix(data, image_size=sample.shape[-1], channels=sample.shape[0], seed=seed, **opts)
    return data


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

        if not cfg.get("lpips_weights"):
            raise ValueError("schedule.distance=lpips needs schedule.lpips_weights (a local weights file)")
        lp = load_lpips(cfg.get("lpips_net", "alex"), cfg["lpips_weights"])
        dist_fn = lp
    else:
        raise ValueError(f"unknown schedule distance {distance!r}; choose 'mse' or 'lpips' (needs lpips_weights)")
    return greedy_schedule(
        process,
        images,
        num_steps=config_number(cfg, "num_steps", "schedule", int),
        num_candidates=config_number(cfg, "num_candidates", "schedule", int),
        distance=dist_fn,
    )


ROLES = ("dirac", "prior", "regressor")


def checkpoint_role(state: dict[str, Any]) -> str:
    """What a checkpoint is: ``prior`` (trained on the identity process: an unconditional denoiser for the peers),
    ``regressor`` (trained at t = 1 only: ``loss.t_min = 1``) or ``dirac`` (a DiracDiffusion reconstruction model)."""
    if state.get("process", {}).get("kind") == "identity":
        return "prior"
    loss = (state.get("config") or {}).get("loss") or {}
    return "regressor" if float(loss.get("t_min", 0.0) or 0.0) >= 1.0 else "dirac"


def require_role(state: dict[str, Any], role: str, name: str, key: str = "checkpoint") -> None:
    """Refuse a checkpoint of another role with a one-line reason naming it and what to do instead."""
    found = checkpoint_role(state)
    if found == role:
        return
    use = {"prior": "it is the unconditional prior of the peers: pass it as compare.prior",
           "regressor": "it is the supervised regressor peer: pass it as compare.regressor",
           "dirac": "it is a DiracDiffusion model: pass it as checkpoint="}[found]  # fmt: skip
    raise ValueError(f"{key}={name} is not a {role} checkpoint ({use})")


PROCESS_RECORD = ("kind", "params", "noise", "schedule")  # what DegradationProcess.to_dict writes


def load_checkpoint(folder: str | Path, ema: bool = True, device: str | torch.device = "cpu"):
    """``(Reconstructor in eval mode, process with its stored schedule, state dict)`` from a checkpoint folder
    or the name of a shipped model."""
    folder = resolve_checkpoint(folder)
    state = read_state(folder)
    require_keys(state, ("model", "process"), folder)
    if not isinstance(state["model"], dict) or not isinstance(state["process"], dict):
        raise CheckpointError(f"{folder}/state.json: 'model' and 'process' must be JSON objects")
    lacking = [k for k in PROCESS_RECORD if k not in state["process"]]
    if lacking:  # defaults would silently give another process (e.g. another t-grid than DO/PO were chosen on)
        raise CheckpointError(
            f"cannot load checkpoint {folder}: 'process' in state.json lacks {lacking}; re-export it from its run"
        )
    net = model_from_config(state["model"], where=f"{folder}/state.json")
    weights = read_weights(folder, ema=ema)
    try:
        process = process_from_dict(state["process"])
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"cannot load checkpoint {folder}: bad 'process' in state.json ({_one_line(e)})"
        ) from None
    try:
        missing, unexpected = net.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shape mismatches raise even when not strict
        raise CheckpointError(f"checkpoint {folder} does not match its model config ({_one_line(e)})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {folder} does not match its model config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model = Reconstructor(net, process.noise, process).to(device).eval()
    return model, process, state
