"""Stochastic degradation processes: operators ``A_t``, adjoints, noise and severity schedules."""

from __future__ import annotations

import inspect

from .base import DegradationProcess, batch_times, check_images
from .blur import GaussianBlurProcess
from .identity import IdentityProcess
from .inpaint import SmoothInpaintingProcess
from .kernel import KernelBlurProcess, load_kernel
from .masks import BoxInpaintingProcess, RandomMaskProcess
from .noise import GeometricNoiseSchedule, check_measurement_noise, top_up_noise
from .resample import SuperResolutionProcess
from .severity import SeveritySchedule

PROCESSES: dict[str, type[DegradationProcess]] = {
    cls.kind: cls
    for cls in (
        GaussianBlurProcess,
        SmoothInpaintingProcess,
        IdentityProcess,
        SuperResolutionProcess,
        BoxInpaintingProcess,
        RandomMaskProcess,
        KernelBlurProcess,
    )
}


def build_process(kind: str, noise: dict | None = None, schedule: dict | None = None, **params) -> DegradationProcess:
    """Build a process by kind (a key of :data:`PROCESSES`) from plain parameters."""
    if kind not in PROCESSES:
        raise ValueError(f"unknown degradation kind {kind!r}; known kinds: {sorted(PROCESSES)}")
    accepted = set(inspect.signature(PROCESSES[kind]).parameters) - {"noise", "schedule"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(f"degradation {kind!r} has no parameter(s) {unknown}; its parameters are {sorted(accepted)}")
    return PROCESSES[kind](
        **params,
        noise=GeometricNoiseSchedule.from_dict(noise) if noise else None,
        schedule=SeveritySchedule.from_dict(schedule) if schedule else None,
    )


def process_from_dict(d: dict) -> DegradationProcess:
    """Inverse of ``DegradationProcess.to_dict`` (checkpoint loading)."""
    return build_process(d["kind"], noise=d.get("noise"), schedule=d.get("schedule"), **d.get("params", {}))


__all__ = [
    "BoxInpaintingProcess",
    "DegradationProcess",
    "GaussianBlurProcess",
    "GeometricNoiseSchedule",
    "IdentityProcess",
    "KernelBlurProcess",
    "PROCESSES",
    "RandomMaskProcess",
    "SeveritySchedule",
    "SmoothInpaintingProcess",
    "SuperResolutionProcess",
    "batch_times",
    "build_process",
    "check_images",
    "check_measurement_noise",
    "load_kernel",
    "process_from_dict",
    "top_up_noise",
]
