"""Validate the ``up`` and ``perception_control`` groups of the sample config (one-line ``ValueError`` naming
the key and the fix), before any heavy import."""

from __future__ import annotations

from typing import Any

from .settings import as_bool, as_float, as_int

UNCERTAINTY_MODES = ("up", "perception_control")


def _names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of method names, e.g. {key}=[tikhonov], got {value!r}")
    return list(value)


def _numbers(value: Any, key: str, lo: float, hi: float) -> list[float]:
    if isinstance(value, str | bool) or not value:
        raise ValueError(f"{key} must be a non-empty list of numbers in [{lo:g}, {hi:g}], got {value!r}")
    return [as_float(v, key, lo, hi) for v in value]


def check_uncertainty_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with ``up`` and ``perception_control`` checked (and ``measurements`` refused in those modes)."""
    if cfg.get("mode") == "up" and (cfg.get("sampler") or {}).get("step") == "deterministic":
        raise ValueError(
            "mode=up needs posterior samples; sampler.step=deterministic draws K identical ones (use euler)"
        )
    if cfg.get("mode") in UNCERTAINTY_MODES and cfg.get("measurements"):
        raise ValueError(f"mode={cfg['mode']} needs ground truth; drop measurements= (it uses split={cfg['split']})")
    up = dict(cfg.get("up") or {})
    up["samples"] = as_int(up.get("samples", 8), "up.samples", minimum=2)
    up["patch"] = as_int(up.get("patch", 4), "up.patch")
    up["ks"] = _numbers(up.get("ks", [1, 2, 3]), "up.ks", 1e-3, 10.0)
    up["hallucination_k"] = as_float(up.get("hallucination_k", 3.0), "up.hallucination_k", 1e-3, 10.0)
    up["methods"] = _names(up.get("methods"), "up.methods")
    up["show"] = as_int(up.get("show", 4), "up.show")
    pc = dict(cfg.get("perception_control") or {})
    pc["alphas"] = _numbers(pc.get("alphas", [0, 0.25, 0.5, 0.75, 1]), "perception_control.alphas", 0.0, 1.0)
    pc["fit_images"] = as_int(pc.get("fit_images", 12), "perception_control.fit_images", minimum=2)
    pc["patch"] = as_int(pc.get("patch", 4), "perception_control.patch")
    pc["methods"] = _names(pc.get("methods"), "perception_control.methods")
    pc["keep_dc"] = as_bool(pc.get("keep_dc", True), "perception_control.keep_dc")
    pc.setdefault("fit_split", "val")
    pc.setdefault("clean_split", "val")
    if uses_ot_maps(cfg):
        _check_ot_fit(pc, cfg.get("split", "test"))
    _check_peers_held_out(cfg, up, pc)
    return {**cfg, "up": up, "perception_control": pc}


def uses_ot_maps(cfg: dict[str, Any]) -> bool:
    """Whether the run fits Gaussian OT maps with ``perception_control``'s settings: that mode, or mode=compare's
    α curves (``compare.ot_curves``)."""
    compare_curves = cfg.get("mode") == "compare" and (cfg.get("compare") or {}).get("ot_curves", True)
    return cfg.get("mode") == "perception_control" or bool(compare_curves)


def _check_ot_fit(pc: dict[str, Any], split: str) -> None:
    """The OT map is fitted on val or train, never on the evaluated split or test, and must transport something."""
    for key in ("fit_split", "clean_split"):
        if pc[key] in (split, "test"):
            raise ValueError(
                f"perception_control.{key}={pc[key]} would fit the OT map on the evaluated or the test split "
                f"(split={split}); evaluate on test (split=test) and fit on val or train"
            )
    if pc["keep_dc"] and pc["patch"] == 1:
        raise ValueError(
            "perception_control.patch=1 with keep_dc=true transports nothing (a one-pixel patch is all mean); use "
            "patch >= 2 or keep_dc=false"
        )


def _check_peers_held_out(cfg: dict[str, Any], up: dict[str, Any], pc: dict[str, Any]) -> None:
    """The uncertainty modes tune their peers on val, which then may not be the evaluated split."""
    mode, split = cfg.get("mode"), cfg.get("split", "test")
    methods = {"up": up["methods"], "perception_control": pc["methods"]}.get(mode)
    if methods and split == "val":
        raise ValueError(
            f"mode={mode} tunes its peers ({', '.join(methods)}) on val, the evaluated split; evaluate on test "
            f"(split=test) or drop {mode}.methods"
        )
