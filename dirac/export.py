"""Export a training checkpoint as a small inference checkpoint (one set of weights + state.json).

    python -m dirac.export runs/train/X/checkpoints/last pretrained/my_model [--raw]

Keeps the EMA weights (or the raw ones with ``--raw``) as ``model.safetensors`` and drops optimizer and RNG
states, which halves-to-quarters the size; ``state.json`` (config, process and schedule) is kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .checkpoint import read_state, read_weights, write_checkpoint


def export_checkpoint(src: str | Path, dst: str | Path, ema: bool = True) -> Path:
    state = read_state(src)
    state = {k: v for k, v in state.items() if k != "format_version"}
    state["exported_from"] = {"path": str(src), "weights": "ema" if ema else "raw", "step": state.get("step")}
    return write_checkpoint(dst, model=read_weights(src, ema=ema), state=state)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA weights")
    a = p.parse_args(argv)
    out = export_checkpoint(a.src, a.dst, ema=not a.raw)
    print(json.dumps({"exported": str(out), "files": sorted(f.name for f in out.iterdir())}))


if __name__ == "__main__":
    main()
