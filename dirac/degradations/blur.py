"""Gaussian blur process: ``A_t x = k_{s(t)} * x`` with reflect padding (the paper's deblurring SDP, Sec. 3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import DegradationProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule


def reflect_indices(n: int, radius: int, device: torch.device) -> Tensor:
    """Source index of each sample of a length-``n`` signal reflect-padded by ``radius`` (no edge repeat)."""
    if radius > n - 1:
        raise ValueError(f"reflect padding of {radius} needs a signal longer than {radius}, got {n}")
    i = torch.arange(-radius, n + radius, device=device)
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def gaussian_kernels_1d(std: Tensor, radius: int) -> Tensor:
    """Normalised 1-D Gaussian kernels of per-sample ``std`` (shape ``(B,)``) -> ``(B, 2 radius + 1)``.

    ``std -> 0`` gives the unit impulse (the identity operator).
    """
    offsets = torch.arange(-radius, radius + 1, device=std.device, dtype=std.dtype)
    s = std.clamp_min(1e-4)[:, None]
    k = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def _blur_axis(x: Tensor, kernels: Tensor, axis: int, adjoint: bool) -> Tensor:
    """Reflect-pad then correlate along one spatial axis (2 = H, 3 = W) with per-sample 1-D kernels.

    Forward: ``C P x``; adjoint: ``P^T C^T y`` where ``P`` is the reflect padding (an index gather whose
    adjoint is a scatter-add) and ``C^T`` the transposed valid correlation. Grouped convolutions batch
    the per-sample kernels (one group per image channel) without a Python loop over the batch.
    """
    b, c, h, w = x.shape
    radius = (kernels.shape[1] - 1) // 2
    weight = kernels.repeat_interleave(c, dim=0)  # (B*C, K)
    weight = weight[:, None, :, None] if axis == 2 else weight[:, None, None, :]
    idx = reflect_indices(x.shape[axis], radius, x.device)
    if not adjoint:
        padded = x.index_select(axis, idx)
        out = F.conv2d(padded.reshape(1, b * c, *padded.shape[2:]), weight, groups=b * c)
        return out.reshape(b, c, h, w)
    grown = F.conv_transpose2d(x.reshape(1, b * c, h, w), weight, groups=b * c)
    grown = grown.reshape(b, c, *grown.shape[2:])
    return torch.zeros_like(x).index_add_(axis, idx, grown)


class GaussianBlurProcess(DegradationProcess):
    """Gaussian blur of std ``s(t)`` (severity = blur std in pixels), separable, reflect padding.

    Args:
        std_min: std at t = 0 (paper: 0.3, an imperceptible blur kept for stability; 0 gives the identity).
        std_max: std at t = 1 (the observed blur).
        kernel_size: odd kernel size; ``None`` uses ``2 ceil(4 std_max) + 1``. Capped at call time to
            ``2 min(H, W) - 1`` so reflect padding fits the image (the truncated kernel is renormalised).
    """

    kind = "blur"

    def __init__(
        self,
        std_min: float = 0.3,
        std_max: float = 3.0,
        kernel_size: int | None = None,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if std_min < 0 or std_max <= 0 or std_max < std_min:
            raise ValueError(f"blur needs 0 <= std_min <= std_max and std_max > 0, got {std_min}, {std_max}")
        if kernel_size is None:
            kernel_size = 2 * math.ceil(4 * std_max) + 1
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        self.std_min = float(std_min)
        self.std_max = float(std_max)
        self.kernel_size = int(kernel_size)
        super().__init__(
            noise or GeometricNoiseSchedule(),
            schedule or SeveritySchedule.linear(self.std_min, self.std_max),
        )

    def params(self) -> dict:
        return {"std_min": self.std_min, "std_max": self.std_max, "kernel_size": self.kernel_size}

    def _kernels(self, x: Tensor, severity: Tensor) -> Tensor:
        radius = min(self.kernel_size // 2, x.shape[2] - 1, x.shape[3] - 1)
        return gaussian_kernels_1d(severity.to(x.dtype), radius)

    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        k = self._kernels(x, severity)
        return _blur_axis(_blur_axis(x, k, 2, adjoint=False), k, 3, adjoint=False)

    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        k = self._kernels(y, severity)
        return _blur_axis(_blur_axis(y, k, 3, adjoint=True), k, 2, adjoint=True)
