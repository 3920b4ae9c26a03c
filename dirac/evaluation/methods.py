"""The methods compared in a sweep: the one place a new baseline plugs in.

Each entry makes a restorer for a process and a λ, with the λ grid searched on the validation split. A new
method = one :class:`Baseline` entry in :data:`BASELINES` (or :func:`register_baseline` from user code); the
sweep then tunes it on val, evaluates it on test next to DO/PO, and adds its ``*_oracle`` row (λ picked on
test itself: an upper bound, labelled as such, never used for a choice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..baselines import TIKHONOV_LAMBDAS, TV_LAMBDAS
from ..degradations import DegradationProcess
from ..reconstruction import Restorer
from .restorers import AdmmTvRestorer, TikhonovRestorer


@dataclass(frozen=True)
class Baseline:
    """``make(process, λ) -> Restorer`` and the λ grid tuned over."""

    make: Callable[[DegradationProcess, float], Restorer]
    lambdas: tuple[float, ...]
    description: str = ""


BASELINES: dict[str, Baseline] = {
    "tikhonov": Baseline(TikhonovRestorer, TIKHONOV_LAMBDAS, "Laplacian-regularised least squares (CG)"),
    "admm_tv": Baseline(AdmmTvRestorer, TV_LAMBDAS, "isotropic TV by ADMM, 100 iterations"),
}


def register_baseline(name: str, baseline: Baseline) -> None:
    """Add a method to every sweep's comparison (``sweep.baselines=[..., NAME]``)."""
    BASELINES[name] = baseline


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r} in sweep.baselines; choose from {sorted(BASELINES)}")
    return BASELINES[name]
