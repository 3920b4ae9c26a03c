"""One reconstruction interface for every method (the Dirac sampler and every baseline).

A :class:`Restorer` is built around one degradation process and maps a batch of measurements ``y`` of that
process to a batch of images: ``restorer(y, generator) -> Reconstruction``. Sweeps, comparisons and the
uncertainty tools take any restorer, so a new method plugs in by implementing ``__call__`` (and ``nfe``).
Generators follow diffusers' convention: one ``torch.Generator`` for the batch, or a list with one per image
(then each image's result does not depend on the batch it runs in).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .degradations import DegradationProcess
from .degradations.base import GeneratorLike

__all__ = ["GeneratorLike", "Reconstruction", "Restorer", "RestorerWrapper"]


@dataclass
class Reconstruction:
    """``x``: reconstructions ``(B, C, H, W)``; ``nfe``: network evaluations per image (0 for classical
    methods); ``extras``: method-specific records (trajectories, data consistency, chosen hyper-parameters)."""

    x: Tensor
    nfe: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


class Restorer(ABC):
    """``Reconstruction = restorer(y, generator)`` for measurements ``y`` of ``self.process``."""

    name: str = "restorer"
    process: DegradationProcess

    @abstractmethod
    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        """Reconstruct the batch ``y`` (measurements of ``self.process`` at t = 1)."""

    @property
    def stochastic(self) -> bool:
        """Whether two calls with different generators can give different images (posterior samplers)."""
        return False


class RestorerWrapper(Restorer):
    """A restorer built on another one, ``base`` (a self-ensemble, a perception knob): same process, stochastic
    when the base is, named ``BASE+suffix``; the base's settings (t_stop, λ) describe it too."""

    def __init__(self, base: Restorer, suffix: str) -> None:
        self.base, self.process, self.name = base, base.process, f"{base.name}+{suffix}"

    @property
    def stochastic(self) -> bool:
        return self.base.stochastic
