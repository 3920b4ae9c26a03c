"""The stochastic degradation process (SDP) interface (paper Sec. 3: y_t = A_t(x0) + σ(t) z).

A process is a family of linear operators ``A_s`` indexed by a severity ``s``, a severity schedule
``t -> s(t)`` and a noise schedule ``sigma(t)``. Forward sample (paper eq. 4):
``y_t = A_{s(t)}(x0) + sigma(t) z``, ``z ~ N(0, I)``.

``t`` is a Python float, a 0-d tensor or a per-sample tensor of shape ``(B,)``; every operator is
batched over it without a Python loop over the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule

TimeLike = float | Tensor
GeneratorLike = torch.Generator | Sequence[torch.Generator] | None


def check_generators(generators: Sequence[torch.Generator], n: int) -> list[torch.Generator]:
    """A list of generators, one per image, or a clear error."""
    if not isinstance(generators, (list, tuple)):
        raise TypeError(
            f"generator must be a torch.Generator or a list of them (one per image), got {type(generators).__name__}; "
            "e.g. generator=torch.Generator().manual_seed(0)"
        )
    gens = list(generators)
    if len(gens) != n:
        raise ValueError(f"got {len(gens)} generators for {n} images; pass one per image")
    bad = [type(g).__name__ for g in gens if not isinstance(g, torch.Generator)]
    if bad:
        raise TypeError(f"generator list holds {bad[0]}, not torch.Generator; pass one torch.Generator per image")
    return gens


def standard_normal(
    shape: Sequence[int], generator: GeneratorLike, device: torch.device | str, dtype: torch.dtype
) -> Tensor:
    """``z ~ N(0, I)`` of ``shape``; with a list of generators, image ``i`` draws from ``generator[i]``.

    Per-image generators make each image's noise independent of the batch it runs in (diffusers' and NVlabs
    EDM's convention), so results do not change with batch size or position.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
    gens = check_generators(generator, shape[0])
    one = (1, *shape[1:])
    return torch.cat([torch.randn(one, generator=g, device=device, dtype=dtype) for g in gens])


def batch_times(t: TimeLike, batch: int, like: Tensor) -> Tensor:
    """Broadcast ``t`` (float, 0-d or ``(B,)`` tensor) to a ``(B,)`` tensor on ``like``'s device/dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    t = torch.as_tensor(t, dtype=dtype, device=like.device)
    if t.ndim == 0:
        return t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must be a scalar or have shape ({batch},) to match the batch, got {tuple(t.shape)}")
    return t


def check_images(x: Tensor, name: str = "x") -> None:
    """Raise a clear error unless ``x`` is a floating (B, C, H, W) batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}; add a batch dimension with x[None]"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor in [0, 1], got dtype {x.dtype}; use x.float() / 255")


class DegradationProcess(ABC):
    """Base class of SDPs: ``degrade`` (A_t), ``adjoint`` (A_t^T), ``sigma``, ``sample``."""

    kind: ClassVar[str] = "abstract"
    shift_invariant: ClassVar[bool] = True
    """Whether ``A_t`` commutes with shifts away from the borders (convolutions do; a centred mask does not),
    i.e. whether a large image may be reconstructed as overlapping tiles."""

    def __init__(self, noise: GeometricNoiseSchedule, schedule: SeveritySchedule) -> None:
        self.noise = noise
        self.schedule = schedule

    # --- operator family indexed by severity (implemented by subclasses) ---
    @abstractmethod
    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        """``A_s x`` for a per-sample severity tensor of shape ``(B,)``."""

    @abstractmethod
    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        """``A_s^T y`` for a per-sample severity tensor of shape ``(B,)``."""

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``A_t x`` for an input of ``shape`` (same shape unless the operator resamples)."""
        return tuple(shape)

    def params(self) -> dict:
        """Family parameters (everything but schedules) for checkpoints."""
        return {}

    # --- the SDP in terms of t ---
    def severity(self, t: TimeLike, batch: int = 1, like: Tensor | None = None) -> Tensor:
        """``s(t)`` as a ``(B,)`` tensor."""
        like = like if like is not None else torch.zeros(())
        return self.schedule(batch_times(t, batch, like))

    def sigma(self, t: TimeLike) -> Tensor:
        """Noise level ``sigma(t)`` (tensor of the shape of ``t``)."""
        return self.noise(torch.as_tensor(t, dtype=torch.float32) if not isinstance(t, Tensor) else t)

    @property
    def sigma_y(self) -> float:
        return self.noise.sigma_y

    def degrade(self, x: Tensor, t: TimeLike) -> Tensor:
        """``A_t x`` (noiseless)."""
        check_images(x)
        return self.apply(x, self.schedule(batch_times(t, x.shape[0], x)))

    def adjoint(self, y: Tensor, t: TimeLike) -> Tensor:
        """``A_t^T y``."""
        check_images(y, "y")
        return self.apply_adjoint(y, self.schedule(batch_times(t, y.shape[0], y)))

    def sample(self, x0: Tensor, t: TimeLike, generator: GeneratorLike = None) -> Tensor:
        """Forward sample ``y_t = A_t x0 + sigma(t) z`` (eq. 4); ``generator``: one, or a list with one per image."""
        check_images(x0, "x0")
        tb = batch_times(t, x0.shape[0], x0)
        clean = self.apply(x0, self.schedule(tb))
        z = standard_normal(clean.shape, generator, x0.device, x0.dtype)
        return clean + self.noise(tb).view(-1, 1, 1, 1) * z

    def measure(self, x0: Tensor, generator: GeneratorLike = None) -> Tensor:
        """A measurement ``y = A_1 x0 + sigma_y z`` (the SDP at t = 1)."""
        return self.sample(x0, 1.0, generator)

    def draw(self, batch: int, generator: torch.Generator | None = None) -> DegradationProcess:
        """The process a training batch of ``batch`` images uses: ``self``, except for processes with random
        per-image parameters (random masks draw fresh mask ids)."""
        return self

    def with_schedule(self, schedule: SeveritySchedule) -> DegradationProcess:
        """The same process with another severity schedule."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.schedule = schedule
        return new

    def to_dict(self) -> dict:
        """Plain-JSON description (kind, family parameters, noise, schedule) stored with checkpoints."""
        return {
            "kind": self.kind,
            "params": self.params(),
            "noise": self.noise.to_dict(),
            "schedule": self.schedule.to_dict(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(params={self.params()}, noise={self.noise}, schedule={self.schedule})"


class MaskProcess(DegradationProcess):
    """A diagonal process ``A_s x = m_s ⊙ x`` (its own adjoint); subclasses give the mask ``m_s``."""

    shift_invariant = False

    @abstractmethod
    def mask(self, x: Tensor, severity: Tensor) -> Tensor:
        """``m_s`` as a ``(B, 1 or C, H, W)`` tensor for images shaped like ``x``."""

    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        return self.mask(x, severity) * x

    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        return self.mask(y, severity) * y
