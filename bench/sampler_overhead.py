"""Sampler overhead: reverse-sampler wall time against the bare network cost (the cost model: NFE x bare forward).

For the blur and the inpainting process, on one batch of measurements:

* ``F``  — bare network forward ``Φθ(y, t)`` (no grad);
* ``FB`` — bare forward + backward to the input (what std-scaled guidance differentiates);
* ``W``  — ``ReverseSampler(N steps)`` without guidance; ratio ``W / (NFE · F)`` (1 = no overhead);
* ``Wg`` — with ``StdScaledGuidance(0.5)``; ratios ``Wg / (NFE · F)``, ``Wg / (NFE · FB)`` and
  ``Wg / (N · FB + F)`` (the ideal: N guided steps plus the final no-grad output forward);
* ``L``  — the sampler's network calls alone in a loop at the grid times (``W / L`` isolates the sampler's own
  overhead from the timing noise of a single forward);
* ``O``  — the same sampler runs with an identity "network" (``Φ(y, t) = y``): everything in a run that is not
  the network (degradations, data consistency, noise, Python). ``O / (NFE · F)`` is its share per NFE.

    python bench/sampler_overhead.py [--model small] [--batch-size 4] [--steps 10] [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch

from dirac.factory import sampler_from_config
from dirac.models import Reconstructor, build_ncsnpp
from dirac.sampling import ReverseSampler

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "sampler_overhead"
NORMAL = {"model": "small", "image_size": 32, "batch_size": 4, "reps": 5, "steps": 10, "min_time": 0.25}
QUICK = {"model": "tiny", "image_size": 16, "batch_size": 2, "reps": 1, "steps": 2, "min_time": 0.0}


def build_parser() -> argparse.ArgumentParser:
    p = bu.common_parser(__doc__.splitlines()[0], steps=True)
    p.add_argument("--rho", type=float, default=0.5, help="std-scaled guidance strength")
    return p


def identity_model(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A zero-cost stand-in for the network that stays differentiable (for the guided run)."""
    return y * 1.0


def _overhead_ratios(med: dict[str, float], nfe: int, nfe_g: int) -> dict[str, float]:
    """Sampler wall time over what its network calls alone cost (see the module docstring for the letters)."""
    n_guided = nfe_g - 1  # the final output forward runs without grad
    f, fb = med["F"], med["FB"]
    return {
        "W_over_NFE_F": med["W"] / (nfe * f),
        "Wg_over_NFE_F": med["Wg"] / (nfe_g * f),
        "Wg_over_NFE_FB": med["Wg"] / (nfe_g * fb),
        "Wg_over_ideal": med["Wg"] / (n_guided * fb + f),
        "W_over_L": med["W"] / med["L"],
        "Wg_over_Lg": med["Wg"] / med["Lg"],
        "L_over_NFE_F": med["L"] / (nfe * f),
        "FB_over_F": fb / f,
        "O_over_NFE_F": med["O"] / (nfe * f),
        "Og_over_NFE_FB": med["Og"] / (nfe_g * fb),
    }


def _timed_calls(
    model, plain: ReverseSampler, guided: ReverseSampler, y: torch.Tensor, seed: int, outputs: dict[str, Any]
) -> dict[str, Callable[[], None]]:
    """The timed callables: the network alone (F, FB), its calls in a sampler's order (L, Lg), whole samplers with
    the network (W, Wg) and with the identity model (O, Og); the samplers' outputs land in ``outputs``."""
    t1 = torch.ones(y.shape[0])

    def forward() -> None:
        with torch.no_grad():
            model(y, t1)

    def forward_backward() -> None:
        y_in = y.detach().requires_grad_(True)
        out = model(y_in, t1)
        torch.autograd.grad(out.pow(2).sum(), y_in)

    times_grid = [t.expand(y.shape[0]) for t in plain.grid.to(y.dtype)]  # t_0 = 1, ..., t_N (NFE values)

    def loop() -> None:  # the sampler's network calls alone: one forward per grid time
        for t in times_grid:
            with torch.no_grad():
                model(y, t)

    def loop_guided() -> None:  # N forward+backward (guided steps) and the final no-grad forward
        for t in times_grid[:-1]:
            y_in = y.detach().requires_grad_(True)
            torch.autograd.grad(model(y_in, t).pow(2).sum(), y_in)
        with torch.no_grad():
            model(y, times_grid[-1])

    def run(name: str, sampler: ReverseSampler, m) -> None:
        outputs[name] = sampler(m, y, torch.Generator().manual_seed(seed))

    return {
        "F": forward,
        "FB": forward_backward,
        "L": loop,
        "Lg": loop_guided,
        "W": lambda: run("W", plain, model),
        "Wg": lambda: run("Wg", guided, model),
        "O": lambda: run("O", plain, identity_model),
        "Og": lambda: run("Og", guided, identity_model),
    }


def bench_process(kind: str, process, args: argparse.Namespace) -> dict[str, Any]:
    g = torch.Generator().manual_seed(args.seed)
    net = build_ncsnpp(args.model, image_size=args.image_size).eval()
    model = Reconstructor(net, process.noise)
    x0 = bu.smooth_images(args.batch_size, net.config.channels, args.image_size, args.seed)
    y = process.measure(x0, g)
    plain = sampler_from_config(process, bu.sampler_settings(args.steps))
    guided = sampler_from_config(process, bu.sampler_settings(args.steps, guidance="std", guidance_strength=args.rho))
    outputs: dict[str, Any] = {}
    fns = _timed_calls(model, plain, guided, y, args.seed, outputs)
    times = bu.measure(fns, reps=args.reps, warmup=1, min_time={"F": args.min_time, "FB": args.min_time})
    med = {k: v["median"] for k, v in times.items()}
    nfe, nfe_g = outputs["W"].nfe, outputs["Wg"].nfe
    finite = {k: bool(torch.isfinite(o.output).all()) for k, o in outputs.items()}
    return {
        "process": kind,
        "process_repr": repr(process),
        "nfe": nfe,
        "nfe_guided": nfe_g,
        "seconds": times,
        "ratios": _overhead_ratios(med, nfe, nfe_g),
        "outputs_finite": finite,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    env = bu.env_info()
    per = {kind: bench_process(kind, proc, args) for kind, proc in bu.processes(args.image_size).items()}
    rows = []
    for kind, r in per.items():
        s = {k: v["median"] for k, v in r["seconds"].items()}
        q = r["ratios"]
        f, fb = bu.ms(s["F"]), bu.ms(s["FB"])
        rows.append([kind, "none", r["nfe"], f, fb, bu.ms(s["W"]), bu.fmt(q["W_over_NFE_F"]), "-", "-"])
        rows[-1] += [bu.fmt(q["W_over_L"]), bu.fmt(q["O_over_NFE_F"])]
        rows.append([kind, f"std rho={args.rho}", r["nfe_guided"], f, fb, bu.ms(s["Wg"]), bu.fmt(q["Wg_over_NFE_F"])])
        rows[-1] += [bu.fmt(q["Wg_over_NFE_FB"]), bu.fmt(q["Wg_over_ideal"]), bu.fmt(q["Wg_over_Lg"])]
        rows[-1] += [bu.fmt(s["Og"] / (r["nfe_guided"] * s["F"]))]
    headers = ["process", "guidance", "NFE", "F ms", "FB ms", "W ms", "W/(NFE·F)", "W/(NFE·FB)", "W/(N·FB+F)"]
    headers += ["W/L", "O/(NFE·F)"]
    title = (
        f"sampler overhead: {args.model} model, {args.image_size} px, batch {args.batch_size}, {args.steps} steps, "
        f"{args.reps} reps, threads {torch.get_num_threads()}"
    )
    text = title + "\n" + bu.table(headers, rows)
    text += (
        "\nF / FB: one bare forward / forward+backward-to-input; W: sampler run; L: the sampler's network calls"
        "\nalone in a loop (N+1 forwards, or N forward+backward + 1 forward when guided); O: the sampler run with"
        "\nan identity network (all its non-network work)."
    )
    print(text)
    ratios = {f"{kind}.{k}": v for kind, r in per.items() for k, v in r["ratios"].items()}
    return bu.publish(args, NAME, env, text, results=per, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
