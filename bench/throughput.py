"""Throughput: reverse-sampler images/s (N steps, no guidance, blur process) and network-forward images/s
against the batch size.

Batch sizes are 1, 4, 16, … (powers of 4) up to ``--batch-size``, plus ``--batch-size`` itself. The ratio
``NFE · F / W`` is the sampler's efficiency against its network forwards (1 = no overhead); the speed-up columns
compare each batch size with batch 1 per image.

With ``--input tikhonov``, ``gaussian`` or ``tikhonov_gaussian`` (a network that refines a Tikhonov or
Gaussian-MMSE estimate, or both; the last two with ``--process inpaint --channels 1``, as the faces model) the
same network is also timed on the plain measurement in the same run, and ``F/F_y`` is the cost per NFE of that
input relative to it.

    python bench/throughput.py [--model small] [--input measurement] [--batch-size 64] [--steps 10] [--reps 2]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from dirac.factory import sampler_from_config
from dirac.models import Reconstructor, build_ncsnpp
from dirac.models.gaussian_prior import fit_gaussian_prior
from dirac.models.ncsnpp import GAUSSIAN_INPUTS, INPUTS, PRIOR_BUFFERS

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
    p.add_argument("--input", choices=INPUTS, default="measurement", help="model.input of the network")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="image channels (the faces model: 1)")
    p.add_argument("--tikhonov-lambda", type=float, default=0.05623, help="model.tikhonov_lambda (blur's val λ)")
    return p


def batch_sizes(largest: int) -> list[int]:
    sizes = []
    b = 1
    while b < largest:
        sizes.append(b)
        b *= 4
    return sizes + [largest]


def _models(args: argparse.Namespace, process: Any) -> tuple[Reconstructor, Reconstructor]:
    """The network with ``args.input`` and the same weights on y_t (``F / F_y`` is what the input costs per NFE)."""
    net = build_ncsnpp(
        args.model,
        image_size=args.image_size,
        channels=args.channels,
        input=args.input,
        tikhonov_lambda=args.tikhonov_lambda,
    ).eval()
    if args.input in GAUSSIAN_INPUTS:  # its cost does not depend on the prior's values: fitted on smooth images
        net.set_gaussian_prior(
            *fit_gaussian_prior(
                bu.smooth_images(64, net.config.channels, args.image_size, 0),
                net.config.gaussian_shrinkage,
                net.config.gaussian_smoothness,
            )
        )
    twin = build_ncsnpp(args.model, image_size=args.image_size, channels=args.channels).eval()
    twin.load_state_dict({k: v for k, v in net.state_dict().items() if k not in PRIOR_BUFFERS})
    return Reconstructor(net, process.noise, process), Reconstructor(twin, process.noise)


def _measure_batch(
    args: argparse.Namespace, b: int, process: Any, model: Reconstructor, plain: Reconstructor, sampler: Any
) -> dict[str, Any]:
    """Median times of one forward (F), one forward on y_t (F_y) and one sampler call (W) at batch ``b``."""
    x0 = bu.smooth_images(b, model.net.config.channels, args.image_size, args.seed)
    y = process.measure(x0, torch.Generator().manual_seed(args.seed))
    t1 = torch.ones(b)
    nfe = []

    def forward() -> None:
        with torch.no_grad():
            model(y, t1)

    def forward_y() -> None:
        with torch.no_grad():
            plain(y, t1)

    def sample() -> None:
        nfe.append(sampler(model, y, torch.Generator().manual_seed(args.seed)).nfe)

    forward()  # warm-up (the sampler's first step is warm after it)
    jobs = {"F": forward, "W": sample} | ({"F_y": forward_y} if args.input != "measurement" else {})
    times = bu.measure(jobs, reps=args.reps, warmup=0, min_time={"F": args.min_time, "F_y": args.min_time})
    f, w = times["F"]["median"], times["W"]["median"]
    return {
        "batch": b,
        "nfe": nfe[0],
        "seconds": times,
        "forward_img_s": b / f,
        "sampler_img_s": b / w,
        "efficiency": nfe[0] * f / w,
        "input_cost": f / times["F_y"]["median"] if "F_y" in times else 1.0,
    }


def _base(per: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The row speed-ups are measured against: batch 1, else the first batch size."""
    return per[1] if 1 in per else next(iter(per.values()))


def _table(args: argparse.Namespace, per: dict[int, dict[str, Any]]) -> str:
    base = _base(per)
    rows = [
        [
            b,
            bu.ms(r["seconds"]["F"]["median"]),
            bu.fmt(r["forward_img_s"]),
            bu.fmt(r["forward_img_s"] / base["forward_img_s"]),
            bu.fmt(r["seconds"]["W"]["median"]),
            bu.fmt(r["sampler_img_s"]),
            bu.fmt(r["sampler_img_s"] / base["sampler_img_s"]),
            bu.fmt(r["efficiency"]),
            bu.fmt(r["input_cost"]),
        ]
        for b, r in per.items()
    ]
    headers = ["batch", "F ms", "fwd img/s", "fwd speed-up", "sampler s", "sampler img/s", "speed-up", "NFE·F/W"]
    headers.append("F/F_y")
    title = (
        f"throughput: {args.model} model ({args.input} input), {args.image_size} px, {args.channels} channel(s), "
        f"{args.process}, "
        f"{args.steps} steps (NFE {base['nfe']}), no guidance, {args.reps} reps, threads {torch.get_num_threads()}"
    )
    return title + "\n" + bu.table(headers, rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    env = bu.env_info()
    process = bu.processes(args.image_size)[args.process]
    model, plain = _models(args, process)
    sampler = sampler_from_config(process, bu.sampler_settings(args.steps))
    per = {b: _measure_batch(args, b, process, model, plain, sampler) for b in batch_sizes(args.batch_size)}
    text = _table(args, per)
    print(text)
    base = _base(per)
    ratios = {}
    for b, r in per.items():
        ratios[f"b{b}.efficiency"] = r["efficiency"]
        ratios[f"b{b}.input_cost"] = r["input_cost"]
        ratios[f"b{b}.forward_speedup"] = r["forward_img_s"] / base["forward_img_s"]
        ratios[f"b{b}.sampler_speedup"] = r["sampler_img_s"] / base["sampler_img_s"]
    name = NAME if args.input == "measurement" else f"{NAME}_{args.input}"
    return bu.publish(args, name, env, text, results={str(b): r for b, r in per.items()}, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
