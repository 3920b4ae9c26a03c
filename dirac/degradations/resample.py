"""Super-resolution at a continuous scale, image size kept: ``A_s X = K_s,h X K_s,w`` per channel (separable).

Per axis of ``n`` pixels, with ``C`` the orthonormal DCT-II matrix (rows = cosines of frequency ``f = 0 … n − 1``):

    ``K_s = C^T diag(h_s) C``,  ``h_s(f) = clamp(n / s − f, 0, 1)``.

``K_s`` keeps the ``n / s`` lowest frequencies (the last one fractionally): it is DCT-domain downsampling to
``n / s`` samples (an ideal, antialiased low-pass with a symmetric boundary) followed by upsampling back to ``n``
by zero-padding the spectrum. A low-resolution image ``lr`` of ``n / s`` pixels a side becomes a measurement with
:func:`dct_upsample` (exact when ``s`` divides ``n``). Properties (tested):

* ``K_s`` is symmetric (exact adjoint = itself) with singular values ``h_s ∈ [0, 1]``; ``K_1 = I``; ``K_s 1 = 1``;
* **monotone for every image**: ``h_s(f)`` is non-increasing in ``s`` for every frequency, so the lost energy
  ``‖x‖² − ‖A_s x‖²`` and the error ``‖x − A_s x‖²`` never decrease as ``s`` grows, and
  ``A_s = G A_{s'}`` for ``s' < s`` with ``G = C^T diag(h_s / h_{s'}) C`` per axis (``h_{s'} = 0`` only where
  ``h_s = 0``: the kept spectra are nested);
* continuous in ``s``; per-sample scales build one ``(n, n)`` matrix per image, applied with ``einsum``.

The lowest-frequency cut leaves Gibbs ringing near edges in ``A_s x`` (an area or bicubic model would not, but
their information is not nested in ``s``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import DegradationProcess
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule


def dct_matrix(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> Tensor:
    """Orthonormal DCT-II matrix ``C`` (``(n, n)``, ``C C^T = I``): ``C[f, i] = a_f cos(π (i + ½) f / n)``."""
    f = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(math.pi * (i + 0.5) * f / n) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(device=device, dtype=dtype)


def lowpass_gains(scale: Tensor, n: int) -> Tensor:
    """``h_s(f) = clamp(n / s − f, 0, 1)`` for per-sample scales ``s >= 1`` -> ``(B, n)``."""
    f = torch.arange(n, device=scale.device, dtype=scale.dtype)[None]
    return (n / scale.clamp_min(1.0)[:, None] - f).clamp(0.0, 1.0)


def resize_matrices(scale: Tensor, n: int) -> Tensor:
    """``K_s = C^T diag(h_s) C`` -> ``(B, n, n)``."""
    c = dct_matrix(n, scale.device, scale.dtype)
    return torch.einsum("fi,bf,fj->bij", c, lowpass_gains(scale, n), c)


def dct_upsample(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """A low-resolution batch ``(B, C, h, w)`` as a measurement of ``size = (H, W)``: zero-padded DCT spectrum.

    ``C_H[:h]^T C_h`` per axis, scaled by ``√(H/h · W/w)`` so constants stay constant.
    """
    (h, w), (hh, ww) = lr.shape[2:], size
    if hh < h or ww < w:
        raise ValueError(f"dct_upsample makes images larger: {h}x{w} -> {hh}x{ww} is not an upsampling")
    uh = dct_matrix(hh, lr.device, lr.dtype)[:h].T @ dct_matrix(h, lr.device, lr.dtype)
    uw = dct_matrix(ww, lr.device, lr.dtype)[:w].T @ dct_matrix(w, lr.device, lr.dtype)
    return torch.einsum("Hh,bchw,Ww->bcHW", uh, lr, uw) * math.sqrt(hh / h * ww / w)


class SuperResolutionProcess(DegradationProcess):
    """Super-resolution ×``scale_max`` at fixed image size; severity = the continuous scale ``s`` in
    ``[scale_min, scale_max]`` (``s = 1``: the identity). ``A_s X = K_s,h X K_s,w`` per channel (see the module)."""

    kind = "sr"
    shift_invariant = False  # a global (DCT) operator: never tiled

    def __init__(
        self,
        scale_max: float = 2.0,
        scale_min: float = 1.0,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if not (1.0 <= scale_min <= scale_max):
            raise ValueError(f"super-resolution needs 1 <= scale_min <= scale_max, got {scale_min}, {scale_max}")
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        super().__init__(
            noise or GeometricNoiseSchedule(), schedule or SeveritySchedule.linear(self.scale_min, self.scale_max)
        )

    def params(self) -> dict:
        return {"scale_max": self.scale_max, "scale_min": self.scale_min}

    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        s = severity.to(x.dtype)
        kh, kw = resize_matrices(s, x.shape[2]), resize_matrices(s, x.shape[3])
        return torch.einsum("bhi,bciw,bvw->bchv", kh, x, kw)

    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        return self.apply(y, severity)  # K_s is symmetric
