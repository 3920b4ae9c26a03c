"""Throughput: reverse-sampler images/s (N steps, no guidance, blur process) and network-forward images/s
against the batch size.

Batch sizes are 1, 4, 16, … (powers of 4) up to ``--batch-size``, plus ``--batch-size`` itself. The ratio
``NFE · F / W`` is the sampler's efficiency against its network forwards (1 = no overhead); the speed-up columns
compare each batch size with batch 1 per image.

    python bench/throughput.py [--model small] [--batch-size 64] [--steps 10] [--reps 2] [--threads 1]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from dirac.factory import sampler_from_config
from dirac.models import Reconstructor, build_ncsnpp

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "throughput"
NORMAL = {"model": "small", "image_size": 32, "batch_size": 64, "reps": 2, "steps": 10, "min_time": 0.25}
QUICK = {"model": "tiny", "image_size": 16, "batch_size": 4, "reps": 1, "steps": 2, "min_time": 0.0}


def build_parser() -> argparse.ArgumentParser:
    p = bu.common_parser(__doc__.splitlines()[0], steps=True)
    p.add_argument("--process", choices=("blur", "inpaint"), default="blur")
    return p


def batch_sizes(largest: int) -> list[int]:
    sizes = []
    b = 1
    while b < largest:
        sizes.append(b)
        b *= 4
    return sizes + [largest]


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    env = bu.env_info()
    process = bu.processes(args.image_size)[args.process]
    net = build_ncsnpp(args.model, image_size=args.image_size).eval()
    model = Reconstructor(net, process.noise)
    sampler = sampler_from_config(process, bu.sampler_settings(args.steps))
    per: dict[int, dict[str, Any]] = {}
    for b in batch_sizes(args.batch_size):
        x0 = bu.smooth_images(b, net.config.channels, args.image_size, args.seed)
        y = process.measure(x0, torch.Generator().manual_seed(args.seed))
        t1 = torch.ones(b)
        nfe = []

        def forward(y=y, t1=t1) -> None:
            with torch.no_grad():
                model(y, t1)

        def sample(y=y, nfe=nfe) -> None:
            nfe.append(sampler(model, y, torch.Generator().manual_seed(args.seed)).nfe)

        forward()  # warm-up (the sampler's first step is warm after it)
        times = bu.measure({"F": forward, "W": sample}, reps=args.reps, warmup=0, min_time={"F": args.min_time})
        f, w = times["F"]["median"], times["W"]["median"]
        per[b] = {
            "batch": b,
            "nfe": nfe[0],
            "seconds": times,
            "forward_img_s": b / f,
            "sampler_img_s": b / w,
            "efficiency": nfe[0] * f / w,
        }
    base = per[1] if 1 in per else next(iter(per.values()))
    rows = []
    for b, r in per.items():
        rows.append(
            [
                b,
                bu.ms(r["seconds"]["F"]["median"]),
                bu.fmt(r["forward_img_s"]),
                bu.fmt(r["forward_img_s"] / base["forward_img_s"]),
                bu.fmt(r["seconds"]["W"]["median"]),
                bu.fmt(r["sampler_img_s"]),
                bu.fmt(r["sampler_img_s"] / base["sampler_img_s"]),
                bu.fmt(r["efficiency"]),
            ]
        )
    headers = ["batch", "F ms", "fwd img/s", "fwd speed-up", "sampler s", "sampler img/s", "speed-up", "NFE·F/W"]
    title = (
        f"throughput: {args.model} model, {args.image_size} px, {args.process}, {args.steps} steps "
        f"(NFE {base['nfe']}), no guidance, {args.reps} reps, threads {torch.get_num_threads()}"
    )
    text = title + "\n" + bu.table(headers, rows)
    print(text)
    ratios = {}
    for b, r in per.items():
        ratios[f"b{b}.efficiency"] = r["efficiency"]
        ratios[f"b{b}.forward_speedup"] = r["forward_img_s"] / base["forward_img_s"]
        ratios[f"b{b}.sampler_speedup"] = r["sampler_img_s"] / base["sampler_img_s"]
    return bu.publish(args, NAME, env, text, results={str(b): r for b, r in per.items()}, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
