"""Pipeline at scale: peak memory and megapixels/s of a DO reconstruction against the image size, tiled and not.

Each size runs in a fresh process (``--one``) so its peak resident memory (``ru_maxrss``: the whole process,
torch included) is its own. The image is a photograph (scikit-image ``chelsea``) resized to the size and
degraded by the shipped model's process; rows with a tile size are forced to tile (``tile_above=0``; the
pipeline's default tiles only images of more than 256² pixels, with 128-px tiles).

    python bench/pipeline_scale.py [--sizes 256 512 1024 2048] [--untiled-up-to 512] [--tile 128] [--threads 1]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

try:
    from . import _benchutil as bu
except ImportError:  # run as a script or imported with bench/ on sys.path
    import _benchutil as bu

NAME = "pipeline_scale"
NORMAL = {
    "checkpoint": "blur_default",
    "sizes": [256, 512, 1024, 2048],
    "untiled_up_to": 512,
    "tile": 128,
    "seam_tile": 64,
}
QUICK = {"checkpoint": "blur_default", "sizes": [96], "untiled_up_to": 96, "tile": 64, "seam_tile": 48}


def build_parser():
    p = bu.common_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="image sides (square RGB images)")
    p.add_argument("--untiled-up-to", type=int, default=None, help="also run untiled up to this side")
    p.add_argument(
        "--tile", type=int, default=None, help="tile side (overlap = tile / 4, the pipeline default 32 at 128)"
    )
    p.add_argument("--seam-tile", type=int, default=None, help="also run the smallest size with this tile (seams)")
    p.add_argument("--checkpoint", default=None, help="a shipped model name or a checkpoint folder")
    p.add_argument("--one", default=None, help="internal: 'SIZE,TILE' measured in this process (TILE 0 = untiled)")
    return p


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_one(model: str, size: int, tile: int) -> dict[str, Any]:
    """Load, degrade, reconstruct at DO once (seeded: DO may stop before t = 1, where sampling is stochastic);
    peak RSS before and after the reconstruction."""
    import warnings

    import numpy as np
    from PIL import Image

    from dirac import DiracPipeline
    from dirac.data.embedded import load_photo
    from dirac.metrics import psnr

    pipe = DiracPipeline.from_pretrained(model)
    photo = load_photo("chelsea")
    img = Image.fromarray((photo.permute(1, 2, 0).numpy() * 255).astype("uint8")).resize((size, size))
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255
    y = pipe.degrade(x, generator=torch.Generator().manual_seed(0))
    before = rss_mb()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiling = {"tile_size": tile or None, "tile_overlap": max(tile // 4, 1), "tile_above": 0}
        out = pipe(y, t_stop="do", generator=torch.Generator().manual_seed(1), progress=False, **tiling)
    seconds = time.perf_counter() - t0
    return {
        "size": size,
        "tiled": bool(tile) and size > tile,
        "seconds": seconds,
        "mpix_s": size * size / 1e6 / seconds,
        "peak_rss_mb": rss_mb(),
        "rss_before_mb": before,
        "psnr": float(psnr(out.clamp(0, 1), x)),
        "psnr_measurement": float(psnr(y.clamp(0, 1), x)),
    }


def run_child(args, size: int, tile: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{size},{tile}", "--threads", str(args.threads)]
    cmd += ["--checkpoint", str(args.checkpoint)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"size": size, "tiled": bool(tile), "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args) -> dict[str, Any]:
    args = bu.resolve(args, NORMAL, QUICK)
    if args.one:
        size, tile = (int(v) for v in args.one.split(","))
        print(json.dumps(measure_one(args.checkpoint, size, tile)))
        return {}
    env = bu.env_info()
    results = [run_child(args, s, args.tile) for s in args.sizes]
    results += [run_child(args, s, 0) for s in args.sizes if s <= args.untiled_up_to]
    results.append({**run_child(args, min(args.sizes), args.seam_tile), "tile": args.seam_tile})
    rows = [
        [r["size"], r.get("tile", args.tile) if r["tiled"] else "no", bu.fmt(r["seconds"]), bu.fmt(r["mpix_s"]),
         f"{r['peak_rss_mb']:.0f}", f"{r['psnr']:.2f}", f"{r['psnr_measurement']:.2f}"]
        if "error" not in r else [r["size"], r["tiled"], "failed", "", "", "", ""]
        for r in results
    ]  # fmt: skip
    headers = ["side", "tile", "seconds", "Mpx/s", "peak RSS MB", "PSNR DO", "PSNR y"]
    title = (
        f"pipeline scale: {args.checkpoint} at DO, RGB, tile {args.tile} (overlap {args.tile // 4}), "
        f"threads {torch.get_num_threads()}; peak RSS is the whole process"
    )
    text = title + "\n" + bu.table(headers, rows)
    print(text)
    ok = [r for r in results if "error" not in r]
    ratios = {
        f"{r['size']}_{r.get('tile', args.tile) if r['tiled'] else 'untiled'}.peak_rss_mb": r["peak_rss_mb"] for r in ok
    }
    untiled = {r["size"]: r for r in ok if not r["tiled"]}
    for r in ok:  # the same size both ways: speed and PSNR cost of tiling
        if r["tiled"] and r["size"] in untiled and max(r["size"], 0) > r.get("tile", args.tile):
            key = f"{r['size']}_{r.get('tile', args.tile)}"
            ratios[f"{key}.untiled_over_tiled_seconds"] = untiled[r["size"]]["seconds"] / r["seconds"]
            ratios[f"{key}.psnr_gap_db"] = abs(untiled[r["size"]]["psnr"] - r["psnr"]) + 1e-9
    return bu.publish(args, NAME, env, text, results=results, ratios=ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
