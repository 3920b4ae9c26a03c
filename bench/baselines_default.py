"""Classical baselines (Tikhonov, ADMM-TV) on the default test crops, with oracle (best-PSNR) λ.

Setting: ``PhotoCrops("test", image_size=32)`` (64 crops of chelsea + coffee), the default processes of
``configs/degradation/{blur,inpaint}.yaml`` (blur std 0.3 -> 2.0, inpainting width 0 -> 6 px, sigma_y = 0.05),
measurement seed 0. λ is chosen on the test images themselves (an oracle upper bound for each baseline; the
sweep, ``sample.py mode=sweep``, tunes λ on the validation split instead).
Prints a table and writes ``bench/results/baselines_default.json``.

    python bench/baselines_default.py [--per-decade 4] [--threads 1] [--tv-iterations 100]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from dirac.baselines import admm_tv, best_lambda_tikhonov, best_lambda_tv, tikhonov
from dirac.baselines._common import default_lambdas
from dirac.data import PhotoCrops
from dirac.degradations import DegradationProcess
from dirac.factory import process_from_config
from dirac.io import write_json
from dirac.metrics import psnr, ssim

OUT = Path(__file__).parent / "results" / "baselines_default.json"


def _degradation_config(kind: str) -> dict:
    from omegaconf import OmegaConf

    from dirac.shipped import config_dir

    return OmegaConf.to_container(OmegaConf.load(config_dir() / "degradation" / f"{kind}.yaml"), resolve=True)


def summary(rec: torch.Tensor, x: torch.Tensor) -> dict:
    return {"psnr": float(psnr(rec, x).mean()), "ssim": float(ssim(rec, x).mean())}


def _one_process(
    proc: DegradationProcess, x: torch.Tensor, tik_grid: Sequence[float], tv_grid: Sequence[float], tv_iterations: int
) -> dict:
    """Oracle-λ Tikhonov and TV on one process's measurements of ``x``: scores per λ, sweep and single-solve times."""
    y = proc.measure(x, torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    lam_t, scores_t, rec_t = best_lambda_tikhonov(proc, x, y, lambdas=tik_grid)
    t1 = time.perf_counter()
    lam_v, scores_v, rec_v = best_lambda_tv(proc, x, y, lambdas=tv_grid, iterations=tv_iterations)
    t2 = time.perf_counter()
    tikhonov(proc, y, lam_t)  # one solve at the chosen λ, timed alone
    s1 = time.perf_counter()
    admm_tv(proc, y, lam_v, iterations=tv_iterations)
    s2 = time.perf_counter()
    per_lambda = [{f"{k:.6g}": v for k, v in scores.items()} for scores in (scores_t, scores_v)]
    return {
        "measurement": summary(y, x),
        "tikhonov": {"lambda": lam_t, **summary(rec_t, x), "psnr_per_lambda": per_lambda[0], "sweep_s": t1 - t0,
                     "solve_s": s1 - t2},
        "admm_tv": {"lambda": lam_v, **summary(rec_v, x), "psnr_per_lambda": per_lambda[1], "sweep_s": t2 - t1,
                    "solve_s": s2 - s1},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-decade", type=int, default=4, help="λ grid points per decade")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription)")
    parser.add_argument("--tv-iterations", type=int, default=100)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ds = PhotoCrops("test", image_size=32)
    x = torch.stack([ds[i] for i in range(len(ds))])
    # the default processes, read from configs/degradation/{blur,inpaint}.yaml (not copied here)
    processes = {kind: process_from_config(_degradation_config(kind)) for kind in ("blur", "inpaint")}
    tik_grid = default_lambdas(-4.0, 1.0, args.per_decade)
    tv_grid = default_lambdas(-3.0, 0.0, args.per_decade)
    results: dict = {
        "setting": {
            "data": "PhotoCrops('test', image_size=32)",
            "n_images": int(x.shape[0]),
            "measurement_seed": 0,
            "processes": {k: p.to_dict() for k, p in processes.items()},
            "tikhonov": {"regulariser": "laplacian", "lambdas": list(tik_grid), "tol": 1e-5, "max_iter": 500},
            "admm_tv": {
                "isotropic": True,
                "iterations": args.tv_iterations,
                "rho": "10 * lambda",
                "cg_iterations": 10,
                "lambdas": list(tv_grid),
            },
            "lambda_selection": "oracle: best mean PSNR on these images",
        },
    }
    rows = []
    for name, proc in processes.items():
        results[name] = r = _one_process(proc, x, tik_grid, tv_grid, args.tv_iterations)
        labels = {"measurement": "measurement", "tikhonov": "tikhonov (laplacian)", "admm_tv": "admm-tv (isotropic)"}
        rows += [(name, label, r[k]["psnr"], r[k]["ssim"], r[k].get("lambda")) for k, label in labels.items()]

    print(f"{'process':<8} {'method':<22} {'PSNR dB':>8} {'SSIM':>7} {'best λ':>10}")
    for proc_name, method, p, s, lam in rows:
        lam_s = f"{lam:.4g}" if lam is not None else "-"
        print(f"{proc_name:<8} {method:<22} {p:8.2f} {s:7.4f} {lam_s:>10}")
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
