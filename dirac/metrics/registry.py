"""Metric registry: one name -> one :class:`Metric` (a function of ``(x, ref)`` batches in [0, 1]).

Per-image metrics return ``(B,)`` (PSNR, SSIM, LPIPS); distribution metrics return one number for the whole
set (the offline multi-scale SWD). Sweeps and summaries look metrics up here by name, so a new metric is one
file calling :func:`register_metric` (the built-ins below are registered lazily: nothing heavy is imported,
and LPIPS, which needs converted weights, is only built when asked for with ``lpips_weights=``).

    from dirac.metrics.registry import build_metric
    m = build_metric("psnr");  m(x, clean)  # -> (B,) dB
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Metric:
    """``fn(x, ref)``: ``(B,)`` when ``per_image`` else a 0-d tensor; ``label`` names it in tables and plots."""

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    per_image: bool = True
    higher_is_better: bool = True
    label: str = ""

    def __call__(self, x: Tensor, ref: Tensor) -> Tensor:
        return self.fn(x.clamp(0, 1), ref)

    def mean(self, x: Tensor, ref: Tensor) -> float:
        """The metric over the set: the mean of per-image values, or the distribution value itself."""
        return float(torch.as_tensor(self(x, ref)).float().mean())


MetricFactory = Callable[..., Metric]
_REGISTRY: dict[str, MetricFactory] = {}


def register_metric(name: str, factory: MetricFactory, overwrite: bool = False) -> None:
    """Register ``factory(**options) -> Metric`` under ``name``."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"metric {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    """Names accepted by :func:`build_metric`."""
    return sorted(_REGISTRY)


def build_metric(name: str, **options: Any) -> Metric:
    """The metric registered as ``name``; ``options`` go to its factory (e.g. ``lpips_weights=DIR``)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown metric {name!r}; choose from {available_metrics()} (metrics=[psnr,ssim,...])")
    return _REGISTRY[name](**options)


def _psnr(**_: Any) -> Metric:
    from .fidelity import psnr

    return Metric("psnr", psnr, label="PSNR (dB)")


def _ssim(**_: Any) -> Metric:
    from .fidelity import ssim

    return Metric("ssim", ssim, label="SSIM")


def _swd(**_: Any) -> Metric:
    from .swd import MultiScalePatchDistance

    pd = MultiScalePatchDistance(normalize="reference")
    return Metric(
        "swd", lambda x, ref: torch.tensor(float(pd.swd(x, ref))), False, False, "SWD ×1e3 (lower = more realistic)"
    )


def _lpips(lpips_net: str = "alex", lpips_weights: str | None = None, **_: Any) -> Metric:
    if not lpips_weights:
        raise ValueError("metric 'lpips' needs converted weights: pass lpips_weights=FOLDER (see docs/metrics.md)")
    from .lpips import load_lpips

    net = load_lpips(lpips_net, lpips_weights)
    return Metric("lpips", lambda x, ref: net(x, ref).flatten(), True, False, f"LPIPS-{lpips_net} (lower = better)")


for _name, _factory in {"psnr": _psnr, "ssim": _ssim, "swd": _swd, "lpips": _lpips}.items():
    register_metric(_name, _factory)
