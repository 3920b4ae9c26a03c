"""Self-ensemble distillation: a frozen teacher's symmetric average as a training target (issue 15's lever).

The geometric self-ensemble ``x̄(y) = (1/|G|) Σ_g g⁻¹ T(g y)`` (:mod:`dirac.symmetry`) is a better estimate of
the posterior mean than the teacher ``T`` alone, at ``|G|`` calls. Distilling it trains one network towards it:

    target = (1 − w) · x0 + w · g⁻¹ T(g y_t, t),   g ~ U(G) drawn per image,

a single random member per image (one teacher call per step instead of ``|G|``): the squared error's minimiser
over that random target is ``(1 − w) E[x0 | y_t] + w x̄(y_t)`` all the same, only noisier. Born-again networks
(Furlanello et al. 2018) distil a network into a copy of itself; the teacher here is additionally averaged over
the symmetries the prior is invariant under, which a single forward pass cannot do on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .degradations import DegradationProcess
from .symmetry import check_symmetry, group_members, inverse_transform, transform


class SelfEnsembleTeacher:
    """``(y_t, t) ↦ g⁻¹ T(g y_t, t)`` with one member ``g`` of ``group`` drawn per image; ``T`` frozen, no grad.

    Refused when ``A_1`` does not commute with every member (then ``g y_t`` is no measurement of ``g x0``)."""

    def __init__(self, teacher: torch.nn.Module, process: DegradationProcess, group: str = "dihedral") -> None:
        self.members = group_members(group)
        try:
            check_symmetry(process, process.degrade(torch.zeros(1, 1, 16, 16), 1.0), group)
        except ValueError as e:
            raise ValueError(f"loss.teacher_group={group}: {e}") from None
        self.teacher = teacher.eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> SelfEnsembleTeacher:
        self.teacher.to(device)
        return self

    @torch.no_grad()
    def __call__(self, y_t: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if y_t.shape[-1] != y_t.shape[-2] and any(k % 2 for k in self.members):
            raise ValueError(f"quarter turns need square training crops, got {tuple(y_t.shape[-2:])}; use group flip")
        pick = torch.randint(len(self.members), (y_t.shape[0],), generator=generator, device=y_t.device)
        out: Tensor | None = None
        for i, k in enumerate(self.members):
            rows = (pick == i).nonzero().flatten()
            if rows.numel():
                pred = inverse_transform(self.teacher(transform(y_t[rows], k), t[rows]), k)
                if out is None:
                    out = pred.new_empty((y_t.shape[0], *pred.shape[1:]))
                out[rows] = pred
        assert out is not None  # every image drew a member
        return out
