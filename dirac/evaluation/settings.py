"""Validate the sample CLI's values and resolve ``sampler.t_stop`` into named stopping points.

Every bad value is a ``ValueError`` naming the key and the fix (the CLI turns it into one line, exit 1).
``t_stop``: ``auto`` (DO and PO from the early-stopping choice file when the checkpoint has one, else the full
run to t = 0), ``do`` / ``po`` (that point of the choice file), or a float in [0, 1].
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..stopping_choice import LABELS, load_stopping_choice, stopping_point
from ..symmetry import GROUPS, is_group

log = logging.getLogger("dirac.sample")
MODES = ("reconstruct", "sweep", "tune", "compare", "up", "perception_control")
STEP_TYPES = ("euler", "ancestral", "deterministic")  # = dirac.sampling.sampler.STEP_TYPES (a test checks)
OUTPUTS = ("x0", "iterate")  # = dirac.sampling.sampler.OUTPUTS
GUIDANCE = (None, "none", "off", "std", "error")  # what dirac.sampling.build_guidance accepts
T_STOP_LABELS = ("auto", *LABELS)
PRECISIONS = ("no", "bf16", "fp16")


def as_int(value: Any, key: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (bools, fractions and text refused, naming ``key``)."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
    if not ok or int(value) < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum} (e.g. {key}={max(minimum, 1)}), got {value!r}")
    return int(value)


def as_float(value: Any, key: str, lo: float, hi: float = float("inf")) -> float:
    """``value`` as a float in ``[lo, hi]`` (naming ``key``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise ValueError(f"{key} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def as_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def check_t_stop(value: Any) -> str | float:
    """``auto``/``do``/``po`` or a float in [0, 1]."""
    if isinstance(value, str) and value in T_STOP_LABELS:
        return value
    if isinstance(value, str) or isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"sampler.t_stop must be one of {T_STOP_LABELS} or a number in [0, 1], got {value!r}")
    return as_float(value, "sampler.t_stop", 0.0, 1.0)


def check_sampler(s: dict[str, Any]) -> dict[str, Any]:
    """The sampler group with every value checked (step type, output, guidance kind, numbers)."""
    s = dict(s)
    for key, allowed in (("step", STEP_TYPES), ("output", OUTPUTS), ("guidance", GUIDANCE)):
        if s.get(key) not in allowed:
            names = ", ".join(str(a) for a in allowed if a)
            raise ValueError(f"unknown sampler.{key} {s.get(key)!r} (unknown {key} type); choose one of {names}")
    s["steps"] = as_int(s.get("steps"), "sampler.steps")
    s["guidance_strength"] = as_float(s.get("guidance_strength", 0.0), "sampler.guidance_strength", 0.0)
    s["t_stop"] = check_t_stop(s.get("t_stop"))
    if s.get("noise_sigma") is not None:  # the upper limit is the checkpoint's sigma(1), checked once it is loaded
        s["noise_sigma"] = as_float(s["noise_sigma"], "sampler.noise_sigma", 0.0)
    return s


def check_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The resolved sample config, every value checked (see the module docstring)."""
    if cfg.get("mode") not in MODES:
        raise ValueError(f"unknown mode {cfg.get('mode')!r}; choose one of mode={'|'.join(MODES)}")
    cfg = dict(cfg, sampler=check_sampler(cfg["sampler"]))
    cfg["batch_size"] = as_int(cfg.get("batch_size"), "batch_size")
    cfg["samples_per_measurement"] = as_int(cfg.get("samples_per_measurement"), "samples_per_measurement")
    cfg["seed"] = as_int(cfg.get("seed"), "seed", minimum=0)
    cfg["ensemble"] = check_ensemble(cfg.get("ensemble"), cfg["mode"])
    if cfg.get("num_images") is not None:
        cfg["num_images"] = as_int(cfg["num_images"], "num_images")
    for key in ("overwrite", "save_images", "ema", "per_image_noise"):
        cfg[key] = as_bool(cfg.get(key, False), key)
    metrics = cfg.get("metrics") or []
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise ValueError(f"metrics must be a list of metric names, e.g. metrics=[psnr,ssim], got {metrics!r}")
    if cfg["mode"] in ("tune", "compare") and cfg.get("measurements"):
        raise ValueError(f"mode={cfg['mode']} needs ground truth; drop measurements= (use mode=reconstruct for them)")
    if cfg["mode"] == "compare" and cfg.get("split") == (cfg.get("sweep") or {}).get("split", "val"):
        raise ValueError(f"mode=compare evaluates on split={cfg.get('split')}, which is also sweep.split (where "
                         f"the peers are tuned); use split=test")  # fmt: skip
    sweep = dict(cfg.get("sweep") or {})
    sweep["po_samples"] = as_int(sweep.get("po_samples", 1), "sweep.po_samples")
    cfg.update(check_speed(cfg))
    return {**cfg, "metrics": list(metrics), "sweep": sweep, "compare": check_compare(cfg.get("compare") or {})}


def check_ensemble(value: Any, mode: str) -> str | None:
    """``ensemble``: null or a symmetry group, for ``mode=reconstruct`` (compare has ``compare.ensemble``)."""
    if value is None:
        return None
    if not is_group(value):
        raise ValueError(f"ensemble must be null or one of {'|'.join(GROUPS)}, got {value!r}")
    if mode != "reconstruct":
        raise ValueError(f"ensemble= applies to mode=reconstruct; for mode={mode} drop it (mode=compare adds "
                         f"ensemble rows with +compare.ensemble.dirac_do={value})")  # fmt: skip
    return value


def check_speed(cfg: dict[str, Any]) -> dict[str, Any]:
    """``mixed_precision`` (no | bf16 | fp16), ``compile`` (bool), ``compile_backend`` and ``logger.backend``."""
    precision = cfg.get("mixed_precision", "no")
    if precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {'|'.join(PRECISIONS)}, got {precision!r}")
    backend = cfg.get("compile_backend", "inductor")
    if not isinstance(backend, str) or not backend:
        raise ValueError(f"compile_backend must be a torch.compile backend name (inductor, aot_eager), got {backend!r}")
    logger = cfg.get("logger") or {"backend": "none"}
    if logger.get("backend") not in ("none", "wandb"):
        raise ValueError(f"logger must be none or wandb, got {logger.get('backend')!r}")
    return {"mixed_precision": precision, "compile": as_bool(cfg.get("compile", False), "compile"),
            "compile_backend": backend, "logger": logger}  # fmt: skip


def _names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of method names, e.g. {key}=[tikhonov,admm_tv], got {value!r}")
    return list(value)


def check_compare(c: dict[str, Any]) -> dict[str, Any]:
    """The ``compare`` block of ``mode=tune`` / ``mode=compare`` with every value checked (method names are
    checked against the registry later, when it is imported)."""
    c = dict(c)
    c["methods"], c["oracle"] = _names(c.get("methods"), "compare.methods"), _names(c.get("oracle"), "compare.oracle")
    for key in ("prior", "regressor", "tuned"):
        if c.get(key, "auto") is not None and not isinstance(c.get(key, "auto"), str):
            raise ValueError(f"compare.{key} must be auto, null or a checkpoint name/path, got {c.get(key)!r}")
        c.setdefault(key, "auto")
    overrides = c.get("overrides") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ValueError(f"compare.overrides must map a method to its settings (+compare.overrides.dps.steps=1000), "
                         f"got {overrides!r}")  # fmt: skip
    c["overrides"] = overrides
    ensemble = {} if c.get("ensemble") is None else c["ensemble"]
    if not isinstance(ensemble, dict) or not all(is_group(v) for v in ensemble.values()):
        raise ValueError(f"compare.ensemble must map a row to a symmetry group ({'|'.join(GROUPS)}), e.g. "
                         f"+compare.ensemble.dirac_do=dihedral, got {ensemble!r}")  # fmt: skip
    c["ensemble"] = dict(ensemble)
    c["trajectory"] = as_bool(c.get("trajectory", True), "compare.trajectory")
    c["ot_curves"] = as_bool(c.get("ot_curves", True), "compare.ot_curves")
    c["bootstrap"] = as_int(c.get("bootstrap", 1000), "compare.bootstrap")
    c["bootstrap_set"] = as_int(c.get("bootstrap_set", 0), "compare.bootstrap_set", minimum=0)
    c["grid_images"] = as_int(c.get("grid_images", 6), "compare.grid_images")
    return c


def stopping_points(
    sampler_cfg: dict[str, Any], choice_path: Path, fingerprint: str | None
) -> dict[str, tuple[float, dict[str, Any]]]:
    """``{label: (t_stop, sampler settings)}`` for the requested ``sampler.t_stop``.

    A float gives one point labelled ``t<value>``; ``do``/``po`` read the choice file (refused when it was chosen
    for other weights); ``auto`` gives DO and PO from the choice file, or ``full`` (t = 0) when there is none.
    """
    t_stop = sampler_cfg["t_stop"]
    base = {k: v for k, v in sampler_cfg.items() if k != "t_stop"}
    if not isinstance(t_stop, str):
        return {f"t{t_stop:g}": (float(t_stop), base)}
    if t_stop == "auto" and not choice_path.is_file():
        log.info("no early-stopping choice file (%s): one full run to t = 0 ('full')", choice_path)
        return {"full": (0.0, base)}
    choice = load_stopping_choice(choice_path, fingerprint)
    labels = [lb for lb in LABELS if lb in choice] if t_stop == "auto" else [t_stop]
    points = {}
    for label in labels:
        t, settings = stopping_point(choice, label, choice_path)
        for k, v in settings.items():
            if base.get(k) != v:
                log.warning("sampler.%s=%r replaced by %r from %s (DO/PO hold for the settings they were chosen with)",
                            k, base.get(k), v, choice_path)  # fmt: skip
        points[label] = (t, {**base, **settings})
    return points
