"""``mode=tune`` and ``mode=compare``: Dirac and its peers on the same measurements.

* :func:`tune_mode` — every peer's hyper-parameters chosen on the validation split only (the loader is wrapped so
  that asking for any other split is an error), written to ``tuned.yaml``;
* :func:`compare_mode` — on the test split: Dirac DO / PO (from the early-stopping choice file), every peer with
  its tuned hyper-parameters, ``NAME_oracle`` rows (tuned on the test images: an upper bound) and the measurement,
  with 95 % bootstrap intervals, written to ``compare.json`` / ``compare.md`` and three figures.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from torch import Tensor

from ..io import atomic_write
from ..metrics.registry import Metric
from ..reconstruction import Restorer
from ..symmetry import SymmetryEnsemble
from . import compare_figures as figs
from .compare import SplitLoader, compare
from .compare_table import markdown, method_row, metric_row
from .methods import Method, Resources
from .modes import MEANING, Context
from .peers import TUNED_FILE, Peers, check_tuned_entries, check_tuned_process, find_tuned, read_tuned
from .sweep import trajectory_curves
from .tuning import tune_methods_on
from .uncertainty_modes import check_patches, fit_description, ot_curves, unpaired_fit_sets

log = logging.getLogger("dirac.sample")


def only_split(load: SplitLoader, split: str) -> SplitLoader:
    """``load`` restricted to ``split``: any other split is refused (tuning never sees the test images)."""

    def guarded(asked: str) -> tuple[Tensor, Tensor]:
        if asked != split:
            raise RuntimeError(f"tuning asked for the {asked!r} split; only {split!r} may be used for tuning")
        return load(asked)

    return guarded


def _plain(v: Any) -> Any:
    """YAML/JSON-safe values (tuples -> lists, numpy/torch scalars -> Python numbers)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v.item() if hasattr(v, "item") else v


def tune_peers(
    methods: Mapping[str, Method], resources: Resources, load: SplitLoader, split: str, batch_size: int, seed: int
) -> tuple[dict[str, dict[str, Any]], int]:
    """``({name: {params, fixed, scores}}, number of images)``: each method tuned on ``split`` (mean PSNR)."""
    if not methods:
        return {}, 0
    clean, y = only_split(load, split)(split)
    tuned = tune_methods_on(methods, resources, clean, y, batch_size, seed)
    entries = {n: {"params": t.params, "fixed": dict(methods[n].fixed), "scores": t.scores} for n, t in tuned.items()}
    return _plain(entries), len(y)


def tuned_document(ctx: Context, peers: Peers, split: str, n: int, entries: dict[str, Any]) -> dict[str, Any]:
    """The content of ``tuned.yaml``."""
    return _plain({
        "checkpoint": ctx.checkpoint, "split": split, "num_images": n, "process": ctx.process.to_dict(),
        "prior": peers.resources.names.get("prior"), "regressor": peers.resources.names.get("regressor"),
        "overrides": peers.overrides, "skipped": peers.skipped, "methods": entries,
    })  # fmt: skip


def write_tuned(ctx: Context, doc: dict[str, Any]) -> Path:
    path = ctx.out.root / TUNED_FILE
    ctx.out.produce(atomic_write, path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def tune_mode(ctx: Context, peers: Peers, split: str) -> dict[str, Any]:
    """Tune every peer on ``split``; write ``tuned.yaml``; returns its content (also stored in metrics.json)."""
    s = ctx.settings
    entries, n = tune_peers(peers.methods, peers.resources, ctx.load, split, s.batch_size, s.seed)
    doc = tuned_document(ctx, peers, split, n, entries)
    log.info("tuned %d method(s) on %s: %s", len(entries), split, write_tuned(ctx, doc))
    return {**doc, "notes": peers.notes}


def _tuned_for(ctx: Context, peers: Peers, value: Any, split: str, evaluated: str) -> tuple[dict[str, Any], str]:
    """The tuned file to use (checked against the process, and refused when tuned on the ``evaluated`` split) and
    where it came from; methods it lacks are tuned on ``split`` now (logged), and the result is written as this
    run's ``tuned.yaml``."""
    path = find_tuned(value, ctx.checkpoint)
    doc: dict[str, Any] = {"split": split, "methods": {}}
    if path is not None:
        doc = read_tuned(path)
        check_tuned_process(doc, ctx.process, path)
        check_tuned_entries(doc, {**peers.methods, **peers.oracle}, path)
        if doc.get("split") == evaluated and value in (None, "auto"):  # the shipped file serves another split
            log.info("%s was tuned on %s, the split evaluated now: tuning on %s instead", path, evaluated, split)
            path, doc = None, {"split": split, "methods": {}}
        elif doc.get("split") == evaluated:
            raise ValueError(
                f"{path} was tuned on split={evaluated}, the split this comparison evaluates (its rows would be "
                f"oracle rows); run mode=tune with sweep.split other than {evaluated} and pass its tuned.yaml"
            )
    missing = {n: m for n, m in peers.methods.items() if n not in doc["methods"]}
    if not missing:
        return doc, str(path)
    log.info("tuning %s on %s first (no tuned file has them)", sorted(missing), split)
    s = ctx.settings
    entries, n = tune_peers(missing, peers.resources, ctx.load, split, s.batch_size, s.seed)
    doc = {**tuned_document(ctx, peers, split, n, {**doc["methods"], **entries})}
    write_tuned(ctx, doc)
    return doc, f"{TUNED_FILE} (tuned in this run)" if path is None else f"{path} + {TUNED_FILE}"


def _as_tuned(peers: Peers, name: str, m: Method, entry: Mapping[str, Any]) -> Method:
    """``m`` with its fixed settings from the tuned file, then the overrides given now (which win)."""
    return dataclasses.replace(m, fixed={**m.fixed, **(entry.get("fixed") or {}), **peers.overrides.get(name, {})})


def peer_restorers(peers: Peers, tuned: dict[str, Any]) -> dict[str, tuple[Restorer, dict[str, Any]]]:
    """``{name: (restorer with the tuned params, row info)}``; overrides given now win over the tuned file's."""
    out = {}
    for name, m in peers.methods.items():
        entry = tuned["methods"][name]
        method = _as_tuned(peers, name, m, entry)
        fixed = dict(method.fixed)
        info = {"params": entry.get("params") or {}, "fixed": fixed, "description": m.description}
        out[name] = (method.build(peers.resources, info["params"], name), info)
    return out


def oracle_restorers(
    peers: Peers, tuned: dict[str, Any], clean: Tensor, y: Tensor, batch_size: int, seed: int
) -> dict[str, tuple]:
    """``NAME_oracle``: tuned on the evaluated images (an upper bound), at the same fixed settings as the tuned
    row; methods with nothing to tune have none."""
    methods = {name: _as_tuned(peers, name, m, tuned["methods"].get(name) or {}) for name, m in peers.oracle.items()}
    out = {}
    for name, t in tune_methods_on(methods, peers.resources, clean, y, batch_size, seed, gridless=False).items():
        info = {"params": _plain(t.params), "oracle": True, "description": f"{methods[name].description} (oracle)"}
        out[f"{name}_oracle"] = (t.restorer, info)
    return out


def dirac_row(label: str) -> str:
    """The comparison row of Dirac's stopping point ``label`` (``dirac_do``, ``dirac_po``, ``dirac_t0.5``…)."""
    return f"dirac_{label}"


def dirac_restorers(ctx: Context, points: Mapping[str, tuple[float, dict]]) -> dict[str, tuple]:
    """``dirac_do`` / ``dirac_po`` (or ``dirac_full``, ``dirac_t…``) from the stopping points."""
    out = {}
    for label, (t, s) in points.items():
        r = ctx.make(t, s)
        info = {"params": {"t_stop": r.t_stop, "steps": s.get("steps")}, "description": MEANING.get(label, label)}
        out[dirac_row(label)] = (r, info)
    return out


def check_ensemble_rows(groups: Mapping[str, str], rows: Iterable[str]) -> None:
    """Refuse a ``compare.ensemble`` entry that names none of the comparison's (non-oracle) ``rows``."""
    rows = sorted(rows)
    for name in groups:
        if name not in rows:
            raise ValueError(f"compare.ensemble names row {name!r}, which this comparison lacks; rows: {rows}")


def ensemble_restorers(entries: Mapping[str, tuple], groups: Mapping[str, str]) -> dict[str, tuple]:
    """``NAME+GROUP`` rows: row ``NAME``'s restorer averaged over a symmetry group (:mod:`dirac.symmetry`)."""
    check_ensemble_rows(groups, [k for k, (_, info) in entries.items() if not info.get("oracle")])
    out = {}
    for name, group in groups.items():
        restorer, info = entries[name]
        ens = SymmetryEnsemble(restorer, group)
        params = {**info["params"], "ensemble": group}
        text = f"{info['description']}, averaged over the {group} group ({len(ens.members)} calls; test-time)"
        out[f"{name}+{group}"] = (ens, {**info, "params": params, "description": text})
    return out


def ot_fit_sets(ctx: Context, pc: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """The OT maps' fit sets (:func:`unpaired_fit_sets`), refused before any row runs when their patches are too
    few for the patch size."""
    fit = unpaired_fit_sets(ctx.load, pc)
    check_patches(fit[0], min(len(fit[0]), len(fit[1])), pc["patch"], "perception_control.patch")
    return fit


def ot_section(
    ctx: Context, entries: Mapping[str, tuple], outs: Mapping[str, Tensor], clean: Tensor, pc: dict[str, Any],
    metrics: dict[str, Metric], fit: tuple[Tensor, Tensor],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """The perception knob on every non-oracle row: Gaussian OT α curves (``perception_control`` settings; maps
    fitted on ``fit``, the fit split, never on the evaluated images) and what they were fitted on."""
    restorers = {k: r for k, (r, info) in entries.items() if not info.get("oracle")}
    test_outs = {k: outs[k][:, 0] for k in restorers}
    return ot_curves(
        ctx, restorers, test_outs, clean, fit, pc, [metrics["psnr"], metrics["perceptual"]]
    ), fit_description(pc, fit)


def _figures(ctx: Context, rows: list[dict], outs: dict[str, Tensor], clean: Tensor, y: Tensor, k: int,
             curves: tuple[dict | None, list | None], caption: str) -> None:  # fmt: skip
    folder = ctx.out.root / "figures"
    images = {"ground truth": clean[:k], "measurement": y[:k].clamp(0, 1), **{lb: o[:k, 0] for lb, o in outs.items()}}
    titles = {r["method"]: f"{r['method']}\n{r['psnr']:.2f} dB" for r in rows if "psnr" in r}
    ctx.out.produce(lambda: [
        figs.image_rows(folder / "compare_images.png", images, titles, caption),
        figs.perception_distortion(folder / "perception_distortion.png", rows, curves[0], caption, curves[1]),
        figs.psnr_vs_nfe(folder / "psnr_vs_nfe.png", rows, caption),
    ])  # fmt: skip


def compare_mode(
    ctx: Context, peers: Peers, ccfg: Mapping[str, Any], splits: tuple[str, str], points: Mapping[str, tuple],
    metrics: dict[str, Metric],
) -> dict[str, Any]:  # fmt: skip
    """Dirac, the tuned peers, the oracle rows and the measurement on ``splits[1]``; tuned on ``splits[0]``."""
    tuned, source = _tuned_for(ctx, peers, ccfg.get("tuned", "auto"), *splits)
    with_ot = bool(ccfg.get("ot_curves") and ccfg.get("perception_control"))
    fit = ot_fit_sets(ctx, ccfg["perception_control"]) if with_ot else None
    clean, y = ctx.load(splits[1])
    s, boot, sboot = ctx.settings, int(ccfg.get("bootstrap", 1000)), int(ccfg.get("bootstrap_set", 0))
    entries = {**dirac_restorers(ctx, points), **peer_restorers(peers, tuned)}
    entries.update(ensemble_restorers(entries, ccfg.get("ensemble") or {}))
    entries.update(oracle_restorers(peers, tuned, clean, y, s.batch_size, s.seed))
    summaries, outs = compare(
        {k: (r, 1) for k, (r, _) in entries.items()}, clean, y, dataclasses.replace(s, metrics=[])
    )
    rows = [method_row(k, summaries[k], metric_row(outs[k][:, 0], clean, metrics, boot, s.seed, sboot), info)
            for k, (_, info) in entries.items()]  # fmt: skip
    if y.shape == clean.shape:
        meas = {"params": {}, "description": "the measurement itself (the number every method must beat)"}
        m_row = metric_row(y, clean, metrics, boot, s.seed, sboot)
        rows.append(method_row("measurement", {"data_consistency": 0.0}, m_row, meas))
    doc = {"split": splits[1], "tuned_on": tuned.get("split", splits[0]), "checkpoint": ctx.checkpoint,
           "num_images": len(y), "tuned_file": source, "bootstrap": boot, "rows": rows,
           "skipped": peers.skipped, "notes": peers.notes}  # fmt: skip
    curve = None
    if ccfg.get("trajectory", True) and points:
        sampler = points.get("po", next(iter(points.values())))[1]
        c = trajectory_curves(ctx.make(0.0, sampler), clean, y, metrics["perceptual"], s)
        curve = {"psnr": c["psnr"], "perceptual": c["perceptual"], "t": c["t"]}
    ot = None
    if fit is not None:
        ot, doc["ot_fit"] = ot_section(ctx, entries, outs, clean, ccfg["perception_control"], metrics, fit)
        doc["ot_curves"] = ot
    caption = f"split: {splits[1]} · tuned on {doc['tuned_on']} · checkpoint: {ctx.checkpoint} · {len(y)} images"
    _figures(ctx, rows, outs, clean, y, min(int(ccfg.get("grid_images", 6)), len(y)), (curve, ot), caption)
    ctx.out.json("compare.json", doc)
    fixed = {k: info["fixed"] for k, (_, info) in entries.items() if "fixed" in info}
    paper = {n: dict(getattr(m, "paper", None) or {}) for n, m in peers.methods.items()}
    ctx.out.produce(atomic_write, ctx.out.root / "compare.md", markdown(doc, fixed, paper).encode())
    return doc
