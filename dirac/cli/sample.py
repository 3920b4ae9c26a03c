"""Reconstruct measurements with a trained DiracDiffusion model (``dirac-sample`` / ``python sample.py``).

    python sample.py                                   # shipped blur model on the embedded test split
    python sample.py checkpoint=runs/train/X/checkpoints/last sampler.t_stop=0.25 sampler.guidance=std \
        sampler.guidance_strength=0.5 samples_per_measurement=4
    python sample.py measurements=/path/to/my/blurry/pngs
    python sample.py mode=sweep                        # early-stopping sweep: DO/PO choice, curves, figures
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dirac.analysis.early_stopping import (
    choose_stopping_points,
    peak_before_end,
    per_step_metrics,
    stack_trajectories,
)
from dirac.analysis.timing import Stopwatch, bare_forward_seconds
from dirac.baselines import best_lambda_tikhonov
from dirac.data import MeasurementFolderDataset
from dirac.degradations import DegradationProcess
from dirac.factory import dataset_from_config, load_checkpoint, process_from_config, sampler_from_config
from dirac.io import save_grid, save_image
from dirac.metrics import MultiScalePatchDistance, psnr, ssim
from dirac.sampling import ReverseSampler, data_consistency
from dirac.shipped import resolve_checkpoint

log = logging.getLogger("dirac.sample")


# ----------------------------------------------------------------------------------------------- inputs
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_degradation(requested: dict | None, process: DegradationProcess, checkpoint: str) -> None:
    """Refuse a degradation config that differs from the one the checkpoint was trained for."""
    if not requested:
        return
    wanted = process_from_config(requested)
    if wanted.kind != process.kind:
        raise SystemExit(
            f"checkpoint {checkpoint} was trained for the '{process.kind}' degradation, but degradation="
            f"'{wanted.kind}' was requested; use a checkpoint trained for '{wanted.kind}' (e.g. "
            f"pretrained/{wanted.kind}_default) or drop the degradation override"
        )
    if wanted.params() != process.params() or wanted.noise.to_dict() != process.noise.to_dict():
        raise SystemExit(
            f"checkpoint {checkpoint} was trained for {process.kind} with {process.params()} and noise "
            f"{process.noise.to_dict()}, but {wanted.params()} / {wanted.noise.to_dict()} was requested; the "
            f"network only knows the degradation process it was trained on"
        )


def load_clean(cfg: DictConfig, state: dict, split: str) -> torch.Tensor:
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else state["data"]
    ds = dataset_from_config(data_cfg, split)
    n = len(ds) if cfg.num_images is None else min(int(cfg.num_images), len(ds))
    return torch.stack([ds[i] for i in range(n)])


def resolve_t_stop(cfg: DictConfig) -> tuple[dict[str, Any], str]:
    """The sampler config, with ``t_stop=do|po`` replaced by the sweep's choice (and its grid settings)."""
    s = OmegaConf.to_container(cfg.sampler, resolve=True)
    label = str(s["t_stop"])
    if label in ("do", "po"):
        path = Path(cfg.choice) if cfg.choice else resolve_checkpoint(cfg.checkpoint) / "early_stopping.json"
        if not path.is_file():
            raise SystemExit(
                f"sampler.t_stop={label} needs an early-stopping choice file, {path} does not exist; run "
                f"`python sample.py mode=sweep checkpoint={cfg.checkpoint}` first and pass "
                f"choice=OUT/early_stopping.json"
            )
        choice = json.loads(path.read_text())
        if label not in choice:
            raise SystemExit(f"{path} has no '{label}' point (keys: {sorted(choice)})")
        for key in ("steps", "step", "guidance", "guidance_strength", "output"):
            s[key] = choice["sampler"][key]
        s["t_stop"] = float(choice[label]["t"])
        log.info("t_stop=%s -> %.3f with sampler %s (from %s)", label, s["t_stop"], choice["sampler"], path)
    else:
        s["t_stop"] = float(s["t_stop"])
    return s, label


# ---------------------------------------------------------------------------------------------- running
def run_batches(
    sampler: ReverseSampler,
    model: torch.nn.Module,
    y: torch.Tensor,
    batch_size: int,
    samples: int,
    seed: int,
    device: torch.device,
    record_x0: str | None = None,
) -> dict[str, Any]:
    """Reconstruct every measurement ``samples`` times, in batches; returns outputs, trajectories, timing."""
    g = torch.Generator(device=device).manual_seed(seed)
    outs, dcs, trajs = [], [], []
    nfe_calls = 0
    sw = Stopwatch(device)
    reps = y.repeat_interleave(samples, dim=0)
    for start in range(0, len(reps), batch_size):
        yb = reps[start : start + batch_size].to(device)
        with sw:
            res = sampler(model, yb, g, record_x0=record_x0)
        nfe_calls += res.nfe
        outs.append(res.output.cpu())
        dcs.append(res.data_consistency)
        if record_x0:
            trajs.append({i: v.cpu() for i, v in res.x0_trajectory.items()})
    out = torch.cat(outs).view(len(y), samples, *y.shape[1:])
    bare = bare_forward_seconds(model, reps[:batch_size].to(device))
    n_batches = math.ceil(len(reps) / batch_size)
    return {
        "output": out,
        "data_consistency": torch.cat(dcs, dim=1),  # (points, N * samples)
        "trajectory": stack_trajectories(trajs) if record_x0 else None,
        "t_grid": res.t_grid,
        "timing": {
            "wall_s": sw.seconds,
            "images_per_s": len(reps) / sw.seconds,
            "nfe_per_image": res.nfe,
            "network_calls": nfe_calls,
            "batches": n_batches,
            "bare_forward_s": bare,
            # sampler wall time / (network calls × bare forward on a full batch): 1.0 = no overhead at all
            "overhead_ratio": sw.seconds / (nfe_calls * bare),
            "guidance_note": "with guidance each call is forward + backward" if sampler.guidance else "",
        },
    }


def image_metrics(x: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"psnr": psnr(x.clamp(0, 1), clean), "ssim": ssim(x.clamp(0, 1), clean)}


def summarise(
    run: dict[str, Any],
    clean: torch.Tensor | None,
    y: torch.Tensor,
    process: DegradationProcess,
    perceptual: MultiScalePatchDistance,
) -> dict[str, Any]:
    out = run["output"]  # (N, S, C, H, W)
    first = out[:, 0]
    summary: dict[str, Any] = {
        "num_images": len(out),
        "samples_per_measurement": out.shape[1],
        "data_consistency": float(data_consistency(process, first, y).mean()),
        "sigma_y": process.sigma_y,
        "timing": run["timing"],
    }
    if clean is None:
        return summary
    per_sample = [image_metrics(out[:, s], clean) for s in range(out.shape[1])]
    meas = image_metrics(y, clean)
    summary.update(
        psnr=float(torch.stack([m["psnr"] for m in per_sample]).mean()),
        ssim=float(torch.stack([m["ssim"] for m in per_sample]).mean()),
        measurement_psnr=float(meas["psnr"].mean()),
        measurement_ssim=float(meas["ssim"].mean()),
        swd=float(perceptual.swd(first.clamp(0, 1), clean)),
        measurement_swd=float(perceptual.swd(y.clamp(0, 1), clean)),
    )
    if out.shape[1] > 1:
        mean_est = out.mean(1)
        summary["psnr_of_sample_mean"] = float(psnr(mean_est.clamp(0, 1), clean).mean())
        summary["mean_pixel_std"] = float(out.std(1).mean())
    summary["per_image"] = [
        {
            "index": i,
            "psnr": float(per_sample[0]["psnr"][i]),
            "ssim": float(per_sample[0]["ssim"][i]),
            "measurement_psnr": float(meas["psnr"][i]),
        }
        for i in range(len(out))
    ]
    return summary


def save_outputs(
    out_dir: Path, run: dict[str, Any], y: torch.Tensor, clean: torch.Tensor | None, names: list[str], tag: str = ""
) -> None:
    out = run["output"]
    for i, name in enumerate(names):
        stem = Path(name).with_suffix("")
        for s in range(out.shape[1]):
            suffix = f"_s{s}" if out.shape[1] > 1 else ""
            save_image(out[i, s], out_dir / f"reconstructions{tag}" / f"{stem}{suffix}.png")
        if out.shape[1] > 1:
            std = out[i].std(0).mean(0, keepdim=True)
            save_image(std / std.max().clamp_min(1e-8), out_dir / f"uncertainty{tag}" / f"{stem}.png")
    k = min(16, len(out))
    cols = ([clean[:k]] if clean is not None else []) + [y[:k].clamp(0, 1)] + [out[:k, s] for s in range(out.shape[1])]
    if out.shape[1] > 1:
        std = out[:k].std(1).mean(1, keepdim=True)
        cols.append(std / std.flatten(1).max(1).values.clamp_min(1e-8).view(-1, 1, 1, 1))
    save_grid(cols, out_dir / f"grid{tag}.png", scale=3)


# ------------------------------------------------------------------------------------------------ modes
def reconstruct(cfg: DictConfig, out_dir: Path, model, process, state, device) -> dict[str, Any]:
    s_cfg, label = resolve_t_stop(cfg)
    sampler = sampler_from_config(process, s_cfg)
    if cfg.measurements:
        ds = MeasurementFolderDataset(cfg.measurements, channels=int(state["model"]["channels"]))
        items = [ds[i] for i in range(len(ds) if cfg.num_images is None else min(len(ds), int(cfg.num_images)))]
        y = torch.stack([it[0] for it in items])
        names = [str(it[1]) for it in items]
        clean = None
    else:
        clean = load_clean(cfg, state, cfg.split)
        y = process.measure(clean, torch.Generator().manual_seed(int(cfg.seed) + 10_000))
        names = [f"{i:04d}.png" for i in range(len(clean))]
    run = run_batches(sampler, model, y, int(cfg.batch_size), int(cfg.samples_per_measurement), int(cfg.seed), device)
    summary = summarise(run, clean, y, process, MultiScalePatchDistance(normalize="reference"))
    summary = {"checkpoint": str(cfg.checkpoint), "t_stop_label": label, "sampler": s_cfg, **summary}
    if cfg.save_images:
        save_outputs(out_dir, run, y, clean, names)
        for i, name in enumerate(names):
            save_image(y[i].clamp(0, 1), out_dir / "measurements" / Path(name).with_suffix(".png"))
    return summary


def sweep(cfg: DictConfig, out_dir: Path, model, process, state, device) -> dict[str, Any]:
    """Early-stopping sweep on the validation split, DO/PO chosen there, then both evaluated on the test split."""
    from dirac.analysis import plots

    s_cfg = OmegaConf.to_container(cfg.sampler, resolve=True)
    if str(s_cfg["t_stop"]) in ("do", "po"):
        raise SystemExit("mode=sweep explores every t_stop itself; leave sampler.t_stop numeric (0 = full run)")
    s_cfg["t_stop"] = 0.0
    sampler = sampler_from_config(process, s_cfg)
    perceptual_fn, p_name = _perceptual(cfg)
    seed = int(cfg.seed)

    val_clean = load_clean(cfg, state, cfg.sweep.split)
    val_y = process.measure(val_clean, torch.Generator().manual_seed(seed + 20_000))
    run = run_batches(sampler, model, val_y, int(cfg.batch_size), 1, seed, device, record_x0="all")
    curves = per_step_metrics(run["trajectory"], val_clean, run["t_grid"], perceptual_fn)
    dc = run["data_consistency"]
    curves["data_consistency"] = dc.mean(1).tolist()
    curves["data_consistency_std"] = dc.std(1).tolist()
    choice = choose_stopping_points(curves)
    choice["sampler"] = {k: s_cfg[k] for k in ("steps", "step", "guidance", "guidance_strength", "output")}
    choice.update(split=cfg.sweep.split, perceptual=p_name, checkpoint=str(cfg.checkpoint))
    (out_dir / "early_stopping.json").write_text(json.dumps(choice, indent=2))
    (out_dir / "sweep_curves.json").write_text(json.dumps(curves, indent=1))

    # evaluate DO and PO on the test split
    test_clean = load_clean(cfg, state, cfg.sweep.eval_split)
    test_y = process.measure(test_clean, torch.Generator().manual_seed(seed + 10_000))
    pd = MultiScalePatchDistance(normalize="reference")
    results: dict[str, Any] = {}
    runs = {}
    for label in ("do", "po"):
        t_stop = float(choice[label]["t"])
        samples = 1 if label == "do" else max(1, int(cfg.sweep.po_samples))
        r = run_batches(
            sampler_from_config(process, s_cfg, t_stop=t_stop),
            model,
            test_y,
            int(cfg.batch_size),
            samples,
            seed + 1,
            device,
        )
        runs[label] = r
        results[label] = {"t_stop": t_stop, **summarise(r, test_clean, test_y, process, pd)}
        results[label].pop("per_image")
    meas = image_metrics(test_y, test_clean)
    baselines: dict[str, Any] = {}
    if cfg.sweep.baselines:
        # the classical number to beat, on the very same operator and test measurements (oracle λ on test)
        lam, _, rec = best_lambda_tikhonov(process, test_clean, test_y)
        rec_metrics = {k: float(v.mean()) for k, v in image_metrics(rec, test_clean).items()}
        baselines["tikhonov"] = {"lambda": lam, **rec_metrics, "swd": float(pd.swd(rec.clamp(0, 1), test_clean))}

    # figures (PNG + JSON each)
    fig = out_dir / "figures"
    t = curves["t"]
    i_do = curves["t"].index(choice["do"]["t"])
    i_po = curves["t"].index(choice["po"]["t"]) if "po" in choice else None
    plots.plot_perception_distortion(
        curves["psnr"],
        curves["perceptual"],
        t,
        fig / "perception_distortion.png",
        do_index=i_do,
        po_index=i_po,
        perceptual_name=p_name,
        extra_points={
            "measurement": (
                float(perceptual_fn(val_y.clamp(0, 1), val_clean)),
                float(psnr(val_y.clamp(0, 1), val_clean).mean()),
            )
        },
    )
    plots.plot_metrics_vs_t(
        t,
        {"PSNR (dB)": curves["psnr"], "SSIM": curves["ssim"], p_name: curves["perceptual"]},
        fig / "metrics_vs_t.png",
        higher_is_better={"PSNR (dB)": True, "SSIM": True, p_name: False},
        marks={"DO": choice["do"]["t"], **({"PO": choice["po"]["t"]} if "po" in choice else {})},
    )
    dc_t = [float(v) for v in run["t_grid"][: len(curves["data_consistency"])]]
    plots.plot_data_consistency(
        dc_t,
        curves["data_consistency"],
        fig / "data_consistency.png",
        sigma_y=process.sigma_y,
        dc_std=curves["data_consistency_std"],
    )
    sched = process.schedule
    plots.plot_schedule(
        sched.t_knots,
        sched.severities,
        fig / "schedule.png",
        severity_name={"blur": "blur std (px)", "inpaint": "mask width w (px)"}.get(process.kind, "severity"),
        linear=(sched.s_min, sched.s_max),
    )
    k = min(8, len(test_clean))
    po = runs["po"]["output"][:k]
    columns = {"clean": test_clean[:k], "measurement": test_y[:k].clamp(0, 1), "DO": runs["do"]["output"][:k, 0]}
    for s in range(po.shape[1]):
        columns[f"PO #{s + 1}" if po.shape[1] > 1 else "PO"] = po[:, s]
    if po.shape[1] > 1:
        columns["std (PO)"] = po.std(1)
    plots.plot_image_grid(columns, fig / "samples.png")

    summary = {
        "checkpoint": str(cfg.checkpoint),
        "choice": choice,
        "psnr_peaks_before_end": peak_before_end(curves),
        "test": {
            **results,
            "measurement": {
                "psnr": float(meas["psnr"].mean()),
                "ssim": float(meas["ssim"].mean()),
                "swd": float(pd.swd(test_y.clamp(0, 1), test_clean)),
            },
            **baselines,
        },
        "val_timing": run["timing"],
    }
    # the top level carries the DO figures, so metrics.json has the same keys in both modes
    summary.update(
        psnr=results["do"]["psnr"], ssim=results["do"]["ssim"], measurement_psnr=results["do"]["measurement_psnr"]
    )
    return summary


def _perceptual(cfg: DictConfig):
    if cfg.sweep.perceptual == "swd":
        pd = MultiScalePatchDistance(normalize="reference")
        return (lambda x, ref: float(pd.swd(x, ref))), "SWD ×1e3 (lower = more realistic)"
    if cfg.sweep.perceptual == "lpips":
        from dirac.metrics import load_lpips

        lp = load_lpips(cfg.sweep.lpips_net, cfg.sweep.lpips_weights)
        return (lambda x, ref: float(lp(x, ref).mean())), f"LPIPS-{cfg.sweep.lpips_net} (lower = better)"
    raise SystemExit(f"unknown sweep.perceptual {cfg.sweep.perceptual!r}; choose 'swd' or 'lpips'")


@hydra.main(config_path="pkg://dirac.configs", config_name="sample", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    device = pick_device(cfg.device)
    model, process, state = load_checkpoint(cfg.checkpoint, ema=bool(cfg.ema), device=device)
    check_degradation(
        OmegaConf.to_container(cfg.degradation, resolve=True) if cfg.get("degradation") else None,
        process,
        cfg.checkpoint,
    )
    if cfg.mode == "reconstruct":
        summary = reconstruct(cfg, out_dir, model, process, state, device)
    elif cfg.mode == "sweep":
        summary = sweep(cfg, out_dir, model, process, state, device)
    else:
        raise SystemExit(f"unknown mode {cfg.mode!r}; choose 'reconstruct' or 'sweep'")
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    brief = {k: v for k, v in summary.items() if k not in ("per_image", "test", "choice", "sampler")}
    if "test" in summary:
        brief["test"] = {
            k: {m: v.get(m) for m in ("t_stop", "psnr", "ssim", "swd")} for k, v in summary["test"].items()
        }
    print(json.dumps(brief, indent=2))
    print(f"outputs in {out_dir}")


if __name__ == "__main__":
    main()
