"""Convert a standard PyTorch ``.pth`` weight file into a safetensors file, once.

Usage::

    python -m dirac.metrics.convert_weights SRC.pth DST.safetensors [--keep PREFIX ...]

The source is read with ``torch.load(..., weights_only=True)`` (PyTorch's restricted unpickler, which only
rebuilds tensors and plain containers); this is the only place in the project that reads a pickle.  The
file may hold a flat state dict or one nested under ``"state_dict"``/``"model"``; a ``module.`` prefix
left by DataParallel is stripped.  ``--keep features.`` keeps only keys with that prefix (use it for the
torchvision AlexNet/VGG16 files, whose classifier heads LPIPS does not need).

Files the metrics expect (see :mod:`dirac.metrics.lpips` and :mod:`dirac.metrics.fid`):

==============================  ============================================  ==================
safetensors file                converted from                                ``--keep``
==============================  ============================================  ==================
alexnet_backbone.safetensors    torchvision ``alexnet-owt-7be5be79.pth``      ``features.``
vgg16_backbone.safetensors      torchvision ``vgg16-397923af.pth``            ``features.``
lpips_alex_lin.safetensors      LPIPS v0.1 ``alex.pth``                       (all)
lpips_vgg_lin.safetensors       LPIPS v0.1 ``vgg.pth``                        (all)
fid_inception_v3.safetensors    ``pt_inception-2015-12-05-6726825d.pth``      (all)
==============================  ============================================  ==================
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ._weights import convert_pth_to_safetensors

__all__ = ["convert_pth_to_safetensors", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m dirac.metrics.convert_weights",
        description="Convert a .pth state dict (read with torch.load(weights_only=True)) to safetensors.",
    )
    parser.add_argument("src", type=Path, help="source .pth file")
    parser.add_argument("dst", type=Path, help="destination .safetensors file")
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only keep keys starting with PREFIX (repeatable), e.g. --keep features.",
    )
    args = parser.parse_args(argv)
    keys = convert_pth_to_safetensors(args.src, args.dst, keep=args.keep)
    print(f"wrote {len(keys)} tensors to {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
