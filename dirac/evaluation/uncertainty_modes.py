"""``sample.py mode=up`` and ``mode=perception_control``: measured uncertainty and a perception knob.

* :func:`up`: ``K`` posterior samples per test measurement with ``x̂0(t)`` recorded at every grid time; every
  early-stopping point of the trajectory, DO, PO, the MMSE estimate (mean of the K samples) and the peers
  (hyper-parameters tuned on val) are placed on the uncertainty–perception plane (Cohen et al., NeurIPS 2024)
  with the bound ``η(P)·N(X|Y)``; the factor-2 rule, the calibration of the ±kσ intervals and the hallucination
  maps (errors the std does not flag) are measured → ``up.json`` and four figures;
* :func:`perception_control`: the few-shot Gaussian OT map (Adrai et al., NeurIPS 2023) fitted per restorer on
  ``fit_images`` restored **val** images and as many unpaired clean images (by default other **val** images:
  the clean set has to share the test distribution, and the embedded photographs' train split does not), then
  ``x̂_α = (1 − α)·x̂ + α·T(x̂)`` on test → ``perception_control.json`` and a P–D figure.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..analysis.early_stopping import stack_trajectories
from ..analysis.plots.uncertainty import plot_calibration, plot_map_grid, plot_perception_control, plot_up_plane
from ..metrics.registry import Metric, build_metric
from ..perception import GaussianOT
from ..reconstruction import Restorer
from ..uncertainty import (
    coverage,
    finite_sample_coverage,
    gaussian_coverage,
    gaussian_explained,
    hallucination,
    patch_renyi_half,
)
from ..uncertainty.gaussian import patch_count, require_enough_patches
from ..uncertainty.plane import bound_curve, uncertainty_ratio, up_point
from .compare import SplitLoader
from .methods import Resources
from .modes import Context
from .sweep import tune_methods

RATIO_NOTE = ("mean-of-K: the MMSE estimate is the mean of the K samples, so the expected ratio is 2/(1 + 1/K); "
              "factor_vs_exact_mmse = ratio·(1 + 1/K) is the paper's factor (expected 2)")  # fmt: skip


def _trajectory_samples(ctx: Context, settings: dict, y: Tensor, k: int) -> tuple[dict[int, Tensor], list[float]]:
    """``{grid index: (N, K, C, H, W)}`` of ``x̂0(t_i)`` from one full reverse run per sample, and the grid."""
    restorer = ctx.make(0.0, settings)
    restorer.record_x0 = "all"
    run = ctx.settings.run(restorer, y, samples=k)
    traj = stack_trajectories([e["x0_trajectory"] for e in run.extras])
    grid = [float(t) for t in run.extras[0]["t_grid"]]
    return {i: x.clamp(0, 1).reshape(len(y), k, *x.shape[1:]) for i, x in traj.items()}, grid


def check_patches(images: Tensor, n: int, patch: int, key: str) -> None:
    """Refuse, naming ``key``, a patch size whose Gaussian the ``n`` images of ``images``' shape cannot fit."""
    c, h, w = images.shape[-3:]
    require_enough_patches(patch_count(n, h, w, patch), c * patch * patch, key)


def _nearest(grid: list[float], t: float) -> int:
    return min(range(len(grid)), key=lambda i: abs(grid[i] - t))


def _peers(ctx: Context, names: list[str], y: Tensor, resources: Resources | None) -> dict[str, Tensor]:
    """Each peer (hyper-parameters tuned on val) run on ``y``: ``{name: (N, C, H, W)}``."""
    s = ctx.settings
    restorers, _ = tune_methods(names, resources or Resources(ctx.process), ctx.load, "val", s.batch_size, s.seed)
    return {name: s.run(r, y).output[:, 0].clamp(0, 1) for name, r in restorers.items()}


def _calibration(mean: Tensor, std: Tensor, clean: Tensor, ks: list[float], k: int) -> dict[str, Any]:
    obs = coverage(mean, std, clean, ks)
    return {
        "ks": ks,
        "observed": [obs[q] for q in ks],
        "gaussian_expected": [gaussian_coverage(q) for q in ks],
        "finite_K_expected": [finite_sample_coverage(q, k) for q in ks],
        "meaning": f"fraction of test pixels with |x − mean| ≤ k·std (mean, std of K={k} samples); calibrated "
        "Gaussian: erf(k/√2), or the Student-t value finite_K_expected when mean and std come from K samples",
    }


def _hallucinations(errors: dict[str, Tensor], std: Tensor, k: float) -> tuple[dict[str, Any], dict[str, Tensor]]:
    stats, maps = {}, {}
    for name, err in errors.items():
        hmap, unflagged, explained = hallucination(err, std, k)
        stats[name] = {"unflagged_pixel_fraction": unflagged, "explained_squared_error": explained}
        maps[name] = hmap
    stats["calibrated_gaussian"] = {"unflagged_pixel_fraction": 1 - gaussian_coverage(k),
                                    "explained_squared_error": gaussian_explained(k)}  # fmt: skip
    return stats, maps


def _plane(traj: dict[int, Tensor], grid: list[float], clean: Tensor, patch: int) -> dict[str, list[float]]:
    """``U`` and ``P`` of the single-sample estimator ``x̂0(t_i)`` at every recorded grid time."""
    out: dict[str, list[float]] = {"t": [], "uncertainty": [], "perception": []}
    for i in sorted(traj):
        x = traj[i]
        pt = up_point(x.flatten(0, 1), clean.repeat_interleave(x.shape[1], 0), patch)
        out["t"].append(grid[i])
        out["uncertainty"].append(pt["uncertainty"])
        out["perception"].append(pt["perception"])
    return out


def up(
    ctx: Context, points: dict[str, tuple[float, dict]], cfg: dict[str, Any], resources: Resources | None = None
) -> dict[str, Any]:
    """The UP plane, factor-2 check, calibration and hallucination on ``cfg["split"]``; writes ``up.json``."""
    u, split = cfg["up"], cfg["split"]
    clean, y = ctx.load(split)
    check_patches(y, len(y), u["patch"], "up.patch")  # before the K reverse runs
    settings = next(iter(points.values()))[1]
    traj, grid = _trajectory_samples(ctx, settings, y, u["samples"])
    final = traj[max(traj)]
    mean, std = final.mean(1), final.std(1)
    ratio = uncertainty_ratio(final, clean, u["patch"])
    curve = _plane(traj, grid, clean, u["patch"])
    named = {lb.upper(): traj[_nearest(grid, t)][:, 0] for lb, (t, _) in points.items() if lb in ("do", "po")}
    named.update({"sample t=0": final[:, 0], "mean of K": mean})
    named.update(_peers(ctx, u["methods"], y, resources))
    up_points = {name: up_point(x, clean, u["patch"]) for name, x in named.items()}
    d = clean.shape[1] * u["patch"] ** 2
    p_max = max(curve["perception"] + [p["perception"] for p in up_points.values()]) * 1.1 + 1e-6
    bp = torch.linspace(0, p_max, 100).tolist()
    n_xy = ratio["entropy_power_mmse"]
    bound = {"perception": bp, "uncertainty": bound_curve(bp, n_xy, d), "n_mmse": [n_xy]}
    calib = _calibration(mean, std, clean, u["ks"], u["samples"])
    errors = {name: x - clean for name, x in named.items()}
    halluc, hmaps = _hallucinations(errors, std, u["hallucination_k"])
    result = {
        "checkpoint": ctx.checkpoint, "split": split, "num_images": len(y), "patch": u["patch"], "dimension": d,
        **ratio, "ratio_reported": RATIO_NOTE, "N_X_given_Y": n_xy,
        "N_X_given_Y_meaning": "entropy power of the error of the mean of the K samples (the issue's MMSE proxy)",
        "coverage": {f"{q:g}": c for q, c in zip(u["ks"], calib["observed"], strict=True)}, "calibration": calib,
        "trajectory": curve, "points": up_points, "bound": {"perception": bp, "uncertainty": bound["uncertainty"]},
        "hallucination": {"k": u["hallucination_k"], "methods": halluc},
    }  # fmt: skip
    ctx.out.json("up.json", result)
    _up_figures(ctx, result, bound, clean, y, mean, std, hmaps, u)
    return {"checkpoint": ctx.checkpoint, "split": split, "up": {k: result[k] for k in ("coverage", *ratio)}}


def _up_figures(ctx: Context, r: dict, bound: dict, clean: Tensor, y: Tensor, mean: Tensor, std: Tensor,
                hmaps: dict[str, Tensor], u: dict) -> None:  # fmt: skip
    fig = ctx.out.root / "figures"
    cap = f"split: {r['split']} · checkpoint: {ctx.checkpoint} · {r['num_images']} images · K={u['samples']}"
    pts = {name: (p["perception"], p["uncertainty"]) for name, p in r["points"].items()}
    c = r["calibration"]
    n = min(u["show"], len(clean))
    std_map, err_map = std.mean(1, keepdim=True)[:n], (mean - clean).abs().mean(1, keepdim=True)[:n]
    k = u["hallucination_k"]
    halluc_cols = {f"{name}\nexplained {r['hallucination']['methods'][name]['explained_squared_error']:.0%}": m[:n]
                   for name, m in hmaps.items()}  # fmt: skip
    ctx.out.produce(lambda: [
        plot_up_plane(r["trajectory"], pts, bound, fig / "up_plane.png", cap),
        plot_calibration(c["ks"], {"observed (test)": c["observed"]},
                         {"calibrated Gaussian erf(k/√2)": c["gaussian_expected"],
                          f"calibrated, mean/std from K={u['samples']}": c["finite_K_expected"]},
                         fig / "calibration.png", cap),
        plot_map_grid({"ground truth": clean[:n], "measurement": y[:n].clamp(0, 1), "mean of K": mean[:n]},
                      {"posterior std": std_map, "|error of mean|": err_map}, fig / "uncertainty_maps.png",
                      "Posterior std and error on one colour scale", "[0,1] intensity (channel mean)", cap),
        plot_map_grid({"ground truth": clean[:n]}, {f"{k:g}·std": k * std_map, **halluc_cols},
                      fig / "hallucination.png", f"Unflagged errors: |e| where |e| > {k:g}·posterior std",
                      "[0,1] intensity (channel mean)", cap),
    ])  # fmt: skip


def unpaired_fit_sets(load: SplitLoader, pc: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """``(fit measurements, unpaired clean images)`` for the OT maps; when ``fit_split == clean_split`` the two are
    disjoint halves of what ``load`` returns (at most ``fit_images`` each), so no pair is ever seen."""
    fit_clean, fit_y = load(pc["fit_split"])
    if pc["clean_split"] != pc["fit_split"]:
        return fit_y[: pc["fit_images"]], load(pc["clean_split"])[0][: pc["fit_images"]]
    half = min(pc["fit_images"], len(fit_y) // 2)
    return fit_y[:half], fit_clean[half : 2 * half]


def ot_curves(
    ctx: Context, restorers: dict[str, Restorer], test_outs: dict[str, Tensor], clean: Tensor,
    fit: tuple[Tensor, Tensor], pc: dict[str, Any], metrics: list[Metric],
) -> list[dict[str, Any]]:  # fmt: skip
    """Rows ``{method, alpha, <metric>…, mse, renyi_half}``: each restorer's Gaussian OT map fitted on its outputs
    for ``fit[0]`` against the unpaired clean ``fit[1]``, then ``x̂_α = (1 − α)·x̂ + α·T(x̂)`` on its ``test_outs``."""
    rows = []
    for name, restorer in restorers.items():
        restored = ctx.settings.run(restorer, fit[0]).output[:, 0].clamp(0, 1)
        ot = GaussianOT.fit(restored, fit[1], pc["patch"], keep_dc=pc["keep_dc"])
        for a in pc["alphas"]:
            xa = ot.interpolate(test_outs[name], a).clamp(0, 1)
            row: dict[str, Any] = {"method": name, "alpha": a}
            row.update({m.name: m.mean(xa, clean) for m in metrics})
            row["mse"] = float(((xa - clean) ** 2).mean())
            row["renyi_half"] = patch_renyi_half(xa, clean, ot.patch)  # the patch statistic the map matches
            rows.append(row)
    return rows


def fit_description(pc: dict[str, Any], fit: tuple[Tensor, Tensor]) -> dict[str, Any]:
    """What the OT maps were fitted on (for the JSON outputs)."""
    return {"restored": f"{len(fit[0])} {pc['fit_split']} images", "clean": f"{len(fit[1])} {pc['clean_split']} "
            "images (unpaired)", "patch": pc["patch"], "keep_dc": pc["keep_dc"],
            "domain": "overlapping p×p×C patches, overlap-averaged"}  # fmt: skip


def perception_control(
    ctx: Context, points: dict[str, tuple[float, dict]], cfg: dict[str, Any], fit_load: SplitLoader,
    resources: Resources | None = None,
) -> dict[str, Any]:  # fmt: skip
    """α curves of Dirac-DO and the peers on ``cfg["split"]``; writes ``perception_control.json``."""
    pc, split, s = cfg["perception_control"], cfg["split"], ctx.settings
    label = "do" if "do" in points else next(iter(points))
    t, settings = points[label]
    bases: dict[str, Restorer] = {f"dirac_{label}": ctx.make(t, settings)}
    res = resources or Resources(ctx.process)
    bases.update(tune_methods(pc["methods"], res, ctx.load, "val", s.batch_size, s.seed)[0])
    fit = unpaired_fit_sets(fit_load, pc)
    check_patches(fit[0], min(len(fit[0]), len(fit[1])), pc["patch"], "perception_control.patch")
    clean, y = ctx.load(split)
    metrics = [build_metric(n) for n in ("psnr", "ssim", "swd")]
    outs = {name: s.run(r, y).output[:, 0] for name, r in bases.items()}
    rows = ot_curves(ctx, bases, outs, clean, fit, pc, metrics)
    result = {"checkpoint": ctx.checkpoint, "split": split, "num_images": len(y), "fit": fit_description(pc, fit),
              "rows": rows,
              "meaning": "x̂_α = (1 − α)·x̂ + α·T(x̂), T the Gaussian OT map restored → clean patches"}  # fmt: skip
    ctx.out.json("perception_control.json", result)
    cap = f"split: {split} · checkpoint: {ctx.checkpoint} · {len(y)} images · map fitted on {len(fit[0])} images"
    ctx.out.produce(plot_perception_control, rows, ctx.out.root / "figures" / "perception_control.png", "swd", cap)
    return {"checkpoint": ctx.checkpoint, "split": split, "rows": rows}


def run_uncertainty_mode(
    ctx: Context, points: dict[str, tuple[float, dict]], cfg: dict[str, Any], fit_load: SplitLoader,
    resources: Resources | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Dispatch ``mode=up`` / ``mode=perception_control`` (``fit_load`` serves the OT fit's small splits;
    ``resources``: the peers' networks and training images, loaded by the caller)."""
    if cfg["mode"] == "up":
        return up(ctx, points, cfg, resources)
    return perception_control(ctx, points, cfg, fit_load, resources)
