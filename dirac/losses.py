"""Incremental reconstruction loss (paper eq. 12–14)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .degradations.base import DegradationProcess, TimeLike, check_images
from .models.ncsnpp import SIGMA_DATA

Model = Callable[[Tensor, TimeLike], Tensor]
"""``Φθ(y_t, t) -> x̂0``: any callable taking images ``(B, C, H, W)`` and per-sample times ``(B,)``."""

WEIGHTINGS = ("none", "inv_sigma2", "edm")
NORMS = ("l2", "l1")


class IncrementalReconstructionLoss:
    """``L = E_{t ~ U(0,1], y_t} [ w(t) · mean_pixels (A_τ(Φθ(y_t, t)) − A_τ(x0))² ]``, ``τ = max(t − Δt, 0)``.

    ``norm = "l1"`` replaces the square by ``|·|`` (Zhao et al. 2017, "Loss functions for image restoration
    with neural networks", report L1-trained restorers ending with a *lower* L2 error; on the shipped blur model
    a fine-tune with it lowered val PSNR instead, README "Loss norm"); the weight ``w(t)`` multiplies it unchanged.

    ``Δt = 0`` is eq. 12 (reconstruct the current degradation); ``Δt = 1`` puts the loss on ``A_0``
    (the clean image when ``A_0 = I``); in between is eq. 14's look-ahead. ``w(t)`` is ``1`` or
    ``1 / σ(t)²`` (the reference's choice) or EDM's weighting (unconditional priors). The squared error is
    averaged over pixels (not summed), so the loss scale does not depend on the image size.
    """

    def __init__(
        self,
        process: DegradationProcess,
        delta_t: float = 0.0,
        weighting: str = "inv_sigma2",
        t_min: float = 1e-3,
        t_final_prob: float = 0.0,
        norm: str = "l2",
        teacher: Callable[[Tensor, Tensor, torch.Generator | None], Tensor] | None = None,
        teacher_weight: float = 0.0,
    ) -> None:
        if not 0.0 <= delta_t <= 1.0:
            raise ValueError(f"delta_t must lie in [0, 1], got {delta_t}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {WEIGHTINGS}")
        if not 0.0 <= t_final_prob <= 1.0:
            raise ValueError(f"loss.t_final_prob must lie in [0, 1], got {t_final_prob}")
        if norm not in NORMS:
            raise ValueError(f"unknown loss.norm {norm!r}; choose one of {NORMS}")
        if not 0.0 <= teacher_weight <= 1.0:
            raise ValueError(f"loss.teacher_weight must lie in [0, 1], got {teacher_weight}")
        self.process = process
        self.delta_t = float(delta_t)
        self.weighting = weighting
        self.t_min = float(t_min)
        self.t_final_prob = float(t_final_prob)
        self.norm = norm
        self.teacher = teacher
        self.teacher_weight = float(teacher_weight)

    def sample_times(self, batch: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``t ~ U(t_min, 1]`` per image; with probability ``t_final_prob`` instead ``t = 1`` exactly, the
        observed severity, where the distortion-optimised one-shot ``Φθ(y, 1)`` is read (a mixture that spends
        that share of the batch on the regression the DO output needs, the rest on the whole trajectory)."""
        u = torch.rand(batch, generator=generator, device=like.device, dtype=like.dtype)
        t = 1.0 - u * (1.0 - self.t_min)
        if self.t_final_prob > 0.0:
            final = torch.rand(batch, generator=generator, device=like.device) < self.t_final_prob
            t = torch.where(final, torch.ones_like(t), t)
        return t

    def weight(self, t: Tensor) -> Tensor:
        """``1``, ``1/σ²``, or EDM's ``(σ² + σ_d²) / (σ σ_d)²`` (Karras et al. 2022, Table 1: ``1/c_out²``): the
        last gives every noise level about unit loss, which a prior trained over σ ∈ [0.005, 5] needs."""
        if self.weighting == "none":
            return torch.ones_like(t)
        sigma2 = self.process.sigma(t).pow(2)
        if self.weighting == "inv_sigma2":
            return 1.0 / sigma2
        return (sigma2 + SIGMA_DATA**2) / (sigma2 * SIGMA_DATA**2)

    def per_sample(
        self, model: Model, x0: Tensor, t: Tensor, y_t: Tensor, process: DegradationProcess | None = None
    ) -> Tensor:
        """The weighted loss of each image for given times and noisy inputs (deterministic; ``(B,)``);
        ``process``: the batch's instance of the process (:meth:`DegradationProcess.draw`), default ``self.process``."""
        proc = process if process is not None else self.process
        tau = (t - self.delta_t).clamp_min(0.0)
        pred = model(y_t, t)
        s_tau = proc.schedule(tau)
        err = proc.apply(pred, s_tau) - proc.apply(x0, s_tau)
        pointwise = err.abs() if self.norm == "l1" else err.pow(2)
        return self.weight(t) * pointwise.flatten(1).mean(1)

    def __call__(self, model: Model, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A Monte-Carlo estimate of the loss on the batch ``x0`` (scalar)."""
        check_images(x0, "x0")
        t = self.sample_times(x0.shape[0], x0, generator)
        proc = self.process.draw(x0.shape[0], generator)  # random masks: fresh masks per batch
        y_t = proc.sample(x0, t, generator)
        target = self.target(x0, y_t, t, generator)
        return self.per_sample(model, target, t, y_t, proc).mean()

    def target(self, x0: Tensor, y_t: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``x0``, or with a teacher ``(1 − w) x0 + w T(y_t, t)`` (:mod:`dirac.distillation`; ``w`` =
        ``teacher_weight``): the image the prediction is compared with after ``A_τ``."""
        if self.teacher is None or self.teacher_weight == 0.0:
            return x0
        return torch.lerp(x0, self.teacher(y_t, t, generator).to(x0.dtype), self.teacher_weight)
