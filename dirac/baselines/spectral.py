"""Exact singular value decompositions ``A = U diag(s) V^T`` of a process's measurement operator ``A_1``.

The spectral peers (Wiener, DDRM, DiffPIR) work in the basis where ``A`` is diagonal. Two structures are found by
probing the process itself, so the decomposition follows the operator exactly, boundary handling included:

* **diagonal** (masks, smooth masks with values in [0, 1], the identity): ``A x = m ⊙ x``, so ``U = V = I``,
  ``s = m`` (checked on a random image);
* **separable** (the Gaussian blur with reflect boundary): per channel ``A X = K_h X K_w^T``. The columns of the
  1-D matrices are read off by applying ``A`` to images constant along the other axis (a normalised blur maps
  constants to constants), checked on a random image, then ``K_h = U_h S_h V_h^T`` and ``K_w = U_w S_w V_w^T``
  give ``s_ij = s_h,i · s_w,j`` (Kronecker structure, Kawar et al. 2022, App. A).

Anything else is refused with a message (DPS and the classical methods need no SVD).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..degradations import DegradationProcess

__all__ = ["SpectralOperator", "spectral_operator"]


@dataclass
class SpectralOperator:
    """``A = U diag(s) V^T`` for images of one size. ``s``: ``(C or 1, H, W)`` singular values laid out as an
    image; ``u``/``v``: ``(U_h, U_w)`` / ``(V_h, V_w)`` 1-D factors, or ``None`` for the pixel basis."""

    s: Tensor
    u: tuple[Tensor, Tensor] | None = None
    v: tuple[Tensor, Tensor] | None = None

    @staticmethod
    def _to(basis: tuple[Tensor, Tensor] | None, x: Tensor) -> Tensor:
        """``B^T X`` in the basis ``B = B_h ⊗ B_w``: ``B_h^T X B_w`` per channel."""
        return x if basis is None else torch.einsum("hi,bchw,wj->bcij", basis[0], x, basis[1])

    @staticmethod
    def _from(basis: tuple[Tensor, Tensor] | None, z: Tensor) -> Tensor:
        """``B Z``: ``B_h Z B_w^T`` per channel."""
        return z if basis is None else torch.einsum("ih,bchw,jw->bcij", basis[0], z, basis[1])

    def vt(self, x: Tensor) -> Tensor:
        return self._to(self.v, x)

    def v_(self, z: Tensor) -> Tensor:
        return self._from(self.v, z)

    def ut(self, y: Tensor) -> Tensor:
        return self._to(self.u, y)

    def u_(self, z: Tensor) -> Tensor:
        return self._from(self.u, z)

    def forward(self, x: Tensor) -> Tensor:
        """``A x = U (s ⊙ V^T x)``."""
        return self.u_(self.s * self.vt(x))

    def adjoint(self, y: Tensor) -> Tensor:
        """``A^T y = V (s ⊙ U^T y)``."""
        return self.v_(self.s * self.ut(y))


def _apply(process: DegradationProcess, x: Tensor) -> Tensor:
    return process.apply(x, process.severity(1.0, x.shape[0], like=x))


def _close(a: Tensor, b: Tensor) -> bool:
    return bool((a - b).abs().max() <= 1e-5 * max(1.0, float(b.abs().max())))


def _axis_matrix(process: DegradationProcess, shape: tuple[int, int, int], axis: int, like: Tensor) -> Tensor:
    """The 1-D matrix along ``axis`` (2 = H, 3 = W): column ``i`` is ``A`` of the image that is 1 on line ``i``."""
    c, h, w = shape
    n = (h, w)[axis - 2]
    probes = torch.zeros(n, c, h, w, dtype=like.dtype, device=like.device)
    idx = torch.arange(n, device=like.device)
    if axis == 2:
        probes[idx, :, idx, :] = 1.0
        return _apply(process, probes)[:, 0, :, 0].T  # (H, H): column i = response to row i
    probes[idx, :, :, idx] = 1.0
    return _apply(process, probes)[:, 0, 0, :].T


def _svd(k: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    u, s, vh = torch.linalg.svd(k.double())
    return u.to(k.dtype), s.to(k.dtype), vh.T.to(k.dtype)


def spectral_operator(
    process: DegradationProcess, shape: tuple[int, int, int], device: torch.device | str = "cpu"
) -> SpectralOperator:
    """The exact SVD of ``process``'s ``A_1`` for ``(C, H, W)`` images, or a ``ValueError`` saying why not."""
    c, h, w = shape
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, c, h, w, generator=g, dtype=torch.float64).to(device)
    like = x
    if tuple(process.output_shape((1, c, h, w))) != (1, c, h, w):
        raise ValueError(f"the {process.kind} operator changes the image size; the spectral peers need a square A")
    diag = _apply(process, torch.ones_like(x))
    if _close(_apply(process, x), diag * x):
        return SpectralOperator(s=diag[0].float())
    kh, kw = _axis_matrix(process, shape, 2, like), _axis_matrix(process, shape, 3, like)
    if not _close(_apply(process, x), torch.einsum("ih,bchw,jw->bcij", kh, x, kw)):
        raise ValueError(
            f"the {process.kind} operator is neither diagonal nor separable, so DDRM, DiffPIR and Wiener have no exact "
            f"SVD for it here; compare it with DPS and the classical methods instead"
        )
    (uh, sh, vh), (uw, sw, vw) = _svd(kh.float()), _svd(kw.float())
    s = torch.outer(sh, sw)[None]
    return SpectralOperator(s=s, u=(uh, uw), v=(vh, vw))
