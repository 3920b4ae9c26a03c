"""Hard-mask inpainting processes, both diagonal (``A_s x = m_s ⊙ x``, adjoint = itself) with nested masks.

* **Box** (``kind=box``): a centred square of side ``L`` (severity, pixels) is removed. The mask is the pixel's
  uncovered area, ``m(i, j) = 1 − c_h(i) c_w(j)`` with ``c(i) = |[i, i + 1) ∩ [n/2 − L/2, n/2 + L/2]|``: hard
  inside, fractional on the edge pixels, so the removed area ``L²`` (and ``A_s``) is continuous in ``L``; ``L = 0``
  is the identity and ``m_L`` decreases pixelwise as ``L`` grows (nested boxes).
* **Random pixels** (``kind=random_mask``): severity ``p ∈ [0, p_max]`` is the removed fraction. Every image has a
  fixed uniform field ``u ∈ [0, 1)`` (a hash of its integer mask seed and the pixel index, identical on every
  device); pixel kept iff ``u >= p``, so masks are nested in ``p`` and ``p = 0`` is the identity. The mask seed of
  image ``b`` is ``seed + ids[b]``: ``seed`` is a process parameter (recorded in checkpoints), ``ids`` default to 0
  (every image shares the mask of ``seed``; the measurement the sampler inverts then uses the same mask) and are
  set per image with :meth:`RandomMaskProcess.with_ids`. Training draws fresh ids per batch (:meth:`draw`), so the
  network learns masks in general, not one mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import MaskProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule

_MASK32 = 0xFFFFFFFF


def interval_overlap(a0: Tensor, a1: Tensor, b0: Tensor, b1: Tensor) -> Tensor:
    """``|[a0, a1] ∩ [b0, b1]|`` elementwise (broadcast), 0 when disjoint."""
    return (torch.minimum(a1, b1) - torch.maximum(a0, b0)).clamp_min(0.0)


def _mix32(h: Tensor) -> Tensor:
    """A 32-bit integer finaliser (murmur3's ``fmix32``) on int64 tensors holding 32-bit values."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def uniform_fields(seeds: Tensor, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Per-image uniform fields in ``[0, 1)`` from integer seeds ``(B,)`` -> ``(B, 1, H, W)`` (float64).

    ``u = fmix32(fmix32(seed) + pixel index) / 2^32``: vectorised over the batch, reproducible everywhere.
    """
    s = _mix32((seeds.to(device=device, dtype=torch.int64) * 0x9E3779B1) & _MASK32)
    idx = torch.arange(height * width, device=device, dtype=torch.int64)
    h = _mix32((s[:, None] + idx[None, :]) & _MASK32)
    return (h.to(torch.float64) / 2.0**32).view(-1, 1, height, width)


class BoxInpaintingProcess(MaskProcess):
    """A centred square hole of side ``L`` (severity, pixels) growing from ``size_min`` to ``size_max``."""

    kind = "box"

    def __init__(
        self,
        size_max: float = 12.0,
        size_min: float = 0.0,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if not (0.0 <= size_min <= size_max) or size_max <= 0:
            raise ValueError(f"box needs 0 <= size_min <= size_max and size_max > 0; got {size_min}, {size_max}")
        self.size_min, self.size_max = float(size_min), float(size_max)
        super().__init__(
            noise or GeometricNoiseSchedule(), schedule or SeveritySchedule.linear(self.size_min, self.size_max)
        )

    def params(self) -> dict:
        return {"size_max": self.size_max, "size_min": self.size_min}

    @staticmethod
    def _cover(side: Tensor, n: int) -> Tensor:
        """``c(i) = |[i, i + 1) ∩ [n/2 − L/2, n/2 + L/2]|`` -> ``(B, n)``."""
        i = torch.arange(n, device=side.device, dtype=side.dtype)[None]
        half = side.clamp_min(0.0)[:, None] / 2
        return interval_overlap(i, i + 1, n / 2 - half, n / 2 + half)

    def mask(self, x: Tensor, severity: Tensor) -> Tensor:
        """``m = 1 − c_h ⊗ c_w`` as ``(B, 1, H, W)``."""
        side = severity.to(x.dtype)
        return 1.0 - (self._cover(side, x.shape[2])[:, :, None] * self._cover(side, x.shape[3])[:, None, :])[:, None]


class RandomMaskProcess(MaskProcess):
    """Random-pixel inpainting: a fraction ``p`` (severity) of the pixels removed, nested in ``p`` (see module)."""

    kind = "random_mask"

    def __init__(
        self,
        p_max: float = 0.7,
        p_min: float = 0.0,
        seed: int = 0,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if not (0.0 <= p_min <= p_max < 1.0):
            raise ValueError(f"random masks need 0 <= p_min <= p_max < 1 (removed fraction); got {p_min}, {p_max}")
        self.p_min, self.p_max, self.seed = float(p_min), float(p_max), int(seed)
        self.ids: Tensor | None = None
        super().__init__(noise or GeometricNoiseSchedule(), schedule or SeveritySchedule.linear(self.p_min, self.p_max))

    def params(self) -> dict:
        return {"p_max": self.p_max, "p_min": self.p_min, "seed": self.seed}

    def with_ids(self, ids: Tensor | None) -> RandomMaskProcess:
        """The same process with per-image mask ids ``(B,)`` (mask seed ``seed + ids[b]``); ``None``: all 0."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.ids = None if ids is None else torch.as_tensor(ids, dtype=torch.int64).flatten()
        return new

    def draw(self, batch: int, generator: torch.Generator | None = None) -> RandomMaskProcess:
        """A training instance: fresh random mask ids for a batch of ``batch`` images."""
        device = generator.device if generator is not None else "cpu"
        return self.with_ids(torch.randint(0, 2**31 - 1, (batch,), generator=generator, device=device).cpu())

    def mask_seeds(self, batch: int) -> Tensor:
        """The integer mask seed of every image of a batch, ``seed + ids``."""
        if self.ids is None:
            return torch.full((batch,), self.seed, dtype=torch.int64)
        if self.ids.numel() != batch:
            raise ValueError(f"this random-mask process holds {self.ids.numel()} mask ids for a batch of {batch}")
        return self.seed + self.ids

    def mask(self, x: Tensor, severity: Tensor) -> Tensor:
        """``m = [u >= p]`` as ``(B, 1, H, W)``."""
        u = uniform_fields(self.mask_seeds(x.shape[0]), x.shape[2], x.shape[3], x.device)
        return (u >= severity.to(torch.float64).view(-1, 1, 1, 1)).to(x.dtype)
