"""The peers' inputs: which methods run, the learned networks they need, and the tuned hyper-parameter files.

* :func:`select_methods` — ``compare.methods`` checked against the registry (:data:`.methods.METHODS`);
* :func:`load_resources` — the unconditional prior and the supervised regressor (``auto`` = the shipped ones
  that go with the Dirac checkpoint), each checked against the Dirac checkpoint (one-line errors);
* :func:`find_tuned`, :func:`read_tuned`, :func:`check_tuned_process` — the ``tuned.yaml`` of ``mode=tune``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from ..degradations import DegradationProcess, process_from_dict
from ..shipped import config_dir, shipped_models
from .methods import METHODS, NEEDS, TRAIN_IMAGES, Method, Resources, missing_need

log = logging.getLogger("dirac.sample")

DEFAULT_RESOURCES = {
    "blur_default": {"prior": "prior_photos", "regressor": "regressor_blur"},
    "inpaint_default": {"prior": "prior_faces", "regressor": "regressor_inpaint"},
}
TUNED_FILE = "tuned.yaml"


def select_methods(names: Sequence[str], key: str = "compare.methods") -> dict[str, Method]:
    """``{name: Method}`` for ``names``; an unknown name is a one-line error listing the known ones."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"{key}: unknown method(s) {unknown}; known methods: {', '.join(sorted(METHODS))}")
    return {n: METHODS[n] for n in names}


def with_overrides(name: str, method: Method, overrides: Mapping[str, Any] | None) -> Method:
    """``method`` with ``compare.overrides.NAME`` applied to its ``fixed`` settings (tuned keys refused)."""
    if not overrides:
        return method
    for key in overrides:
        if key in method.grid:
            raise ValueError(
                f"compare.overrides.{name}.{key}: {key} is tuned on val (grid {list(method.grid[key])}); "
                f"override only fixed settings ({', '.join(method.fixed) or 'none'})"
            )
    method.check_settings(overrides, f"compare.overrides.{name}")
    return dataclasses.replace(method, fixed={**method.fixed, **overrides})  # keeps any field the lead adds


def _resource_name(value: Any, kind: str, checkpoint: str, notes: list[str]) -> str | None:
    """The checkpoint to load for ``kind`` (prior / regressor), or ``None`` (with a note) when there is none."""
    if value is None:
        notes.append(f"compare.{kind}=null: methods that need the {kind} are skipped")
        return None
    if value != "auto":
        return str(value)
    shipped = str(checkpoint) in shipped_models() and not Path(str(checkpoint)).exists()
    default = DEFAULT_RESOURCES.get(str(checkpoint), {}).get(kind) if shipped else None
    if default is None:
        notes.append(f"compare.{kind}=auto: no default {kind} for checkpoint {checkpoint}; set compare.{kind}=PATH")
        return None
    if default not in shipped_models():
        notes.append(f"compare.{kind}=auto: the shipped {kind} {default} is not installed; set compare.{kind}=PATH")
        return None
    return default


def probe_image(state: dict[str, Any], channels: int) -> torch.Tensor:
    """A random ``(1, channels, S, S)`` image at the checkpoint's training size ``S`` (fixed seed)."""
    size = int((state.get("data") or {}).get("image_size") or state["model"].get("image_size") or 32)
    return torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(1234))


def check_prior(name: str, state: dict[str, Any], channels: int) -> None:
    """The prior must be an identity-process (unconditional) checkpoint with the Dirac model's channels."""
    kind = state["process"]["kind"]
    if kind != "identity":
        raise ValueError(
            f"prior {name} was trained on the '{kind}' process, not 'identity'; use an unconditional prior "
            f"(e.g. experiment=prior_photos) for compare.prior"
        )
    if int(state["model"]["channels"]) != channels:
        raise ValueError(f"prior {name} has {state['model']['channels']} channels, the checkpoint {channels}; "
                         f"use a prior trained on the same images")  # fmt: skip


def check_regressor(
    name: str, reg: DegradationProcess, process: DegradationProcess, state: dict[str, Any], channels: int
) -> None:
    """The regressor must invert the same ``A_1`` and ``σ_y`` as the Dirac checkpoint, on the same channels."""
    fix = "train it with the Dirac checkpoint's degradation (experiment=regressor_*) or set compare.regressor="
    if reg.kind != process.kind:
        raise ValueError(f"regressor {name} was trained for '{reg.kind}', the checkpoint for '{process.kind}'; {fix}")
    if int(state["model"]["channels"]) != channels:
        got = state["model"]["channels"]
        raise ValueError(f"regressor {name} has {got} channels, the checkpoint {channels}; {fix}")
    probe = probe_image(state, channels)
    if not torch.allclose(reg.degrade(probe, 1.0), process.degrade(probe, 1.0), atol=1e-5):
        raise ValueError(f"regressor {name} was trained for another A_1 ({reg.params()} vs {process.params()}); {fix}")
    if abs(reg.sigma_y - process.sigma_y) > 1e-9:
        raise ValueError(f"regressor {name} was trained with sigma_y={reg.sigma_y:g}, the checkpoint with "
                         f"sigma_y={process.sigma_y:g}; {fix}")  # fmt: skip


def load_resources(
    cfg: Mapping[str, Any], checkpoint: str, process: DegradationProcess, channels: int, device: Any, ema: bool = True,
    kinds: Sequence[str] = NEEDS,
) -> tuple[Resources, list[str]]:  # fmt: skip
    """``Resources`` with the networks ``kinds`` of ``cfg`` (``compare.prior`` / ``compare.regressor``) loaded
    and checked; returns it and the notes on what was left out."""
    from ..factory import load_checkpoint

    notes: list[str] = []
    res = Resources(process)
    for kind in kinds:
        name = _resource_name(cfg.get(kind, "auto"), kind, checkpoint, notes)
        if name is None:
            continue
        model, proc, state = load_checkpoint(name, ema=ema, device=device)
        if kind == "prior":
            check_prior(name, state, channels)
        else:
            check_regressor(name, proc, process, state, channels)
        setattr(res, kind, model)
        res.names[kind] = name
    return res, notes


def svd_unavailable(process: DegradationProcess, channels: int, size: int = 64) -> str | None:
    """Why the exact SVD of ``A_1`` (Wiener, DDRM, DiffPIR) is unavailable for ``process``, or ``None``."""
    from ..baselines.spectral import spectral_operator

    try:
        spectral_operator(process, (channels, size, size))
    except ValueError as e:
        return str(e)
    return None


def runnable(methods: Mapping[str, Method], res: Resources) -> tuple[dict[str, Method], dict[str, str]]:
    """The methods whose networks are loaded and whose operator needs are met, and ``{name: why}`` for the rest."""
    keep, skipped = {}, {}
    no_svd = svd_unavailable(res.process, 1) if any(m.svd for m in methods.values()) else None
    for name, m in methods.items():
        missing = [n for n in m.needs if getattr(res, n) is None]  # the operator first: no resource would help
        why = m.operator_refusal(res.process) or (missing_need(missing[0]) if missing else None)
        why = why or (no_svd if m.svd else None)
        if why is None:
            keep[name] = m
            continue
        skipped[name] = why
        log.info("skipping %s: %s", name, why)
    return keep, skipped


def load_train_images(checkpoint: str, notes: list[str]) -> Tensor | None:
    """The Dirac checkpoint's training images as a peer fitted on data sees them
    (:func:`~dirac.models.gaussian_prior.gaussian_fit_images` of its ``data`` config), or ``None`` with a note."""
    from ..checkpoint import read_state
    from ..factory import dataset_from_config
    from ..models.gaussian_prior import gaussian_fit_images
    from ..shipped import resolve_checkpoint

    data = read_state(resolve_checkpoint(checkpoint)).get("data")
    try:
        return gaussian_fit_images(dataset_from_config(dict(data), "train"))
    except (TypeError, ValueError, OSError, KeyError) as e:
        notes.append(f"the training images of {checkpoint} do not load ({' '.join(str(e).split())[:160]}): "
                     f"methods fitted on them are skipped")  # fmt: skip
        return None


def find_tuned(value: Any, checkpoint: str) -> Path | None:
    """``compare.tuned``: ``auto`` -> the shipped ``configs/compare/<checkpoint>.yaml`` when there is one, else
    ``None`` (tune first); a path must exist."""
    if value in (None, "auto"):
        shipped = config_dir() / "compare" / f"{checkpoint}.yaml"
        return shipped if str(checkpoint) in shipped_models() and shipped.is_file() else None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"compare.tuned={value}: no such file; give a tuned.yaml written by mode=tune")
    return path


def read_tuned(path: Path) -> dict[str, Any]:
    """A tuned file's content (``methods`` and ``process`` required)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; give a tuned.yaml of mode=tune") from None
    except yaml.YAMLError as e:
        why = " ".join(str(e).split())[:160]
        raise ValueError(f"{path} is not YAML ({why}); give a tuned.yaml of mode=tune") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("methods"), dict)
        or not isinstance(data.get("process"), dict)
    ):
        raise ValueError(f"{path} is not a tuned file (no 'methods'/'process'); give a tuned.yaml of mode=tune")
    return data


def check_tuned_entries(data: dict[str, Any], methods: Mapping[str, Method], path: Path) -> None:
    """Refuse, naming ``FILE: methods.NAME.KEY``, an entry of ``methods`` in a tuned file that is not a mapping of
    ``params`` (every tuned setting, in range) and ``fixed`` (known settings, in range) — a hand edit gone wrong."""
    for name, method in methods.items():
        if name not in data["methods"]:
            continue
        entry, where = data["methods"][name], f"{path}: methods.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping with params (and fixed), got {entry!r}; rerun mode=tune")
        params, fixed = entry.get("params") or {}, entry.get("fixed") or {}
        for key, part in (("params", params), ("fixed", fixed)):
            if not isinstance(part, dict):
                raise ValueError(f"{where}.{key} must be a mapping of settings, got {part!r}")
        missing = sorted(set(method.grid) - set(params))
        if missing:
            raise ValueError(f"{where}.params lacks {', '.join(missing)}; rerun mode=tune or add it")
        method.check_settings(params, f"{where}.params")
        method.check_settings(fixed, f"{where}.fixed")


def check_tuned_process(data: dict[str, Any], process: DegradationProcess, path: Path) -> None:
    """Refuse hyper-parameters tuned for another ``A_1`` / ``σ_y`` (the severity schedule does not matter to the
    peers: they only see ``A_1`` and ``σ_y``)."""
    theirs = process_from_dict(data["process"])
    same = (theirs.kind, theirs.params(), theirs.noise.sigma_y) == (process.kind, process.params(), process.sigma_y)
    if not same:
        raise ValueError(
            f"{path} was tuned for {theirs.kind} {theirs.params()} sigma_y={theirs.noise.sigma_y:g}, not this "
            f"checkpoint's {process.kind} {process.params()} sigma_y={process.sigma_y:g}; run mode=tune for it"
        )


@dataclass
class Peers:
    """The peers of one run: loaded networks, the methods to run (overrides applied), the oracle methods, the
    skipped methods with the reason, notes for the report, and the overrides as given."""

    resources: Resources
    methods: dict[str, Method]
    oracle: dict[str, Method]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


def setup_peers(
    cfg: Mapping[str, Any], checkpoint: str, process: DegradationProcess, channels: int, device: Any, ema: bool = True,
    key: str = "compare.methods", only_needed: bool = False,
) -> Peers:  # fmt: skip
    """Check ``cfg["methods"]`` (named ``key`` in messages) / ``oracle`` / ``overrides`` (before any loading), load
    the networks (``only_needed``: just those the methods need), drop (and record) the methods whose network is
    missing."""
    methods = select_methods(list(cfg.get("methods") or []), key)
    oracle = select_methods(list(cfg.get("oracle") or []), "compare.oracle")
    overrides = {str(k): dict(v or {}) for k, v in (cfg.get("overrides") or {}).items()}
    unknown = [k for k in overrides if k not in METHODS]
    if unknown:
        raise ValueError(f"compare.overrides: unknown method(s) {unknown}; known methods: {', '.join(sorted(METHODS))}")
    methods = {n: with_overrides(n, m, overrides.get(n)) for n, m in methods.items()}
    oracle = {n: with_overrides(n, m, overrides.get(n)) for n, m in oracle.items()}
    wanted = (*methods.values(), *oracle.values())  # none loaded for a method its operator refuses (skipped below)
    kinds = [k for k in NEEDS if not only_needed or any(k in m.needs for m in wanted)]
    res, notes = load_resources(cfg, checkpoint, process, channels, device, ema, kinds)
    if any(TRAIN_IMAGES in m.needs and m.operator_refusal(process) is None for m in wanted):
        res.train_images = load_train_images(checkpoint, notes)
    for note in notes:
        log.info("%s", note)
    methods, skipped = runnable(methods, res)
    oracle, skipped_oracle = runnable(oracle, res)
    skipped.update({f"{n}_oracle": why for n, why in skipped_oracle.items()})
    return Peers(res, methods, oracle, skipped, notes, overrides)
