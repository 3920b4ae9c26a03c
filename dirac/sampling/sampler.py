"""The reverse sampler of DiracDiffusion (paper Alg. 1; DESIGN §4).

From the measurement ``y_1 = y`` on the grid ``t_i = 1 − i / N`` down to ``t_stop``, each step from
``t`` to ``t'`` computes ``x̂0 = Φθ(y_t, t)`` and

    y_{t'} = y_t + r + d + g + n
    r = A_{t'}(x̂0) − A_t(x̂0)                                  incremental reconstruction (eq. 13)
    d = (σ_t² − σ_{t'}²) / σ_t² · (A_t(x̂0) − y_t)             denoising (score of eq. 11)
    g = −(σ_t² − σ_{t'}²) λ_t ∇_{y_t} ‖y − A_1(Φθ(y_t, t))‖²    optional guidance
    n ~ N(0, v I)                                               noise

Step types: ``euler`` (Euler–Maruyama, eq. 7: v = σ_t² − σ_{t'}²), ``ancestral`` (same mean, exact
marginal variance v = σ_{t'}² (σ_t² − σ_{t'}²) / σ_t²), ``deterministic`` (DDIM-like: d uses
(σ_t − σ_{t'}) / σ_t, v = 0, which keeps an oracle iterate on the SDP marginal with its own noise).
Early stopping outputs ``Φθ(y_{t_stop}, t_stop)`` (``output="x0"``) or the iterate ``y_{t_stop}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..degradations.base import DegradationProcess, check_images
from ..losses import Model
from .guidance import Guidance

STEP_TYPES = ("euler", "ancestral", "deterministic")
OUTPUTS = ("x0", "iterate")


def time_grid(steps: int, t_stop: float = 0.0) -> Tensor:
    """``t_i = 1 − i / steps`` for ``i = 0 … i_stop`` with ``t_{i_stop}`` the grid point nearest ``t_stop``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= t_stop <= 1.0:
        raise ValueError(f"t_stop must lie in [0, 1], got {t_stop}")
    i_stop = round((1.0 - t_stop) * steps)
    return 1.0 - torch.arange(i_stop + 1, dtype=torch.float64) / steps


def data_consistency(process: DegradationProcess, x0: Tensor, y: Tensor) -> Tensor:
    """``‖A_1(x̂0) − y‖ / √n`` per sample (compare with the noise floor σ_y)."""
    return (process.degrade(x0, 1.0) - y).flatten(1).pow(2).mean(1).sqrt()


@dataclass
class SamplerOutput:
    """Result of a reverse run. ``x0_trajectory`` / ``iterates`` map grid index ``i`` (time ``t_grid[i]``)
    to what was recorded there; ``data_consistency[i]`` is ``‖A_1(x̂0(t_i)) − y‖/√n`` per sample for every
    grid point where x̂0 was evaluated."""

    output: Tensor
    t_grid: Tensor
    nfe: int
    data_consistency: Tensor
    x0_trajectory: dict[int, Tensor] = field(default_factory=dict)
    iterates: dict[int, Tensor] = field(default_factory=dict)

    @property
    def t_stop(self) -> float:
        return float(self.t_grid[-1])


def _wanted(record: str | Sequence[int] | None, n_points: int) -> set[int]:
    if record is None:
        return set()
    if record == "all":
        return set(range(n_points))
    if isinstance(record, str):
        raise ValueError(f"record must be None, 'all' or a list of grid indices, got {record!r}")
    return {i % n_points for i in record}


class ReverseSampler:
    """Batched reverse SDE sampler with incremental reconstruction, guidance and early stopping.

    Args:
        process: the SDP whose measurement ``y = y_1`` is reconstructed.
        steps: number of steps ``N`` of the full grid from t = 1 to t = 0.
        step: ``euler``, ``ancestral`` or ``deterministic``.
        guidance: ``None`` or a ``Guidance`` (λ_t rule).
        t_stop: early-stopping time (snapped to the grid); 1 is one-shot reconstruction.
        output: ``x0`` (posterior-mean estimate Φθ(y_{t_stop}, t_stop)) or ``iterate`` (y_{t_stop}).
    """

    def __init__(
        self,
        process: DegradationProcess,
        steps: int = 100,
        step: str = "euler",
        guidance: Guidance | None = None,
        t_stop: float = 0.0,
        output: str = "x0",
    ) -> None:
        if step not in STEP_TYPES:
            raise ValueError(f"unknown step type {step!r}; choose one of {STEP_TYPES}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {OUTPUTS}")
        self.process = process
        self.steps = int(steps)
        self.step = step
        self.guidance = guidance
        self.grid = time_grid(self.steps, t_stop)
        self.output = output

    def _predict(self, model: Model, y_t: Tensor, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """``x̂0`` and, with guidance, ``λ_t ∇_{y_t} ‖y − A_1(Φθ(y_t, t))‖²`` (autograd through the model)."""
        if self.guidance is None:
            return model(y_t, t), None
        with torch.enable_grad():
            y_in = y_t.detach().requires_grad_(True)
            x0 = model(y_in, t)
            residual = (y - self.process.degrade(x0, 1.0)).flatten(1)
            sq = residual.pow(2).sum(1)
            (grad,) = torch.autograd.grad(sq.sum(), y_in)
        lam = self.guidance.weight(sq.detach().sqrt(), self.process.sigma_y)
        return x0.detach(), lam.view(-1, 1, 1, 1) * grad

    def __call__(
        self,
        model: Model,
        y: Tensor,
        generator: torch.Generator | None = None,
        record_x0: str | Sequence[int] | None = None,
        record_iterates: str | Sequence[int] | None = None,
    ) -> SamplerOutput:
        """Reconstruct the batch of measurements ``y``; ``record_*`` = None, ``"all"`` or grid indices."""
        check_images(y, "y")
        if not torch.isfinite(y).all():
            raise ValueError("the measurement contains NaN or Inf values; clean or drop those images first")
        grid = self.grid.to(y.dtype)
        n_points = len(grid)
        want_x0, want_it = _wanted(record_x0, n_points), _wanted(record_iterates, n_points)
        b = y.shape[0]
        proc = self.process
        x0_traj: dict[int, Tensor] = {}
        iterates: dict[int, Tensor] = {}
        dc: list[Tensor] = []
        nfe = 0
        y_t = y
        ctx = torch.no_grad() if self.guidance is None else nullcontext()
        with ctx:
            for i in range(n_points - 1):
                t = grid[i].to(y.device).expand(b)
                tp = grid[i + 1].to(y.device).expand(b)
                if i in want_it:
                    iterates[i] = y_t.detach().clone()
                x0, guide = self._predict(model, y_t, t, y)
                nfe += 1
                dc.append(data_consistency(proc, x0, y))
                if i in want_x0:
                    x0_traj[i] = x0.detach().clone()
                s_t, s_tp = proc.schedule(t), proc.schedule(tp)
                a_t_x0 = proc.apply(x0, s_t)
                sig2, sigp2 = (proc.sigma(t) ** 2).view(-1, 1, 1, 1), (proc.sigma(tp) ** 2).view(-1, 1, 1, 1)
                r = proc.apply(x0, s_tp) - a_t_x0
                if self.step == "deterministic":
                    d = (1.0 - (sigp2 / sig2).sqrt()) * (a_t_x0 - y_t)
                else:
                    d = (sig2 - sigp2) / sig2 * (a_t_x0 - y_t)
                y_next = y_t + r + d
                if guide is not None:
                    y_next = y_next - (sig2 - sigp2) * guide
                if self.step != "deterministic":
                    var = sig2 - sigp2 if self.step == "euler" else sigp2 * (sig2 - sigp2) / sig2
                    z = torch.randn(y_t.shape, generator=generator, device=y.device, dtype=y.dtype)
                    y_next = y_next + var.sqrt() * z
                y_t = y_next.detach()
            last = n_points - 1
            if last in want_it:
                iterates[last] = y_t.clone()
            if self.output == "x0" or last in want_x0:
                with torch.no_grad():
                    x0 = model(y_t, grid[last].to(y.device).expand(b))
                nfe += 1
                dc.append(data_consistency(proc, x0, y))
                if last in want_x0:
                    x0_traj[last] = x0.clone()
            out = x0 if self.output == "x0" else y_t
        return SamplerOutput(
            output=out.detach(),
            t_grid=grid.cpu(),
            nfe=nfe,
            data_consistency=torch.stack(dc).cpu() if dc else torch.empty(0, b),
            x0_trajectory=x0_traj,
            iterates=iterates,
        )
