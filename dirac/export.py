"""Export a training checkpoint as a small inference checkpoint (one set of weights + state.json).

    python -m dirac.export runs/train/X/checkpoints/last pretrained/my_model [--raw] [--overwrite]

Keeps the EMA weights (or the raw ones with ``--raw``) as ``model.safetensors`` and drops optimizer and RNG
states, which halves-to-quarters the size; ``state.json`` (config, process and schedule) is kept. ``DST`` must be
absent or empty; ``--overwrite`` replaces (atomically) a folder that is itself a dirac checkpoint and nothing else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .checkpoint import check_destination, read_state, read_weights, require_keys, write_checkpoint
from .io import to_json
from .shipped import refuse_shipped


def export_checkpoint(src: str | Path, dst: str | Path, ema: bool = True, overwrite: bool = False) -> Path:
    """Write ``dst`` from checkpoint ``src``; refuses a non-empty ``dst`` unless ``overwrite`` (see module doc)."""
    refuse_shipped(dst, "export")
    check_destination(dst, overwrite, src=src)
    state = read_state(src)
    require_keys(state, ("model", "process"), src)
    weights = read_weights(src, ema=ema)
    state = {k: v for k, v in state.items() if k not in ("format_version", "files")}
    state["exported_from"] = {"path": str(src), "weights": "ema" if ema else "raw", "step": state.get("step")}
    return write_checkpoint(dst, model=weights, state=state)


def main(argv: list[str] | None = None) -> None:
    """Command line: errors are one line on stderr and a non-zero exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA weights")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it is a dirac checkpoint")
    a = p.parse_args(argv)
    try:
        out = export_checkpoint(a.src, a.dst, ema=not a.raw, overwrite=a.overwrite)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(to_json({"exported": str(out), "files": sorted(f.name for f in out.iterdir())}, indent=None))


if __name__ == "__main__":
    main()
