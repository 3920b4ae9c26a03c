"""Choose a method's hyper-parameters on the validation split (never on the images it is evaluated on).

:func:`tune` runs ``make(params)`` for every candidate on validation pairs ``(clean, y)`` and keeps the candidate
with the best mean metric (default PSNR) there; the test split is only touched afterwards, by the evaluation,
with those hyper-parameters fixed. Stochastic methods run with the given seed, so the choice is repeatable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ..metrics.registry import Metric, build_metric
from ..reconstruction import Restorer
from .runner import run_restorer

if TYPE_CHECKING:
    from .methods import Method, Resources

log = logging.getLogger(__name__)


def params_label(params: Mapping[str, Any]) -> str:
    """``"lam=0.01,steps=20"``: a candidate as a JSON key (empty for a method with nothing to tune)."""
    return ",".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@dataclass
class Tuned:
    """The chosen hyper-parameters, the score of every candidate tried (mean metric on the tuning split, keyed by
    :func:`params_label`), and the restorer built with the chosen ones."""

    params: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    restorer: Restorer | None = None


def tune(
    make: Callable[[dict[str, Any]], Restorer],
    candidates: Sequence[Mapping[str, Any]],
    clean: Tensor,
    y: Tensor,
    batch_size: int = 64,
    metric: Metric | None = None,
    seed: int = 0,
) -> Tuned:
    """``argmax_p mean metric(make(p)(y), clean)`` over ``candidates`` (ties keep the first listed)."""
    metric = metric or build_metric("psnr")
    sign = 1.0 if metric.higher_is_better else -1.0
    best: Tuned | None = None
    best_score = -float("inf")
    scores: dict[str, float] = {}
    for params in candidates:
        restorer = make(dict(params))
        out = run_restorer(restorer, y, batch_size, seed=seed, per_image_noise=True).output[:, 0]
        score = metric.mean(out, clean)
        scores[params_label(params)] = score
        if best is None or sign * score > best_score:
            best, best_score = Tuned(dict(params), restorer=restorer), sign * score
    if best is None:
        raise ValueError("nothing to tune over: give at least one candidate")
    best.scores = scores
    return best


def tune_method(
    method: Method, name: str, resources: Resources, clean: Tensor, y: Tensor, batch_size: int, seed: int = 0
) -> Tuned:
    """:func:`tune` over ``method``'s grid, each candidate built from ``resources`` (errors name ``name``)."""
    return tune(lambda p: method.build(resources, p, name), method.candidates(), clean, y, batch_size, seed=seed)


def tune_methods_on(
    methods: Mapping[str, Method], resources: Resources, clean: Tensor, y: Tensor, batch_size: int, seed: int = 0,
    gridless: bool = True,
) -> dict[str, Tuned]:  # fmt: skip
    """:func:`tune_method` for each of ``methods`` on ``(clean, y)``: the validation split for a tuned row, the
    evaluated images for an ``oracle`` row (then ``gridless=False``: a method with nothing to tune has no oracle)."""
    out = {}
    for name, m in methods.items():
        if gridless or m.grid:
            log.info("tuning %s over %d candidate(s) on %d image(s)", name, len(m.candidates()), len(y))
            out[name] = tune_method(m, name, resources, clean, y, batch_size, seed)
    return out
