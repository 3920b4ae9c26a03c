"""Degradation cost: ``degrade`` (A_t), ``adjoint`` (A_t^T), ``sample`` (A_t x0 + σ z) and ``degrade`` forward +
backward (as in the loss and the guidance gradient), all with per-sample t, against one network forward.

* default size (32 px, batch 16): blur std 0.3 -> 2.0 (kernel 17) and inpainting width 0 -> 6 px; every
  operation relative to the forward ``F`` of the model on the same batch;
* large size (256 px, batch 2): blur std 0.3 -> 3.0 with kernel 61 and inpainting width 0.1 -> 50 px (the
  paper's settings); absolute times and, unless ``--no-large-forward``, the ratio to the same model
  architecture built at 256 px (for ``small`` that has no attention level: its attention is at 8 px).

    python bench/degradation_cost.py [--model small] [--batch-size 16] [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from dirac.models import build_ncsnpp

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "degradation_cost"
NORMAL = {
    "model": "small",
    "image_size": 32,
    "batch_size": 16,
    "reps": 5,
    "large_size": 256,
    "large_batch": 2,
    "min_time": 0.05,
}
QUICK = {
    "model": "tiny",
    "image_size": 16,
    "batch_size": 2,
    "reps": 1,
    "large_size": 64,
    "large_batch": 1,
    "min_time": 0.002,
}
OPS = ("degrade", "adjoint", "sample", "degrade_fb")


def build_parser() -> argparse.ArgumentParser:
    p = bu.common_parser(__doc__.splitlines()[0])
    p.add_argument("--large-size", type=int, default=None, help="side of the large-image case (0: skip it)")
    p.add_argument("--large-batch", type=int, default=None)
    p.add_argument("--large-forward", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the network forward at the large size (slow on CPU)")  # fmt: skip
    return p


def op_fns(process, x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> dict[str, Any]:
    y = process.degrade(x, t)
    xg = x.clone().requires_grad_(True)

    def degrade_fb() -> None:
        torch.autograd.grad(process.degrade(xg, t).pow(2).sum(), xg)

    return {
        "degrade": lambda: process.degrade(x, t),
        "adjoint": lambda: process.adjoint(y, t),
        "sample": lambda: process.sample(x, t, g),
        "degrade_fb": degrade_fb,
    }


def bench_size(args, size: int, batch: int, procs: dict, with_forward: bool) -> dict[str, Any]:
    g = torch.Generator().manual_seed(args.seed)
    x = bu.smooth_images(batch, 3, size, args.seed)
    t = torch.rand(batch, generator=g)
    fns = {}
    for kind, proc in procs.items():
        fns.update({f"{kind}.{op}": fn for op, fn in op_fns(proc, x, t, g).items()})
    times = bu.measure(fns, reps=args.reps, warmup=1, min_time=args.min_time)
    out: dict[str, Any] = {"size": size, "batch": batch, "processes": {k: repr(p) for k, p in procs.items()}}
    if with_forward:
        net = build_ncsnpp(args.model, image_size=size).eval()
        sigma = torch.full((batch,), 0.03)

        def forward() -> None:
            with torch.no_grad():
                net(x, sigma)

        reps = args.reps if size <= 64 else min(args.reps, 2)
        times.update(bu.measure({"forward": forward}, reps=reps, warmup=1))
        f = times["forward"]["median"]
        out["ratios"] = {k: v["median"] / f for k, v in times.items() if k != "forward"}
    else:
        out["note"] = "network forward at this size skipped (--no-large-forward)"
    out["seconds"] = times
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    env = bu.env_info()
    s = args.image_size
    results = {"default": bench_size(args, s, args.batch_size, bu.processes(s), with_forward=True)}
    if args.large_size:
        large = {
            kind: bu.scaled_process(bu.experiment_degradation(f"{kind}_celeba256"), args.large_size, 256)
            for kind in ("blur", "inpaint")
        }
        results["large"] = bench_size(args, args.large_size, args.large_batch, large, args.large_forward)
    blocks = []
    ratios: dict[str, float] = {}
    for case, r in results.items():
        sec = r["seconds"]
        headers = ["operation", "blur ms", "inpaint ms"]
        if "ratios" in r:
            headers += ["blur /F", "inpaint /F"]
        rows = []
        for op in OPS:
            row = [op] + [bu.ms(sec[f"{k}.{op}"]["median"]) for k in ("blur", "inpaint")]
            if "ratios" in r:
                row += [bu.fmt(r["ratios"][f"{k}.{op}"]) for k in ("blur", "inpaint")]
            rows.append(row)
        if "forward" in sec:
            rows.append(["network forward F", bu.ms(sec["forward"]["median"]), "-", "1", "1"])
        title = f"degradation cost [{case}]: {r['size']} px, batch {r['batch']}, per-sample t, " + (
            f"F = {args.model} model forward at {r['size']} px" if "ratios" in r else r["note"]
        )
        blocks.append(title + "\n" + bu.table(headers, rows))
        ratios.update({f"{case}.{k}": v for k, v in r.get("ratios", {}).items()})
    text = "\n\n".join(blocks) + f"\n(reps {args.reps}, threads {torch.get_num_threads()})"
    print(text)
    return bu.publish(args, NAME, env, text, results=results, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
