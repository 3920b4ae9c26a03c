"""Severity schedules: the map t -> s(t) from diffusion time to an operator's severity parameter."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class SeveritySchedule:
    """Monotone piecewise-linear map ``t -> s(t)`` through knots ``(t_k, s_k)``, ``t_0 = 0``, ``t_K = 1``.

    The linear schedule ``s(t) = s_min + t (s_max - s_min)`` is the two-knot case; the greedy scheduler
    (``dirac.scheduling``, paper Alg. 2) returns ``t_k = k / K`` with data-dependent ``s_k``.
    Serialises to plain JSON (``to_dict``/``from_dict``) so a checkpoint carries its schedule.
    """

    def __init__(self, t_knots: Sequence[float], severities: Sequence[float], kind: str = "piecewise") -> None:
        t_knots = [float(v) for v in t_knots]
        severities = [float(v) for v in severities]
        if len(t_knots) != len(severities) or len(t_knots) < 2:
            raise ValueError("a severity schedule needs at least two knots and one severity per knot")
        if abs(t_knots[0]) > 1e-9 or abs(t_knots[-1] - 1.0) > 1e-9:
            raise ValueError(f"schedule knots must span [0, 1], got {t_knots[0]} .. {t_knots[-1]}")
        if any(b <= a for a, b in zip(t_knots, t_knots[1:], strict=False)):
            raise ValueError("schedule knots t_k must be strictly increasing")
        if any(b < a for a, b in zip(severities, severities[1:], strict=False)):
            raise ValueError("severities must be non-decreasing in t (A_t grows more severe with t)")
        self.t_knots = t_knots
        self.severities = severities
        self.kind = kind

    @classmethod
    def linear(cls, s_min: float, s_max: float) -> SeveritySchedule:
        """``s(t) = s_min + t (s_max - s_min)``."""
        return cls([0.0, 1.0], [s_min, s_max], kind="linear")

    @property
    def s_min(self) -> float:
        return self.severities[0]

    @property
    def s_max(self) -> float:
        return self.severities[-1]

    def __call__(self, t: Tensor) -> Tensor:
        """Linear interpolation between knots, vectorised over any shape of ``t`` (clamped to [0, 1])."""
        tk = torch.tensor(self.t_knots, dtype=t.dtype, device=t.device)
        sk = torch.tensor(self.severities, dtype=t.dtype, device=t.device)
        t = t.clamp(0.0, 1.0)
        idx = torch.searchsorted(tk, t.contiguous(), right=True).clamp(1, len(self.t_knots) - 1)
        t0, t1 = tk[idx - 1], tk[idx]
        s0, s1 = sk[idx - 1], sk[idx]
        w = (t - t0) / (t1 - t0)
        return s0 + w * (s1 - s0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "t": list(self.t_knots), "severity": list(self.severities)}

    @classmethod
    def from_dict(cls, d: dict) -> SeveritySchedule:
        return cls(d["t"], d["severity"], kind=d.get("kind", "piecewise"))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SeveritySchedule)
            and self.t_knots == other.t_knots
            and self.severities == other.severities
        )

    def __repr__(self) -> str:
        return f"SeveritySchedule(kind={self.kind!r}, knots={len(self.t_knots)}, s=[{self.s_min}, {self.s_max}])"
