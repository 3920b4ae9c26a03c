"""Reconstruct measurements with a trained DiracDiffusion model (``dirac-sample`` / ``python sample.py``).

    python sample.py                                   # shipped blur model, test split: DO and PO side by side
    python sample.py sampler.t_stop=0.25 samples_per_measurement=4 metrics=[psnr,ssim]
    python sample.py measurements=/path/to/my/blurry/pngs
    python sample.py mode=sweep                        # choose DO/PO on val, evaluate them and baselines on test
    python sample.py mode=tune                         # tune the peers (compare.methods) on val: tuned.yaml
    python sample.py mode=compare num_images=64        # Dirac DO/PO and the tuned peers on test: compare.json/.md

The logic lives in :mod:`dirac.evaluation`; this file only turns the Hydra config into its calls.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dirac.cli import hydra_command, hydra_record
from dirac.distributed import init_processes, is_main, launched_ranks, on_main, shared_folder
from dirac.evaluation.settings import check_settings, stopping_points
from dirac.evaluation.uncertainty_settings import UNCERTAINTY_MODES, check_uncertainty_settings
from dirac.runlock import hold_run_folder
from dirac.shipped import refuse_shipped, resolve_checkpoint
from dirac.stopping_choice import CHOICE_FILE, weights_fingerprint

if TYPE_CHECKING:
    from dirac.evaluation.peers import Peers

log = logging.getLogger("dirac.sample")


def check_degradation(requested: dict | None, process: Any, checkpoint: str) -> None:
    """Refuse a degradation config that differs from the one the checkpoint was trained for."""
    if not requested:
        return
    from dirac.factory import process_from_config

    wanted = process_from_config(requested)
    if wanted.kind != process.kind:
        raise ValueError(
            f"checkpoint {checkpoint} was trained for the '{process.kind}' degradation, but degradation="
            f"'{wanted.kind}' was requested; use a checkpoint trained for '{wanted.kind}' or drop the override"
        )
    if wanted.params() != process.params() or wanted.noise.to_dict() != process.noise.to_dict():
        raise ValueError(
            f"checkpoint {checkpoint} was trained for {process.kind} with {process.params()} / noise "
            f"{process.noise.to_dict()}, not {wanted.params()} / {wanted.noise.to_dict()}; drop the override"
        )


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` …; anything else is a clear error. Under
    ``accelerate launch`` / ``torchrun`` every process joins the group and takes its own device (``cpu``: gloo)."""
    if launched_ranks() > 1:
        if name not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device={name} names one device, but {launched_ranks()} processes were launched; use "
                             f"device=auto (each process takes its own GPU) or device=cpu")  # fmt: skip
        return init_processes(cpu=name == "cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} asked for, but no CUDA device is available; use device=cpu")
    return device


def split_loader(cfg: dict[str, Any], state: dict, process: Any, sigma_y: float | None = None):
    """``load(split) -> (clean, y)``: the split's first ``num_images`` images and their seeded measurements."""
    from dirac.evaluation.measurements import measure
    from dirac.factory import dataset_from_config

    offsets = {"test": 10_000, "val": 20_000}

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = cfg.get("data") or state.get("data")
        if not isinstance(data, dict):
            raise ValueError(
                "the checkpoint's state.json records no 'data' (the dataset it was trained on), so there is no split "
                "to evaluate; pass measurements=<folder> (your own measurements) or re-export it from its training run"
            )
        ds = dataset_from_config(data, split)
        n = len(ds) if cfg["num_images"] is None else min(cfg["num_images"], len(ds))
        clean = torch.stack([ds[i] for i in range(n)])
        g = torch.Generator().manual_seed(cfg["seed"] + offsets.get(split, 30_000))
        return clean, measure(process, clean, g, sigma_y)

    return load


@dataclass
class ModeInputs:
    """A mode's own inputs, set by :func:`plan_mode` (``None``/empty where the mode has none)."""

    points: dict[str, Any] = field(default_factory=dict)  # stopping points read from early_stopping.json
    measurements: tuple[Any, list[str]] | None = None  # user measurements and their file names
    peers: Any = None  # the compared restorers (mode=tune|compare)
    perceptual: Any = None  # the sweep's perceptual metric


@dataclass
class Job:
    """What every mode needs, loaded and checked before any output is written."""

    folder: Path
    model: Any
    process: Any
    state: dict
    sigma_y: float | None
    fingerprint: str
    settings: Any
    opts: dict[str, Any]
    inputs: ModeInputs = field(default_factory=ModeInputs)


def run(cfg: dict[str, Any], out_dir: Path, job_log: str, record: dict[str, str] | None = None) -> dict[str, Any]:
    """Check ``cfg``, load the job, check ``out_dir`` and run the mode; ``record`` (``{relative path: text}``, the
    config as Hydra would record it) is written with the outputs, just before the first of them."""
    cfg = check_uncertainty_settings(check_settings(cfg))  # every value checked before the (slow) heavy imports
    device = pick_device(str(cfg["device"]))
    out_dir = shared_folder(out_dir)
    if cfg["logger"].get("backend") == "wandb":
        from dirac.tracking import require_wandb, wandb_init_kwargs

        require_wandb()  # a missing extra or a bad logger value stops before any work
        wandb_init_kwargs(cfg["logger"], out_dir)
    job = load_job(cfg, device)
    plan_mode(cfg, job)  # every setting refused here leaves no trace in out_dir
    on_main(refuse_shipped, out_dir, "write outputs")  # before the lock file is made in it
    with hold_run_folder(out_dir):  # one dirac run per folder: two at once would mix their outputs
        return _run_held(cfg, job, out_dir, job_log, record)


def _run_held(cfg: dict[str, Any], job: Job, out_dir: Path, job_log: str,
              record: dict[str, str] | None) -> dict[str, Any]:  # fmt: skip
    """:func:`run` once the folder is held: the folder's checks, the mode and the outputs."""
    from dirac.evaluation import Context, OutputFolder, SamplerRestorer
    from dirac.factory import sampler_from_config

    out = OutputFolder(out_dir, ignore=[job_log], record=record)
    out.prepare(cfg["overwrite"])

    def make(t_stop: float, s: dict[str, Any]) -> Any:
        return SamplerRestorer(job.model, sampler_from_config(job.process, {**s, "t_stop": t_stop}))

    ctx = Context(make, job.process, split_loader(cfg, job.state, job.process, job.sigma_y), job.settings, out,
                  str(cfg["checkpoint"]), cfg["save_images"])  # fmt: skip
    summary = run_mode(cfg, ctx, job)
    out.json("metrics.json", summary)
    out.finish()
    if (cfg.get("logger") or {}).get("backend") == "wandb" and is_main():
        from dirac.tracking import log_sample_run

        figures = [out.root / f for f in out.written if f.startswith("figures/") and f.endswith(".png")]
        log_sample_run(cfg["logger"], out.root, cfg, summary, figures)
    return summary


def load_job(cfg: dict[str, Any], device: torch.device) -> Job:
    """The checkpoint (weights, process, state), the measurement noise and the metrics of the run."""
    from dirac.degradations import check_measurement_noise
    from dirac.evaluation import RunSettings
    from dirac.factory import load_checkpoint, require_role
    from dirac.metrics.registry import build_metric

    folder = resolve_checkpoint(cfg["checkpoint"])
    model, process, state = load_checkpoint(folder, ema=cfg["ema"], device=device)
    speed_up(model.net, cfg["mixed_precision"], cfg["compile"], cfg["compile_backend"])
    require_role(state, "dirac", str(cfg["checkpoint"]))
    check_degradation(cfg.get("degradation"), process, cfg["checkpoint"])
    sigma_y = check_measurement_noise(cfg["sampler"].pop("noise_sigma", None), process.noise, str(cfg["checkpoint"]))
    opts = {"lpips_net": cfg["lpips_net"], "lpips_weights": cfg["lpips_weights"]}
    settings = RunSettings(cfg["batch_size"], cfg["seed"], cfg["per_image_noise"], device,
                           [build_metric(m, **opts) for m in cfg["metrics"]])  # fmt: skip
    return Job(folder, model, process, state, sigma_y, weights_fingerprint(folder, cfg["ema"]), settings, opts)


def plan_mode(cfg: dict[str, Any], job: Job) -> None:
    """The mode's own inputs into ``job.inputs`` — stopping points, user measurements, peers, the perceptual
    metric — so that a bad choice file, folder, method or network stops the run before it writes anything."""
    from dirac.evaluation.measurements import load_measurements, top_up_measurements
    from dirac.metrics.registry import build_metric

    sampler_cfg, mode = cfg["sampler"], cfg["mode"]
    if mode == "sweep":
        if sampler_cfg["t_stop"] not in ("auto", 0, 0.0):
            raise ValueError("mode=sweep explores every t_stop itself; leave sampler.t_stop at auto (or 0)")
        job.inputs.perceptual = build_metric(cfg["sweep"]["perceptual"], **job.opts)
    elif mode != "tune":
        choice_path = Path(cfg["choice"]) if cfg["choice"] else job.folder / CHOICE_FILE
        job.inputs.points = stopping_points(sampler_cfg, choice_path, job.fingerprint)
        if cfg["measurements"]:
            ys, names = load_measurements(cfg["measurements"], int(job.state["model"]["channels"]), cfg["num_images"])
            check_sizes_run(ys, names, job.process)
            job.inputs.measurements = (top_up_measurements(ys, job.process, job.sigma_y, cfg["seed"]), names)
        check_ensemble_fits(cfg["ensemble"], job)
    if mode in ("tune", "compare") or (mode in UNCERTAINTY_MODES and cfg[mode]["methods"]):
        job.inputs.peers = _peers_of(cfg, job)
        if mode == "compare":
            check_compare_ensemble(cfg["compare"]["ensemble"], job)


def _peers_of(cfg: dict[str, Any], job: Job) -> Peers:
    """The peers of ``mode=tune|compare`` (``compare.*``) or of an uncertainty mode (``MODE.methods``, with the
    networks of ``compare.prior`` / ``compare.regressor`` they need; tuned afresh on val, so ``compare.overrides``
    do not apply): networks loaded and checked before any sampling."""
    from dirac.evaluation.peers import setup_peers

    mode, channels = cfg["mode"], int(job.state["model"]["channels"])
    if mode in UNCERTAINTY_MODES:
        ccfg = {**cfg["compare"], "methods": cfg[mode]["methods"], "oracle": [], "overrides": {}}
    else:
        ccfg = {**cfg["compare"], "oracle": cfg["compare"]["oracle"] if mode == "compare" else []}
    key, only = (f"{mode}.methods", True) if mode in UNCERTAINTY_MODES else ("compare.methods", False)
    peers = setup_peers(ccfg, str(cfg["checkpoint"]), job.process, channels, job.settings.device, cfg["ema"], key, only)
    if mode in UNCERTAINTY_MODES and peers.skipped:
        name, why = next(iter(peers.skipped.items()))
        raise ValueError(f"{mode}.methods: {name} cannot run here: {why}")
    return peers


def check_sizes_run(ys: list[torch.Tensor], names: list[str], process: Any) -> None:
    """Refuse, naming the file, a measurement too large to run whole that cannot be tiled (before any work)."""
    from dirac.tiling import TILE_SIZE, needs_tiles

    for y, name in zip(ys, names, strict=True):
        try:
            needs_tiles(y.shape, TILE_SIZE, process.shift_invariant, process.kind)
        except ValueError as e:
            raise ValueError(f"measurement {name}: {e}") from None


def check_ensemble_fits(group: str | None, job: Job) -> None:
    """Refuse ``ensemble=GROUP`` before any work when ``A_1`` does not commute with it at the images' sizes."""
    from dirac.evaluation.peers import probe_image
    from dirac.symmetry import check_symmetry

    if group is None:
        return
    if job.inputs.measurements is None:
        images = [probe_image(job.state, int(job.state["model"]["channels"]))]
    else:  # one image per distinct shape
        images = list({tuple(y.shape[-3:]): y[None] for y in job.inputs.measurements[0]}.values())
    for y in images:
        check_symmetry(job.process, y, group)


def check_compare_ensemble(groups: dict[str, str], job: Job) -> None:
    """Refuse ``compare.ensemble`` entries before any work: a row the comparison lacks, or a group that does
    not commute with ``A_1``."""
    from dirac.evaluation.compare_mode import check_ensemble_rows, dirac_row

    check_ensemble_rows(groups, [dirac_row(lb) for lb in job.inputs.points] + list(job.inputs.peers.methods))
    for group in sorted(set(groups.values())):
        check_ensemble_fits(group, job)


def run_mode(cfg: dict[str, Any], ctx: Any, job: Job) -> dict[str, Any]:
    """Dispatch to the mode's function in :mod:`dirac.evaluation`; returns its summary."""
    from dirac.evaluation import modes

    mode, points = cfg["mode"], job.inputs.points
    if mode in ("tune", "compare"):
        return peer_mode(cfg, ctx, job.inputs.peers, points, job.opts)
    if mode == "sweep":
        return modes.sweep(ctx, {**cfg["sampler"], "t_stop": 0.0}, cfg, job.inputs.perceptual, job.fingerprint)
    if mode in UNCERTAINTY_MODES:
        from dirac.evaluation.uncertainty_modes import run_uncertainty_mode

        fit_cfg = {**cfg, "num_images": 2 * cfg["perception_control"]["fit_images"]}
        fit_load = split_loader(fit_cfg, job.state, job.process, job.sigma_y)
        resources = job.inputs.peers.resources if job.inputs.peers is not None else None
        return run_uncertainty_mode(ctx, points, cfg, fit_load, resources)
    if job.inputs.measurements is not None:
        ys, names = job.inputs.measurements
        return modes.reconstruct_folder(ctx, ys, names, points, cfg["samples_per_measurement"], cfg["ensemble"])
    return modes.reconstruct_split(ctx, cfg["split"], points, cfg["samples_per_measurement"], cfg["ensemble"])


def speed_up(net: Any, mixed_precision: str, compiled: bool, backend: str) -> None:
    """``mixed_precision=bf16|fp16``: the network under autocast (outputs stay float32); ``compile=true``:
    ``torch.compile`` it with ``compile_backend``. Both change the results only within float tolerance."""
    if mixed_precision != "no" and not hasattr(net, "set_precision"):
        raise ValueError(f"mixed_precision={mixed_precision} needs an NCSN++ network; use mixed_precision=no")
    if hasattr(net, "set_precision"):
        net.set_precision(mixed_precision)
    if compiled and hasattr(net, "compile_unet"):
        net.compile_unet(backend)
    elif compiled:
        net.compile(backend=backend)


def peer_mode(cfg: dict[str, Any], ctx: Any, peers: Any, points: dict, opts: dict[str, Any]) -> dict[str, Any]:
    """``mode=tune`` (peers tuned on ``sweep.split``) or ``mode=compare`` (everything evaluated on ``split``)."""
    from dirac.evaluation import compare_mode
    from dirac.metrics.registry import build_metric

    val = cfg["sweep"]["split"]
    if cfg["mode"] == "tune":
        return compare_mode.tune_mode(ctx, peers, val)
    metrics = {"psnr": build_metric("psnr"), "ssim": build_metric("ssim"),
               "perceptual": build_metric(cfg["sweep"]["perceptual"], **opts)}  # fmt: skip
    ccfg = {**cfg["compare"], "perception_control": cfg["perception_control"]}  # the α curves' OT settings
    return compare_mode.compare_mode(ctx, peers, ccfg, (val, cfg["split"]), points, metrics)


def report(summary: dict[str, Any], out_dir: Path) -> None:
    """Print what each output is: one line per stopping point / method with its main figures."""
    if "rows" in summary and "tuned_on" in summary:  # mode=compare
        from dirac.evaluation.compare_table import markdown_table

        print("\n".join(markdown_table(summary["rows"])))
        print(f"split {summary['split']}, tuned on {summary['tuned_on']}; outputs in {out_dir} (compare.json, "
              f"compare.md, figures/)")  # fmt: skip
        return
    if "methods" in summary and "process" in summary:  # mode=tune
        for name, m in summary["methods"].items():
            print(f"{name:>16}: {json.dumps(m['params'])}")
        print(f"tuned on {summary['split']} ({summary['num_images']} images); {out_dir}/tuned.yaml")
        return
    for key in ("up", "rows"):  # mode=up / mode=perception_control
        if key in summary:
            print(json.dumps(summary[key]))
    rows = summary.get("points") or summary.get("test") or {}
    for label, s in rows.items():
        figures = {k: s[k] for k in ("t_stop", "lambda", "psnr", "ssim", "swd", "data_consistency") if k in s}
        meaning = summary.get("meaning", {}).get(label, "")
        print(f"{label:>16}: {json.dumps(figures)}" + (f"  — {meaning}" if meaning else ""))
    print(f"outputs in {out_dir} (reconstructions/<point>/, figures/, metrics.json, manifest.json)")


@hydra.main(config_path="pkg://dirac.configs", config_name="sample", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    try:
        record = hydra_record(cfg)  # written with the outputs, not before the folder check (output_subdir: null)
        summary = run(OmegaConf.to_container(cfg, resolve=True), out_dir, f"{hc.job.name}.log", record)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    if is_main():  # under several processes: one report, from the process that wrote the outputs
        report(summary, out_dir)


def main() -> None:
    """``sample.py``, ``dirac-sample``: the Hydra application as dirac's command (:func:`~dirac.cli.hydra_command`)."""
    hydra_command(_main)


if __name__ == "__main__":
    main()
