"""The methods compared with Dirac: the one place a peer plugs in.

A :class:`Method` builds a :class:`~dirac.reconstruction.Restorer` from :class:`Resources` (the measurement
process, and the learned networks some peers need) and a dict of hyper-parameters. ``grid`` lists the values the
``tune`` step searches **on the validation split** (the product of all lists; empty = nothing to tune); ``fixed``
holds the settings that are not tuned (step counts: CPU-sized defaults, overridable). A new method = one entry in
:data:`METHODS` (or :func:`register_method` from user code); sweeps and comparisons then tune it on val, evaluate
it on test, and can add its ``NAME_oracle`` row (hyper-parameters picked on the evaluated images themselves: an
upper bound, labelled as such, never used for a choice).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ..baselines import TIKHONOV_LAMBDAS, TV_LAMBDAS
from ..baselines.wiener import WIENER_NSR
from ..degradations import DegradationProcess
from ..degradations.base import MaskProcess
from ..reconstruction import Restorer
from .peer_restorers import (
    DdrmRestorer,
    DiffPirRestorer,
    DpsRestorer,
    GaussianPriorRestorer,
    RegressorRestorer,
    WienerRestorer,
)
from .restorers import AdmmTvRestorer, TikhonovRestorer

NEEDS = ("prior", "regressor")  # the learned networks a method may need (Resources attributes)
TRAIN_IMAGES = "train_images"  # a method fitted on the Dirac checkpoint's training images needs this resource


@dataclass
class Resources:
    """What a method is built from: the process whose ``A_1`` and ``σ_y`` made the measurements, the
    unconditional prior (a ``Reconstructor`` trained on the identity process: a denoiser ``D(x, σ)``) and the
    supervised regressor (a ``Reconstructor`` trained at t = 1 only), and the Dirac checkpoint's training images
    (``(N, C, S, S)``, for a peer fitted on data). ``names`` records where they came from."""

    process: DegradationProcess
    prior: nn.Module | None = None
    regressor: nn.Module | None = None
    train_images: Tensor | None = None
    names: dict[str, str] = field(default_factory=dict)


# the value ranges a method may declare for a setting (Method.ranges): a test and how the refusal reads
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "a positive number"),
    "unit": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "count": (lambda v: v >= 1 and float(v).is_integer(), "a whole number >= 1"),
}


@dataclass(frozen=True)
class Method:
    """``make(resources, **params) -> Restorer``; ``grid`` tuned on val; ``fixed`` untuned settings; ``options``
    other settings ``make`` accepts; ``ranges`` each numeric setting's kind of value (a :data:`RANGES` key)."""

    make: Callable[..., Restorer]
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    description: str = ""
    paper: Mapping[str, Any] = field(default_factory=dict)  # the paper's value of a fixed setting we shrank for CPU
    svd: bool = False  # needs the exact SVD of A_1 (dirac.baselines.spectral: diagonal or separable operators)
    masks_only: bool = False  # needs a diagonal A_1 (a mask process)
    options: tuple[str, ...] = ()
    ranges: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {k: v for k, v in self.ranges.items() if v not in RANGES}
        if unknown:
            raise ValueError(f"Method ranges {unknown}: each must be one of {', '.join(RANGES)}")

    def check_settings(self, values: Mapping[str, Any], where: str) -> None:
        """Refuse, naming ``where.KEY``, a setting this method does not have or a value outside its range (a tuned
        file edited by hand, an override): caught before anything runs, not as a garbage row or a traceback.
        An optional setting (``options``) may be ``None``, its default."""
        known = {*self.grid, *self.fixed, *self.options}
        for key, value in values.items():
            if key not in known:
                has = ", ".join(sorted(known)) or "none"
                raise ValueError(
                    f"{where}.{key}: no such setting (this method has {has}; a registered method declares other "
                    f"settings of its make() in Method(options=...))"
                )
            if key not in self.ranges or (value is None and key in self.options):
                continue
            admits, text = RANGES[self.ranges[key]]
            number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not (number and admits(value)):
                raise ValueError(f"{where}.{key} must be {text}, got {value!r}")

    def operator_refusal(self, process: DegradationProcess) -> str | None:
        """Why no resource would let this method run on ``process``'s operator (``masks_only``), or ``None``."""
        if self.masks_only and not isinstance(process, MaskProcess):
            return f"needs a mask (inpainting) process, not {process.kind}"
        return None

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values (one empty dict when there is nothing to tune)."""
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def build(self, resources: Resources, params: Mapping[str, Any] | None = None, name: str = "") -> Restorer:
        """The restorer at ``fixed`` updated by ``params``; a missing network is a clear error."""
        for need in self.needs:
            if getattr(resources, need) is None:
                raise ValueError(f"method {name or self.description!r} {missing_need(need)}")
        settings = {**self.fixed, **(params or {})}
        self.check_settings(settings, name or self.description)
        return self.make(resources, **settings)


def missing_need(need: str) -> str:
    """Why a method cannot run without the resource ``need``, and the fix (one line, after the method's name)."""
    if need == TRAIN_IMAGES:
        return "needs the Dirac checkpoint's training images (its state.json names no dataset that loads here)"
    return (
        f"needs the {need} network; set compare.{need}= to a checkpoint (e.g. the shipped ones listed in "
        f"`python sample.py --help`)"
    )


def _tikhonov(res: Resources, lam: float, regulariser: str = "laplacian") -> Restorer:
    return TikhonovRestorer(res.process, lam, regulariser)


def _admm_tv(res: Resources, lam: float, iterations: int = 100) -> Restorer:
    return AdmmTvRestorer(res.process, lam, iterations)


def _wiener(res: Resources, nsr: float) -> Restorer:
    return WienerRestorer(res.process, nsr)


def _ddrm(res: Resources, **params: Any) -> Restorer:
    return DdrmRestorer(res.process, res.prior, **params)


def _diffpir(res: Resources, **params: Any) -> Restorer:
    return DiffPirRestorer(res.process, res.prior, **params)


def _dps(res: Resources, **params: Any) -> Restorer:
    return DpsRestorer(res.process, res.prior, **params)


def _gaussian(res: Resources, shrinkage: float, smoothness: float) -> Restorer:
    return GaussianPriorRestorer(res.process, res.train_images, shrinkage, smoothness)  # type: ignore[arg-type]


def _regressor(res: Resources) -> Restorer:
    return RegressorRestorer(res.process, res.regressor)  # type: ignore[arg-type]


# Step counts are CPU-sized defaults (papers: DDRM 20, DiffPIR 20-100, DPS 1000); override with
# compare.overrides.<method>.steps=N. Grids span each paper's recommended value.
METHODS: dict[str, Method] = {
    "wiener": Method(_wiener, {"nsr": WIENER_NSR}, description="Wiener filter, constant NSR, exact SVD basis",
                     svd=True, ranges={"nsr": "positive"}),
    "tikhonov": Method(_tikhonov, {"lam": TIKHONOV_LAMBDAS}, description="Laplacian-regularised least squares (CG)",
                       options=("regulariser",), ranges={"lam": "positive"}),
    "admm_tv": Method(_admm_tv, {"lam": TV_LAMBDAS}, {"iterations": 100}, description="isotropic TV by ADMM",
                      ranges={"lam": "positive", "iterations": "count"}),
    "ddrm": Method(_ddrm, {"eta": (0.5, 0.7, 0.85, 1.0)}, {"steps": 20, "eta_b": 1.0}, ("prior",),
                   "DDRM (Kawar et al. 2022), exact SVD, unconditional prior", svd=True, options=("sigma_min",),
                   ranges={"eta": "unit", "eta_b": "unit", "steps": "count", "sigma_min": "positive"}),
    "diffpir": Method(_diffpir, {"lam": (0.1, 0.3, 1.0, 3.0, 7.0, 20.0), "zeta": (0.1, 0.3, 1.0)}, {"steps": 20},
                      ("prior",), "DiffPIR (Zhu et al. 2023), exact proximal step, unconditional prior",
                      {"steps": 100}, svd=True, options=("sigma_min",),
                      ranges={"lam": "positive", "zeta": "unit", "steps": "count", "sigma_min": "positive"}),
    "dps": Method(_dps, {"zeta": (0.1, 0.3, 1.0, 3.0, 10.0)}, {"steps": 50}, ("prior",),
                  "DPS (Chung et al. 2023), unconditional prior, forward + backward per step", {"steps": 1000},
                  options=("sigma_min",), ranges={"zeta": "positive", "steps": "count", "sigma_min": "positive"}),
    "regressor": Method(_regressor, needs=("regressor",),
                        description="supervised regressor: same NCSN++ trained on (y, x) at t = 1 (MSE)"),
    "gaussian": Method(_gaussian, {"shrinkage": (0.1, 0.3, 0.5, 0.7, 0.9), "smoothness": (0.1, 0.3, 1.0, 3.0)},
                       needs=(TRAIN_IMAGES,), masks_only=True,
                       description="learned linear prior: Gaussian fitted on the training images, posterior mean",
                       ranges={"shrinkage": "unit", "smoothness": "positive"}),
}  # fmt: skip


def register_method(name: str, method: Method) -> None:
    """Add a method to every comparison (``compare.methods=[..., NAME]``, ``sweep.baselines=[..., NAME]``)."""
    METHODS[name] = method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]
