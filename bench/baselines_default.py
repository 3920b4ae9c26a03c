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
import json
import time
from pathlib import Path

import torch

from dirac.baselines import admm_tv, best_lambda_tikhonov, best_lambda_tv, tikhonov
from dirac.baselines._common import default_lambdas
from dirac.data import PhotoCrops
from dirac.factory import process_from_config
from dirac.metrics import psnr, ssim

OUT = Path(__file__).parent / "results" / "baselines_default.json"


def _degradation_config(kind: str) -> dict:
    from omegaconf import OmegaConf

    from dirac.shipped import config_dir

    return OmegaConf.to_container(OmegaConf.load(config_dir() / "degradation" / f"{kind}.yaml"), resolve=True)


def summary(rec: torch.Tensor, x: torch.Tensor) -> dict:
    return {"psnr": float(psnr(rec, x).mean()), "ssim": float(ssim(rec, x).mean())}


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
        y = proc.measure(x, torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        lam_t, scores_t, rec_t = best_lambda_tikhonov(proc, x, y, lambdas=tik_grid)
        t1 = time.perf_counter()
        lam_v, scores_v, rec_v = best_lambda_tv(proc, x, y, lambdas=tv_grid, iterations=args.tv_iterations)
        t2 = time.perf_counter()
        # one solve at the chosen λ, timed alone
        s0 = time.perf_counter()
        tikhonov(proc, y, lam_t)
        s1 = time.perf_counter()
        admm_tv(proc, y, lam_v, iterations=args.tv_iterations)
        s2 = time.perf_counter()
        results[name] = {
            "measurement": summary(y, x),
            "tikhonov": {
                "lambda": lam_t,
                **summary(rec_t, x),
                "psnr_per_lambda": {f"{k:.6g}": v for k, v in scores_t.items()},
                "sweep_s": t1 - t0,
                "solve_s": s1 - s0,
            },
            "admm_tv": {
                "lambda": lam_v,
                **summary(rec_v, x),
                "psnr_per_lambda": {f"{k:.6g}": v for k, v in scores_v.items()},
                "sweep_s": t2 - t1,
                "solve_s": s2 - s1,
            },
        }
        r = results[name]
        rows.append((name, "measurement", r["measurement"]["psnr"], r["measurement"]["ssim"], None))
        rows.append((name, "tikhonov (laplacian)", r["tikhonov"]["psnr"], r["tikhonov"]["ssim"], lam_t))
        rows.append((name, "admm-tv (isotropic)", r["admm_tv"]["psnr"], r["admm_tv"]["ssim"], lam_v))

    print(f"{'process':<8} {'method':<22} {'PSNR dB':>8} {'SSIM':>7} {'best λ':>10}")
    for proc_name, method, p, s, lam in rows:
        lam_s = f"{lam:.4g}" if lam is not None else "-"
        print(f"{proc_name:<8} {method:<22} {p:8.2f} {s:7.4f} {lam_s:>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
