"""Δt ablation of the incremental reconstruction loss for inpainting (the paper's App. F: Δt = 0 fails — the
hidden pixels are never supervised — and a larger look-ahead is better).

For each Δt: one training of ``experiment=inpaint_default`` with the given overrides (default: the tiny network
and a few hundred steps, minutes on a CPU — a *small-scale* ablation, not the shipped recipe), then on the test
faces (the same seeded measurements for every Δt): the one-shot reconstruction x̂0(y, t = 1) (about what DO
returns) and a full 20-step reverse run to t = 0 (PO), PSNR per image with 95 % bootstrap intervals.
Writes ``bench/results/delta_t_ablation.json`` and a figure ``docs/figures/inpaint_delta_t.png``.

    python bench/delta_t_ablation.py [--deltas 0 0.1 0.5 1] [--steps 300] [--model ncsnpp_tiny]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from dirac.evaluation.intervals import bootstrap_mean
from dirac.io import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "delta_t_ablation.json"
FIGURE = ROOT / "docs" / "figures" / "inpaint_delta_t.png"


def train_one(delta_t: float, args: argparse.Namespace, run_dir: Path) -> Path:
    """One seconds-to-minutes training in this process; returns its last checkpoint."""
    from hydra import compose, initialize_config_module

    from dirac.cli.train import run as train_run

    overrides = [f"experiment={args.experiment}", f"model={args.model}", f"loss.delta_t={delta_t}",
                 f"trainer.max_steps={args.steps}", "trainer.progress=false", f"trainer.val_every={args.steps}",
                 f"trainer.checkpoint_every={args.steps}", f"trainer.seed={args.seed}"]  # fmt: skip
    with initialize_config_module("dirac.configs", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    train_run(cfg, run_dir, record=False)
    return run_dir / "checkpoints" / "last"


def evaluate(checkpoint: Path, seed: int) -> dict[str, Any]:
    """One-shot (t = 1) and full 20-step PSNR per test image, with bootstrap intervals."""
    from dirac.factory import dataset_from_config, load_checkpoint, sampler_from_config
    from dirac.metrics import psnr

    model, process, state = load_checkpoint(checkpoint)
    data = dataset_from_config(state["data"], "test")
    clean = torch.stack([data[i] for i in range(len(data))])
    y = process.measure(clean, torch.Generator().manual_seed(seed))
    sampler = sampler_from_config(process, {"steps": 20, "step": "euler", "guidance": "none", "t_stop": 0.0})
    with torch.no_grad():
        one_shot = model(y, torch.ones(len(y))).clamp(0, 1)
    full = sampler(model, y, torch.Generator().manual_seed(seed + 1)).output.clamp(0, 1)
    out: dict[str, Any] = {"num_images": len(y)}
    for name, x in (("measurement", y.clamp(0, 1)), ("one_shot", one_shot), ("full_run", full)):
        values = psnr(x, clean).tolist()
        out[name] = {"psnr": sum(values) / len(values), "ci": list(bootstrap_mean(values, seed=seed))}
    return out


def figure(rows: list[dict[str, Any]], caption: str, path: Path) -> Path:
    import matplotlib as mpl

    from dirac.analysis.plots.figure_io import new_figure, save_figure
    from dirac.analysis.plots.style import STYLE, line_colour

    title = "Inpainting: look-ahead Δt of the incremental reconstruction loss"
    with mpl.rc_context(STYLE):
        fig = new_figure((5.6, 3.8), title, caption)
        ax = fig.add_subplot()
        for k, (key, label) in enumerate((("one_shot", "one-shot x̂0(y, 1) (≈ DO)"), ("full_run", "full run (PO)"))):
            d = [r["delta_t"] for r in rows]
            m = [r[key]["psnr"] for r in rows]
            err = [[v - r[key]["ci"][0] for v, r in zip(m, rows, strict=True)],
                   [r[key]["ci"][1] - v for v, r in zip(m, rows, strict=True)]]  # fmt: skip
            ax.errorbar(d, m, yerr=err, marker="o", capsize=3, color=line_colour(k), label=label)
        ax.axhline(rows[0]["measurement"]["psnr"], ls=":", color="#888888", label="measurement")
        ax.set_xlabel("Δt (0 = loss on A_t only; 1 = clean-image loss)")
        ax.set_ylabel("PSNR on test faces (dB, 95 % CI)")
        ax.legend(fontsize=7)
        return save_figure(fig, path, {"kind": "delta_t_ablation", "rows": rows}, title, caption)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.1, 0.5, 1.0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--model", default="ncsnpp_tiny")
    p.add_argument("--experiment", default="inpaint_default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "delta_t_ablation", help="training folders")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--figure", type=Path, default=FIGURE)
    args = p.parse_args(argv)
    rows = []
    for d in args.deltas:
        ckpt = train_one(d, args, args.runs / f"delta_{d:g}")
        rows.append({"delta_t": d, **evaluate(ckpt, args.seed)})
        r = rows[-1]
        print(
            f"Δt={d:<5g} one-shot {r['one_shot']['psnr']:.2f} dB  full run {r['full_run']['psnr']:.2f} dB  "
            f"(measurement {r['measurement']['psnr']:.2f} dB)"
        )
    caption = (f"{args.experiment}, model={args.model}, {args.steps} steps per Δt (small scale); "
               f"{rows[0]['num_images']} test faces")  # fmt: skip
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(args.out, {"settings": settings, "rows": rows})
    figure(rows, caption, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
