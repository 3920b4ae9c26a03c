"""A user's own blur kernel (anisotropic, motion, ...): ``A_s x = k_s * x``, reflect padding, ``s ∈ [0, 1]``.

Severity family (**dilation**): the kernel ``k`` is read as a piecewise-constant density (tap ``p`` fills the unit
cell around ``p``). ``k_s`` is that density magnified by ``s`` about the centre tap and integrated over the unit
cells again: ``k_s[d] = Σ_p k[p] · ov(d, p) / s²`` with ``ov`` the area shared by tap ``d``'s cell and tap ``p``'s
cell scaled by ``s``. So ``k_0 = δ`` (the identity), ``k_1 = k``, every ``k_s`` is non-negative with sum 1,
``k_s`` is continuous in ``s``, and the support and second moment ``Σ_d k_s[d] |d|²`` grow with ``s``: the blur
widens monotonically along the kernel's own shape. (A convex mix ``(1 − w) δ + w k`` is refused: for kernels
with negative frequency response it first cancels, then restores frequencies, so it is not monotone.)

Kernel files (``degradation.kernel=PATH``): ``.npy`` (2-D float array) or a grayscale ``.png``; values must be
non-negative with a positive sum (normalised to 1), odd sizes, at most 65 taps a side; the process also refuses
images smaller than the kernel. ``kernel=example`` is the shipped 9×9 diagonal motion kernel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import DegradationProcess
from .blur import reflect_indices
from .masks import interval_overlap
from .noise import GeometricNoiseSchedule
from .severity import SeveritySchedule

EXAMPLE_KERNEL = Path(__file__).with_name("kernels") / "motion9.npy"
MAX_TAPS = 65


def _kernel_error(source: str, why: str) -> ValueError:
    return ValueError(
        f"degradation.kernel={source}: {why}; give a 2-D .npy or grayscale .png with non-negative values, "
        f"odd sizes up to {MAX_TAPS} (e.g. kernel=example)"
    )


def _read_kernel_file(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            if im.mode not in ("L", "I", "I;16", "F"):
                raise _kernel_error(str(path), f"PNG mode {im.mode} is not grayscale")
            return np.asarray(im, dtype=np.float64)
    raise _kernel_error(str(path), "unsupported file type (use .npy or .png)")


def load_kernel(source: str | Path | list | np.ndarray) -> np.ndarray:
    """A validated kernel (float64, sum 1) from ``example``, a file path, or nested lists (checkpoints)."""
    name = str(source) if isinstance(source, (str, Path)) else "<array>"
    if isinstance(source, (str, Path)):
        path = EXAMPLE_KERNEL if str(source) == "example" else Path(source).expanduser()
        if not path.is_file():
            raise _kernel_error(name, "no such file")
        try:
            k = _read_kernel_file(path)
        except ValueError as e:
            if str(e).startswith("degradation.kernel="):
                raise
            raise _kernel_error(name, f"unreadable ({' '.join(str(e).split())[:120]})") from None
        except OSError as e:
            raise _kernel_error(name, f"unreadable ({type(e).__name__})") from None
    else:
        k = np.asarray(source, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2:
        raise _kernel_error(name, f"expected a 2-D array, got shape {k.shape}")
    if k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0 or max(k.shape) > MAX_TAPS:
        raise _kernel_error(name, f"size {k.shape[0]}x{k.shape[1]} is not odd or exceeds {MAX_TAPS}")
    if not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise _kernel_error(name, "values must be finite, non-negative and not all zero")
    return k / k.sum()


def dilation_weights(scale: Tensor, taps: int) -> Tensor:
    """1-D factor ``ov(d, p) / s`` of the dilation: ``(B, taps_d, taps_p)`` for per-sample ``s ∈ [0, 1]``."""
    r = (taps - 1) // 2
    s = scale.clamp(1e-6, 1.0)[:, None, None]
    d = torch.arange(-r, r + 1, device=scale.device, dtype=scale.dtype)[None, :, None]
    p = torch.arange(-r, r + 1, device=scale.device, dtype=scale.dtype)[None, None, :]
    return interval_overlap(d - 0.5, d + 0.5, s * (p - 0.5), s * (p + 0.5)) / s


class KernelBlurProcess(DegradationProcess):
    """Blur by a user's kernel dilated by ``s`` (severity, ``[scale_min, scale_max] ⊂ [0, 1]``; see the module)."""

    kind = "kernel"

    def __init__(
        self,
        kernel: str | list = "example",
        scale_min: float = 0.0,
        scale_max: float = 1.0,
        source: str | None = None,
        noise: GeometricNoiseSchedule | None = None,
        schedule: SeveritySchedule | None = None,
    ) -> None:
        if not (0.0 <= scale_min <= scale_max <= 1.0):
            raise ValueError(f"kernel blur needs 0 <= scale_min <= scale_max <= 1, got {scale_min}, {scale_max}")
        self.kernel = torch.as_tensor(load_kernel(kernel))
        self.source = source if source is not None else (kernel if isinstance(kernel, str) else "<array>")
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        super().__init__(
            noise or GeometricNoiseSchedule(), schedule or SeveritySchedule.linear(self.scale_min, self.scale_max)
        )

    def params(self) -> dict:
        """The kernel's values are recorded (a checkpoint never depends on the file), and where they came from."""
        return {"kernel": self.kernel.tolist(), "source": str(self.source), "scale_min": self.scale_min,
                "scale_max": self.scale_max}  # fmt: skip

    def kernels(self, severity: Tensor, like: Tensor) -> Tensor:
        """The dilated kernels ``k_s`` -> ``(B, kh, kw)``, each non-negative with sum 1."""
        s = severity.to(like.dtype)
        k = self.kernel.to(device=like.device, dtype=like.dtype)
        wh, ww = dilation_weights(s, k.shape[0]), dilation_weights(s, k.shape[1])
        ks = torch.einsum("bdp,pq,beq->bde", wh, k, ww)
        return ks / ks.sum((1, 2), keepdim=True)

    def _pads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        rh, rw = (self.kernel.shape[0] - 1) // 2, (self.kernel.shape[1] - 1) // 2
        if rh > x.shape[2] - 1 or rw > x.shape[3] - 1:
            raise ValueError(
                f"the {self.kernel.shape[0]}x{self.kernel.shape[1]} kernel ({self.source}) needs images larger than "
                f"its radius; got {x.shape[2]}x{x.shape[3]}"
            )
        return reflect_indices(x.shape[2], rh, x.device), reflect_indices(x.shape[3], rw, x.device)

    def apply(self, x: Tensor, severity: Tensor) -> Tensor:
        """``C P x``: reflect padding ``P`` (a gather), then a valid correlation per image (grouped conv)."""
        b, c, h, w = x.shape
        ih, iw = self._pads(x)
        padded = x.index_select(2, ih).index_select(3, iw)
        weight = self.kernels(severity, x).repeat_interleave(c, dim=0)[:, None]
        out = F.conv2d(padded.reshape(1, b * c, *padded.shape[2:]), weight, groups=b * c)
        return out.reshape(b, c, h, w)

    def apply_adjoint(self, y: Tensor, severity: Tensor) -> Tensor:
        """``P^T C^T y``: transposed correlation, then the scatter-add adjoint of the reflect gather."""
        b, c, h, w = y.shape
        ih, iw = self._pads(y)
        weight = self.kernels(severity, y).repeat_interleave(c, dim=0)[:, None]
        grown = F.conv_transpose2d(y.reshape(1, b * c, h, w), weight, groups=b * c)
        grown = grown.reshape(b, c, *grown.shape[2:])
        rows = torch.zeros(b, c, h, grown.shape[3], dtype=y.dtype, device=y.device).index_add_(2, ih, grown)
        return torch.zeros_like(y).index_add_(3, iw, rows)
