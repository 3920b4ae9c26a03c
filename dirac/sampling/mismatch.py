"""Does a measurement match the degradation the model was trained for? (data-consistency check)

For a reconstruction ``x̂`` of ``y = A_1 x + σ_y z`` by a model that knows ``A_1`` and ``σ_y``, the residual
``‖A_1 x̂ − y‖ / √n`` is close to ``σ_y`` (the noise is what the reconstruction cannot explain). A ratio
``residual / σ_y`` far below 1 means less noise than trained for; far above 1, more noise or another
degradation. Measured on the shipped blur model (DO output, 16 test crops): matched 0.96–1.02; σ_y doubled
1.90–2.01; noise-free 0.17–0.22. A different blur width alone barely moves the ratio, so it is not detected.
"""

from __future__ import annotations

import warnings

from torch import Tensor

from ..degradations.base import DegradationProcess
from .sampler import data_consistency

CONSISTENCY_BAND = (0.75, 1.3)
"""Ratios ``residual / σ_y`` inside this band count as a match."""


class DegradationMismatchWarning(UserWarning):
    """A measurement does not look like the degradation (noise level, operator) the model was trained for."""


def consistency_ratios(process: DegradationProcess, x_hat: Tensor, y: Tensor) -> Tensor:
    """``‖A_1 x̂ − y‖ / (√n σ_y)`` per image (1 for a matching measurement)."""
    return data_consistency(process, x_hat, y) / process.sigma_y


def mismatch_message(ratios: Tensor, sigma_y: float, band: tuple[float, float] = CONSISTENCY_BAND) -> str | None:
    """A warning text naming the images outside ``band`` with both figures and what to do, or None."""
    lo, hi = band
    bad = [(i, float(r)) for i, r in enumerate(ratios.tolist()) if not lo <= r <= hi]
    if not bad:
        return None
    shown = ", ".join(f"image {i}: residual {r * sigma_y:.4f} (×{r:.2f})" for i, r in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    cause = (
        "less noise than the model was trained for (it will over-smooth)"
        if all(r < lo for _, r in bad)
        else "more noise than trained for, or another operator (a mask, resampling or a much stronger blur; a "
        "somewhat different blur width is usually not detected)"
    )
    return (
        f"{len(bad)} of {len(ratios)} measurements do not match the model's degradation: the data-consistency "
        f"residual ‖A(x̂) − y‖/√n should be close to σ_y = {sigma_y:.4f}, got {shown}{more}. Likely {cause}; "
        f"use a model trained for this degradation (see the README's table of shipped models) or retrain with "
        f"matching degradation settings."
    )


def warn_mismatch(ratios: Tensor, sigma_y: float) -> None:
    """Emit a :class:`DegradationMismatchWarning` when some ``ratios`` leave :data:`CONSISTENCY_BAND`."""
    message = mismatch_message(ratios.cpu(), sigma_y)
    if message is not None:
        warnings.warn(message, DegradationMismatchWarning, stacklevel=3)
