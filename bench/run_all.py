"""Run all benchmarks in one process (sampler overhead, training step, degradation cost, throughput), print a
combined table of their key ratios and write ``bench/results/summary.json`` (plus each benchmark's own JSON).

Flags left out keep each benchmark's own defaults; flags given are passed to every benchmark that takes them
(``--batch-size`` is the largest batch for ``throughput``; ``--steps`` goes to the two sampler benchmarks).

    python bench/run_all.py [--quick] [--threads 1] [--out bench/results]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

try:
    from . import _benchutil as bu
    from . import degradation_cost, sampler_overhead, throughput, train_step_overhead
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu
    import degradation_cost
    import sampler_overhead
    import throughput
    import train_step_overhead

NAME = "summary"
BENCHMARKS = {
    "sampler_overhead": sampler_overhead,
    "train_step_overhead": train_step_overhead,
    "degradation_cost": degradation_cost,
    "throughput": throughput,
}
TAKES_STEPS = {"sampler_overhead", "throughput"}


def build_parser() -> argparse.ArgumentParser:
    p = bu.common_parser(__doc__.splitlines()[0], steps=True)
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS), help="subset to run")
    return p


def sub_argv(args: argparse.Namespace, name: str) -> list[str]:
    argv = ["--threads", str(args.threads), "--seed", str(args.seed), "--out", str(args.out)]
    if args.quick:
        argv.append("--quick")
    for key in ("model", "image_size", "batch_size", "reps") + (("steps",) if name in TAKES_STEPS else ()):
        value = getattr(args, key)
        if value is not None:
            argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def key_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """(benchmark, quantity, ratio, meaning) rows of the combined table."""
    rows: list[list[str]] = []

    def add(bench: str, label: str, value: float, meaning: str) -> None:
        rows.append([bench, label, bu.fmt(value), meaning])

    if "sampler_overhead" in results:
        r = results["sampler_overhead"]
        n = r["config"]["steps"]
        for kind, v in r["results"].items():
            q = v["ratios"]
            add("sampler", f"{kind}: W/(NFE·F)", q["W_over_NFE_F"], f"unguided, {n} steps; 1 = network only")
            add("sampler", f"{kind}: W/L", q["W_over_L"], "unguided vs its network calls in a loop")
            add("sampler", f"{kind}: O/(NFE·F)", q["O_over_NFE_F"], "non-network share (identity net)")
            add("sampler", f"{kind}: Wg/(NFE·F)", q["Wg_over_NFE_F"], "std-scaled guidance")
            add("sampler", f"{kind}: Wg/(NFE·FB)", q["Wg_over_NFE_FB"], "guided vs forward+backward per NFE")
            add("sampler", f"{kind}: Wg/(N·FB+F)", q["Wg_over_ideal"], "guided vs ideal (last NFE no grad)")
            add("sampler", f"{kind}: Wg/Lg", q["Wg_over_Lg"], "guided vs its network calls in a loop")
        first = next(iter(r["results"].values()))
        add("sampler", "FB/F (input grad)", first["ratios"]["FB_over_F"], "cost of a guided NFE in forwards")
    if "train_step_overhead" in results:
        for kind, v in results["train_step_overhead"]["results"].items():
            q = v["ratios"]
            add("train", f"{kind}: step/FB", q["step_over_FB"], "loss+backward+Adam vs bare fwd+bwd")
            add("train", f"{kind}: step+clip+EMA/FB", q["step_full_over_FB"], "as dirac.training")
    if "degradation_cost" in results:
        for case, v in results["degradation_cost"]["results"].items():
            for key, value in v.get("ratios", {}).items():
                if key.endswith((".degrade", ".degrade_fb", ".sample")):
                    add("degradation", f"{case} {v['size']}px {key}/F", value, f"batch {v['batch']}")
            if "note" in v:
                rows.append(["degradation", f"{case} {v['size']}px", "-", v["note"]])
    if "throughput" in results:
        r = results["throughput"]
        for b, v in r["results"].items():
            add("throughput", f"batch {b}: NFE·F/W", v["efficiency"], f"{bu.fmt(v['sampler_img_s'])} img/s sampler")
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(max(1, int(args.threads)))
    env = bu.env_info()
    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    wall: dict[str, float] = {}
    for name in args.only:
        t0 = time.perf_counter()
        print(f"\n=== {name} ===")
        results[name] = BENCHMARKS[name].main(sub_argv(args, name))
        wall[name] = time.perf_counter() - t0
    total = time.perf_counter() - start
    rows = key_rows(results)
    title = (
        f"summary: threads {torch.get_num_threads()}, {env['cpu_count']} CPUs, load average at start "
        f"{env['loadavg_at_start']}, total {total:.0f} s"
    )
    text = title + "\n" + bu.table(["benchmark", "quantity", "ratio", "meaning"], rows)
    print("\n" + text)
    return bu.publish(
        args,
        NAME,
        env,
        text,
        wall_seconds={**wall, "total": total},
        ratios={name: r["ratios"] for name, r in results.items()},
        tables={name: r["table"] for name, r in results.items()},
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
