"""Stochastic degradation processes: operators ``A_t``, adjoints, noise and severity schedules."""

from __future__ import annotations

from .base import DegradationProcess, batch_times, check_images
from .blur import GaussianBlurProcess
from .identity import IdentityProcess
from .inpaint import SmoothInpaintingProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule

PROCESSES: dict[str, type[DegradationProcess]] = {
    cls.kind: cls for cls in (GaussianBlurProcess, SmoothInpaintingProcess, IdentityProcess)
}


def build_process(kind: str, noise: dict | None = None, schedule: dict | None = None, **params) -> DegradationProcess:
    """Build a process by kind (``blur``, ``inpaint``, ``identity``) from plain parameters."""
    if kind not in PROCESSES:
        raise ValueError(f"unknown degradation kind {kind!r}; known kinds: {sorted(PROCESSES)}")
    return PROCESSES[kind](
        **params,
        noise=GeometricNoiseSchedule.from_dict(noise) if noise else None,
        schedule=SeveritySchedule.from_dict(schedule) if schedule else None,
    )


def process_from_dict(d: dict) -> DegradationProcess:
    """Inverse of ``DegradationProcess.to_dict`` (checkpoint loading)."""
    return build_process(d["kind"], noise=d.get("noise"), schedule=d.get("schedule"), **d.get("params", {}))


__all__ = [
    "DegradationProcess",
    "GaussianBlurProcess",
    "GeometricNoiseSchedule",
    "IdentityProcess",
    "PROCESSES",
    "SeveritySchedule",
    "SmoothInpaintingProcess",
    "batch_times",
    "build_process",
    "check_images",
    "process_from_dict",
]
