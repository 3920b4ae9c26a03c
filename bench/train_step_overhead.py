"""Training-step overhead: a full training step against a bare forward + backward of the network.

For the blur (clean-image loss, Δt = 1) and inpainting (Δt = 0.02) settings of the CPU experiments, both with
``w = 1/σ²``, on the same batch:

* ``FB``   — bare network: ``net(y, σ)``, mean-square of the output, ``backward`` to the parameters;
* ``step`` — ``zero_grad``; ``IncrementalReconstructionLoss`` (t sampling, SDP sample, network, two
  degradations ``A_τ``); ``backward``; ``Adam.step``. Ratio ``step / FB`` (1 = no overhead);
* ``step+`` — as ``step`` plus what ``dirac.training`` adds: gradient clipping (norm 1) and the EMA update;
* parts: ``loss w/o net`` (the loss with an identity network: t, SDP sample, ``A_τ`` twice), ``Adam``,
  ``clip``, ``EMA`` — each also relative to ``FB``.

    python bench/train_step_overhead.py [--model small] [--batch-size 8] [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dirac.losses import IncrementalReconstructionLoss
from dirac.models import Reconstructor, build_ncsnpp

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "train_step_overhead"
NORMAL = {"model": "small", "image_size": 32, "batch_size": 8, "reps": 3, "min_time": 0.05}
QUICK = {"model": "tiny", "image_size": 16, "batch_size": 2, "reps": 1, "min_time": 0.002}
DELTA_T = {"blur": 1.0, "inpaint": 0.02}  # configs/experiment/{blur,inpaint}_default.yaml


def build_parser() -> argparse.ArgumentParser:
    p = bu.common_parser(__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=1e-4)
    return p


def bench_process(kind: str, process, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    net = build_ncsnpp(args.model, image_size=args.image_size).train()
    model = Reconstructor(net, process.noise)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    loss_fn = IncrementalReconstructionLoss(process, delta_t=DELTA_T.get(kind, 0.0), weighting="inv_sigma2")
    g = torch.Generator().manual_seed(args.seed)
    x0 = bu.smooth_images(args.batch_size, net.config.channels, args.image_size, args.seed)
    t = loss_fn.sample_times(args.batch_size, x0, g)
    y_t = process.sample(x0, t, g)
    sigma = process.sigma(t)
    losses: list[float] = []

    def forward_backward() -> None:
        opt.zero_grad(set_to_none=True)
        net(y_t, sigma).pow(2).mean().backward()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x0, g)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))

    def step_full() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x0, g)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update_parameters(model)

    def loss_no_net() -> None:
        loss_fn(lambda y, _t: y, x0, g)

    times = bu.measure({"FB": forward_backward, "step": step, "step+": step_full}, reps=args.reps, warmup=1)
    # the short parts, several calls per sample; Adam and clipping reuse the gradients of one full step
    step_full()
    short = {
        "adam": opt.step,
        "clip": lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0),
        "ema": lambda: ema.update_parameters(model),
        "loss_no_net": loss_no_net,
    }
    times.update(bu.measure(short, reps=max(3, args.reps), warmup=1, min_time=args.min_time))
    med = {k: v["median"] for k, v in times.items()}
    keys = {"step": "step", "step_full": "step+"} | {k: k for k in ("loss_no_net", "adam", "clip", "ema")}
    ratios = {f"{name}_over_FB": med[key] / med["FB"] for name, key in keys.items()}
    return {
        "process": kind,
        "delta_t": loss_fn.delta_t,
        "parameters": sum(p.numel() for p in net.parameters()),
        "seconds": times,
        "ratios": ratios,
        "losses_finite": all(torch.isfinite(torch.tensor(losses)).tolist()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    env = bu.env_info()
    per = {kind: bench_process(kind, proc, args) for kind, proc in bu.processes(args.image_size).items()}
    parts = [("FB", None), ("step", "step_over_FB"), ("step+", "step_full_over_FB")]
    parts += [("loss_no_net", "loss_no_net_over_FB"), ("adam", "adam_over_FB")]
    parts += [("clip", "clip_over_FB"), ("ema", "ema_over_FB")]
    labels = {
        "FB": "bare forward+backward (FB)",
        "step": "training step (loss+bwd+Adam)",
        "step+": "  + grad clip + EMA",
        "loss_no_net": "part: loss w/o network",
        "adam": "part: Adam step",
        "clip": "part: grad clip",
        "ema": "part: EMA update",
    }
    kinds = list(per)
    headers = ["quantity"] + [f"{k} ms" for k in kinds] + [f"{k} /FB" for k in kinds]
    rows = []
    for key, ratio in parts:
        row = [labels[key]] + [bu.ms(per[k]["seconds"][key]["median"]) for k in kinds]
        row += [bu.fmt(per[k]["ratios"][ratio]) if ratio else "1" for k in kinds]
        rows.append(row)
    n_params = per[kinds[0]]["parameters"]
    title = (
        f"training step overhead: {args.model} model ({n_params / 1e6:.2f} M params), {args.image_size} px, "
        f"batch {args.batch_size}, {args.reps} reps, threads {torch.get_num_threads()}"
    )
    text = title + "\n" + bu.table(headers, rows)
    print(text)
    ratios = {f"{kind}.{k}": v for kind, r in per.items() for k, v in r["ratios"].items()}
    return bu.publish(args, NAME, env, text, results=per, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
