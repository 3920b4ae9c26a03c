"""Smooth inpainting process: ``A_t x = m_{s(t)} ⊙ x`` with the paper's Gaussian-shaped mask (paper App.)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import MaskProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule


def smooth_masks(width: Tensor, height_px: int, width_px: int, power: float) -> Tensor:
    """Centred smooth masks ``m = (1 - f_w / max f_w) ** p`` of per-sample width ``w`` -> ``(B, 1, H, W)``.

    ``f_w`` is an isotropic Gaussian of std ``w`` pixels centred on the image, so
    ``m(r) = (1 - exp(-r^2 / (2 w^2))) ** p`` at distance ``r`` from the centre. The paper draws ``f_w`` on
    a grid twice the image size and crops the centre, which is the same function on the image grid.
    ``w = 0`` gives ``m ≡ 1``; ``m`` decreases pixelwise as ``w`` grows, so masks are monotone in t.
    The centre is ``((H - 1) / 2, (W - 1) / 2)`` (between pixels for even sizes), keeping the mask symmetric.
    """
    dev, dt = width.device, width.dtype
    yy = torch.arange(height_px, device=dev, dtype=dt) - (height_px - 1) / 2
    xx = torch.arange(width_px, device=dev, dtype=dt) - (width_px - 1) / 2
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2  # (H, W)
    w2 = (width.clamp_min(0.0) ** 2)[:, None, None]
    f = torch.exp(-r2[None] / (2 * w2.clamp_min(1e-12)))
    f = torch.where(w2 > 0, f, torch.zeros_like(f))
    return ((1.0 - f).clamp_min(0.0) ** power)[:, None]


class SmoothInpaintingProcess(MaskProcess):
    """Centred smooth-mask inpainting; severity = mask width ``w`` in pixels.

    The mask is centred on the whole image, so the process is not shift-invariant (never tiled).

    Args:
        width_min: mask width at t = 0 (0 gives ``m_0 ≡ 1``, the identity).
        width_max: mask width at t = 1 (paper, 256 px: 50; scale with the image size).
        power: exponent ``p`` of the mask (paper: 4).
    """

    kind = "inpaint"

    def __init__(
        self,
        width_min: float = 0.0,
        width_max: float = 6.0,
        power: float = 4.0,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if width_min < 0 or width_max < width_min or width_max <= 0:
            raise ValueError(
                f"inpainting needs 0 <= width_min <= width_max, width_max > 0; got {width_min}, {width_max}"
            )
        if power <= 0:
            raise ValueError(f"mask power must be positive, got {power}")
        self.width_min = float(width_min)
        self.width_max = float(width_max)
        self.power = float(power)
        super().__init__(
            noise or GeometricNoiseSchedule(),
            schedule or SeveritySchedule.linear(self.width_min, self.width_max),
        )

    def params(self) -> dict:
        return {"width_min": self.width_min, "width_max": self.width_max, "power": self.power}

    def mask(self, x: Tensor, severity: Tensor) -> Tensor:
        """The mask ``m_s`` as a ``(B, 1, H, W)`` tensor for images shaped like ``x``."""
        return smooth_masks(severity.to(x.dtype), x.shape[2], x.shape[3], self.power)
