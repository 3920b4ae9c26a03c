"""The rows of ``compare.json`` (metric, 95 % bootstrap interval, cost) and their Markdown table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..metrics.registry import Metric
from .intervals import bootstrap_mean, bootstrap_set


def metric_ci(
    metric: Metric, x: Tensor, clean: Tensor, resamples: int, seed: int, set_resamples: int = 0
) -> tuple[float, list[float] | None, list[float] | None]:
    """``(value, [lo, hi], per-image values)``: the metric on all images, its 95 % bootstrap interval over images
    and, for a per-image metric, the values it was computed from (a per-image metric: bootstrap of the mean; a
    set-level one: the metric recomputed on ``set_resamples`` resampled image sets — each costs a whole SWD (~10 s
    for 64 crops on a CPU), so 0 (no interval, ``None``) is the default; no per-image values)."""
    if metric.per_image:
        vals = metric(x, clean).double().cpu().tolist()
        lo, hi = bootstrap_mean(vals, resamples, seed)
        return sum(vals) / len(vals), [lo, hi], vals
    lo, hi = (
        bootstrap_set(
            lambda idx: metric.mean(x[torch.from_numpy(idx)], clean[torch.from_numpy(idx)]),
            len(x),
            set_resamples,
            seed,
        )
        if set_resamples > 0
        else (None, None)
    )
    if lo is None:
        return metric.mean(x, clean), None, None
    return metric.mean(x, clean), [lo, hi], None


def metric_row(
    x: Tensor, clean: Tensor, metrics: Mapping[str, Metric], resamples: int, seed: int, set_resamples: int = 0
) -> dict[str, Any]:
    """``{"psnr": …, "psnr_ci": [lo, hi], "ssim": …, "perceptual": …, "perceptual_metric": NAME}`` for ``x``."""
    row: dict[str, Any] = {}
    for key, m in metrics.items():
        row[key], row[f"{key}_ci"], values = metric_ci(m, x, clean, resamples, seed, set_resamples)
        if key == "psnr":
            row["psnr_per_image"] = [round(v, 4) for v in values]  # for paired comparisons (bench/prior_ablation)
    row["perceptual_metric"] = metrics["perceptual"].name
    return row


def method_row(
    label: str, summary: Mapping[str, Any], metrics: dict[str, Any], info: Mapping[str, Any]
) -> dict[str, Any]:
    """One ``compare.json`` row from a :func:`.compare.compare` summary (timing, data consistency), the metric
    values and ``info`` (params, oracle, description)."""
    timing = summary.get("timing", {})
    return {
        "method": label,
        **metrics,
        "nfe": int(timing.get("nfe_per_image", 0)),
        "wall_s": float(timing.get("wall_s", 0.0)),
        "images_per_s": float(timing.get("images_per_s", 0.0)),
        "data_consistency": float(summary["data_consistency"]),
        "params": dict(info.get("params", {})),
        "oracle": bool(info.get("oracle", False)),
        "description": str(info.get("description", "")),
    }


def _num(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """PSNR ± half-interval, SSIM, perceptual distance, NFE and images/s, one line per row."""
    perc = rows[0].get("perceptual_metric", "perceptual").upper() if rows else "PERCEPTUAL"
    lines = [
        f"| method | PSNR (dB) [95% CI] | SSIM [95% CI] | {perc} (lower better) | NFE | images/s | params |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["method"] + (" (oracle)" if r.get("oracle") else "")
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        psnr = f"{_num(r.get('psnr'))} [{_num(r['psnr_ci'][0])}, {_num(r['psnr_ci'][1])}]" if "psnr_ci" in r else "–"
        ssim = (
            f"{_num(r.get('ssim'), 3)} [{_num(r['ssim_ci'][0], 3)}, {_num(r['ssim_ci'][1], 3)}]"
            if "ssim_ci" in r
            else "–"
        )
        ips = "–" if not r.get("wall_s") else f"{r['images_per_s']:.3g}"
        lines.append(f"| {name} | {psnr} | {ssim} | {_num(r.get('perceptual'), 3)} | {r['nfe']} | {ips} | {params} |")
    return lines


def markdown(doc: Mapping[str, Any], fixed: Mapping[str, Mapping[str, Any]], paper: Mapping[str, Mapping]) -> str:
    """The whole ``compare.md``: a line on the protocol, the table, the fixed settings and the skipped methods."""
    head = (
        f"Split: **{doc['split']}** ({doc['num_images']} images), hyper-parameters tuned on **{doc['tuned_on']}**, "
        f"checkpoint `{doc['checkpoint']}`. Intervals: 95 % percentile bootstrap over images; oracle rows are tuned "
        "on the test images themselves (an upper bound, not a fair result)."
    )
    lines = ["# Comparison on the same measurements", "", head, "", *markdown_table(doc["rows"]), ""]
    if fixed:
        lines += ["Fixed (untuned) settings of the peers:", ""]
        for name, f in fixed.items():
            diff = {k: (v, paper.get(name, {}).get(k)) for k, v in f.items() if k in paper.get(name, {})}
            diff = {k: pv for k, pv in diff.items() if pv[0] != pv[1]}
            note = "; ".join(f"{k}={a} here vs {b} in the paper" for k, (a, b) in diff.items())
            settings = ", ".join(f"{k}={v}" for k, v in f.items()) or "none"
            lines.append(f"- {name}: {settings}" + (f" — differs from the paper: {note}" if note else ""))
        lines.append("")
    for name, why in (doc.get("skipped") or {}).items():
        lines.append(f"- skipped {name}: {why}")
    lines += [f"- note: {n}" for n in doc.get("notes") or []]
    if doc.get("ot_curves"):
        lines += ["", *ot_table(doc["ot_curves"], doc["rows"][0].get("perceptual_metric", "perceptual"), doc["ot_fit"])]
    return "\n".join(lines).rstrip() + "\n"


def ot_table(ot: Sequence[Mapping[str, Any]], perc: str, fit: Mapping[str, Any]) -> list[str]:
    """The perception knob's end points per method: PSNR and the perceptual distance at the smallest and largest α."""
    lines = [f"Perception knob (Gaussian OT, x̂_α = (1 − α)·x̂ + α·T(x̂); T fitted on {fit['restored']} against "
             f"{fit['clean']}):", "", f"| method | α | PSNR (dB) | {perc.upper()} | α | PSNR (dB) | {perc.upper()} |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in dict.fromkeys(r["method"] for r in ot):
        pts = sorted((r for r in ot if r["method"] == name), key=lambda r: r["alpha"])
        a, b = pts[0], pts[-1]
        lines.append(f"| {name} | {a['alpha']:g} | {_num(a['psnr'])} | {_num(a[perc], 3)} | {b['alpha']:g} | "
                     f"{_num(b['psnr'])} | {_num(b[perc], 3)} |")  # fmt: skip
    return lines
