"""Choose a baseline's λ on the validation split (never on the images it is evaluated on).

``tune_lambda`` runs ``make(λ)`` for every λ of a grid on validation pairs ``(clean, y)`` and keeps the λ with
the best mean PSNR there; the test split is only touched afterwards, by the evaluation, with that λ fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from torch import Tensor

from ..metrics.registry import Metric, build_metric
from ..reconstruction import Restorer
from .runner import run_restorer


@dataclass
class Tuned:
    """The chosen λ, the score of every λ tried (mean metric on the tuning split), and the restorer at λ."""

    lam: float
    scores: dict[float, float] = field(default_factory=dict)
    restorer: Restorer | None = None


def tune_lambda(
    make: Callable[[float], Restorer],
    clean: Tensor,
    y: Tensor,
    lambdas: Iterable[float],
    batch_size: int = 64,
    metric: Metric | None = None,
) -> Tuned:
    """``argmax_λ mean metric(make(λ)(y), clean)`` over ``lambdas`` (default metric PSNR; ties keep the first)."""
    metric = metric or build_metric("psnr")
    sign = 1.0 if metric.higher_is_better else -1.0
    best: Tuned | None = None
    scores: dict[float, float] = {}
    for lam in lambdas:
        restorer = make(float(lam))
        out = run_restorer(restorer, y, batch_size).output[:, 0]
        scores[float(lam)] = metric.mean(out, clean)
        if best is None or sign * scores[float(lam)] > sign * scores[best.lam]:
            best = Tuned(float(lam), restorer=restorer)
    if best is None:
        raise ValueError("the λ grid is empty; give at least one λ")
    best.scores = scores
    return best
