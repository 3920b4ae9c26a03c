"""Not a timing: how the faces' learned linear prior improves with data — the val PSNR (one-shot, t = 1) of the
Gaussian-prior posterior mean fitted on random subsets of N training faces (issue 15's "how far do 80 faces go").

For each N, ``--subsets`` random draws of N of the training faces (each with its left-right mirror, as the
network's flipped epochs see them) fit ``μ, Σ`` (:func:`dirac.models.gaussian_prior.fit_gaussian_prior`, ρ and ε
from the checkpoint's model config: the val-chosen 0.5 / 0.3 for the shipped faces model) and restore the val
measurements of ``--checkpoint``'s process. The slope per doubling of N is a data-scaling estimate for a
prior family that needs no training; it is an upper bound on the tuned linear prior's slope (ρ tuned per N
would lift the small-N figures).

    python bench/data_curve.py [--checkpoint inpaint_default] [--sizes 10 20 40 80] [--subsets 5]
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import numpy as np
import torch

from dirac.cli.sample import split_loader
from dirac.degradations.base import MaskProcess
from dirac.factory import dataset_from_config, load_checkpoint
from dirac.metrics import psnr
from dirac.models import NCSNppConfig
from dirac.models.gaussian_prior import fit_gaussian_prior, gaussian_input

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "data_curve"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="inpaint_default", help="shipped name or folder: process, data, ρ/ε")
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40, 80], help="training faces per fit")
    p.add_argument("--subsets", type=int, default=5, help="random subsets per size (1 for the full set)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="two small sizes, one subset (the tests use this)")
    p.add_argument("--out", default=bu.RESULTS, help="folder of the JSON results")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.sizes, args.subsets = [4, 8], 1
    _, process, state = load_checkpoint(args.checkpoint, ema=True)
    if not isinstance(process, MaskProcess):  # the Gaussian posterior mean assumes a diagonal A (a mask)
        raise SystemExit(f"error: --checkpoint {args.checkpoint} is a {process.kind} model; use an inpainting one")
    data = copy.deepcopy(state["data"])
    data["train"] = {}  # the plain faces: the subsets are drawn from them, mirrored below
    clean, y = split_loader({"num_images": None, "seed": 0, "data": data}, state, process)("val")
    train = dataset_from_config(data, "train")
    faces = torch.stack([train[i] for i in range(len(train))])
    if max(args.sizes) > len(faces) or min(args.sizes) < 2:
        raise SystemExit(f"error: --sizes must lie in [2, {len(faces)}] (the training faces), got {args.sizes}")
    cfg = NCSNppConfig.from_dict(dict(state["model"]))  # defaults filled for configs that predate the keys
    shrinkage, smoothness = cfg.gaussian_shrinkage, cfg.gaussian_smoothness
    t = torch.ones(len(y))
    per: dict[int, list[float]] = {}
    for n in args.sizes:
        per[n] = []
        for k in range(args.subsets if n < len(faces) else 1):
            g = torch.Generator().manual_seed(args.seed + k)
            subset = faces[torch.randperm(len(faces), generator=g)[:n]]
            mean, cov = fit_gaussian_prior(torch.cat([subset, subset.flip(-1)]), shrinkage, smoothness)
            x = gaussian_input(process, y, t, mean, cov).clamp(0, 1)
            per[n].append(float(psnr(x, clean).mean()))
    means = {n: sum(v) / len(v) for n, v in per.items()}
    slope = _slope_per_doubling(means)
    rows = [[n, len(per[n]), f"{means[n]:.2f}", f"{min(per[n]):.2f}", f"{max(per[n]):.2f}"] for n in per]
    title = (
        f"data curve: Gaussian prior (rho {shrinkage}, eps {smoothness}) on N training faces, val PSNR at t = 1 "
        f"({len(y)} faces); slope {slope:+.3f} dB per doubling of N"
    )
    text = title + "\n" + bu.table(["N", "subsets", "PSNR dB", "min", "max"], rows)
    print(text)
    results = {str(n): {"psnr": means[n], "per_subset": per[n]} for n in per}
    return bu.publish(args, NAME, bu.env_info(), text, results=results, ratios={"db_per_doubling": slope})


def _slope_per_doubling(means: dict[int, float]) -> float:
    """Least-squares slope of PSNR against log2 N (0 for a single size)."""
    if len(means) < 2:
        return 0.0
    return float(np.polyfit(np.log2(list(means)), list(means.values()), 1)[0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
