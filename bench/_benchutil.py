"""Shared helpers of the bench/ scripts: common flags, interleaved timing, tables and JSON output.

Timing: every quantity is measured with ``time.perf_counter`` after warm-up calls, ``reps`` times, and the
median is reported. The quantities of one benchmark are measured *interleaved* (round-robin within each
repetition), so a change of load on a shared machine hits all of them alike and their ratios stay meaningful.
Short operations are repeated ``number`` times inside one sample (calibrated to last at least ``min_time``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"

COMMON_FLAGS = ("model", "image_size", "batch_size", "reps", "threads", "steps", "seed")


def common_parser(description: str, steps: bool = False) -> argparse.ArgumentParser:
    """Flags shared by all scripts; ``None`` defaults are filled by :func:`resolve` (normal or ``--quick``)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=("small", "wide", "tiny", "paper"), default=None, help="NCSN++ preset")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: do not starve other jobs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings (tests): tiny model, 16 px, 2 steps, 1 rep")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON results")
    if steps:
        p.add_argument("--steps", type=int, default=None, help="sampler steps N")
    return p


def resolve(args: argparse.Namespace, normal: dict[str, Any], quick: dict[str, Any]) -> argparse.Namespace:
    """Fill every flag left at ``None`` from ``quick`` (with ``--quick``) or ``normal``; explicit flags win."""
    defaults = {**normal, **quick} if args.quick else normal
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    torch.set_num_threads(max(1, int(args.threads)))
    return args


def env_info() -> dict[str, Any]:
    """Machine description stored with every result (absolute times on a shared machine are noisy)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_start": load,
    }


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls per sample so that one sample lasts at least ``min_time`` seconds (1 for slow functions)."""
    if min_time <= 0:
        return 1
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= 10_000:
            return number
        number = min(10_000, max(number * 2, int(number * 1.2 * min_time / max(dt, 1e-9))))


def measure(
    fns: dict[str, Callable[[], object]],
    reps: int,
    warmup: int = 1,
    min_time: float | dict[str, float] = 0.0,
) -> dict[str, dict[str, Any]]:
    """Seconds per call of each function: warm-up, then ``reps`` interleaved samples; median, min, all.

    ``min_time`` (seconds, one value or one per function name; 0 = one call per sample) makes a sample of a
    short function average several calls, so that it is not dominated by scheduling jitter.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    mt = min_time if isinstance(min_time, dict) else dict.fromkeys(fns, min_time)
    numbers = {name: _calibrate(fn, mt.get(name, 0.0)) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, reps)):
        for name, fn in fns.items():
            n = numbers[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {
        name: {"median": statistics.median(s), "min": min(s), "samples": s, "number": numbers[name]}
        for name, s in samples.items()
    }


def fmt(x: float, digits: int = 3) -> str:
    """Compact number: 3 significant digits, scientific outside [1e-3, 1e5)."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"
    return f"{x:.{digits - 1}e}"


def ms(seconds: float) -> str:
    return fmt(seconds * 1e3)


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell in ("-", "")
    return True


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text aligned table: numeric columns right-aligned, the others left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    n = len(headers)
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    right = [bool(rows) and all(_numeric(r[i]) for r in cells[1:]) for i in range(n)]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if a else c.ljust(w) for c, w, a in zip(r, widths, right, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def write_json(out: Path, name: str, payload: dict[str, Any]) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def publish(args: argparse.Namespace, name: str, env: dict[str, Any], text: str, **fields: Any) -> dict[str, Any]:
    """The JSON every benchmark writes: name, configuration, machine, its own fields, the printed table."""
    payload = {"name": name, "config": config_of(args), "env": env, **fields, "table": text}
    payload["path"] = str(write_json(args.out, name, payload))
    return payload


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def smooth_images(b: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (bilinear upsampling of coarse noise): stand-ins for photographs."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(2, size // 4), max(2, size // 4), generator=g)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def config_group(group: str, name: str) -> dict[str, Any]:
    """One option of a Hydra config group as a plain dict (``configs/GROUP/NAME.yaml``): benchmarks read their
    settings from the same files the CLIs use instead of copying the numbers."""
    from omegaconf import OmegaConf

    from dirac.shipped import config_dir

    return OmegaConf.to_container(OmegaConf.load(config_dir() / group / f"{name}.yaml"), resolve=True)


def experiment_degradation(experiment: str) -> dict[str, Any]:
    """The degradation of ``configs/experiment/EXPERIMENT.yaml``: its group default with the experiment's overrides."""
    exp = config_group("experiment", experiment)
    kind = next(d["override /degradation"] for d in exp["defaults"] if "override /degradation" in d)
    return {**config_group("degradation", kind), **exp.get("degradation", {})}


def scaled_process(cfg: dict[str, Any], image_size: int, native_size: int) -> Any:
    """A process from a degradation config, inpainting widths scaled from ``native_size`` to ``image_size``."""
    from dirac.factory import process_from_config

    cfg = dict(cfg)
    if cfg["kind"] == "inpaint":
        cfg["width_max"] = cfg["width_max"] * image_size / native_size
    return process_from_config(cfg)


def processes(image_size: int) -> dict[str, Any]:
    """The default processes of ``configs/degradation/{blur,inpaint}.yaml`` (blur std 0.3 -> 2.0; inpaint width
    0 -> 6 px at 32 px, scaled with the image size)."""
    return {kind: scaled_process(config_group("degradation", kind), image_size, 32) for kind in ("blur", "inpaint")}


def sampler_settings(steps: int | None = None, **overrides: Any) -> dict[str, Any]:
    """``configs/sampler/default.yaml`` with the benchmark's step count; a full run (t_stop 0), since the
    choice file behind ``t_stop: auto`` belongs to a trained checkpoint, not to a benchmark's random network."""
    cfg = {**config_group("sampler", "default"), "t_stop": 0.0, **overrides}
    return cfg if steps is None else {**cfg, "steps": int(steps)}
