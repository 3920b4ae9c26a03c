"""Per-image fidelity metrics: MSE, PSNR and SSIM (data range 1).

All functions take two image batches ``x`` (estimate) and ``ref`` (ground truth) of identical shape
``(B, C, H, W)`` with values in [0, 1], and return one value per image, shape ``(B,)``.  Both inputs are
clamped to [0, 1] first, as the DiracDiffusion evaluation does for network outputs.  PSNR and SSIM are thin
wrappers over ``torchmetrics.functional``; MSE is a one-liner because torchmetrics has no per-image MSE.

SSIM details (torchmetrics 1.9 semantics): Gaussian window of size 11 and std 1.5, constants
``K1 = 0.01, K2 = 0.03``, reflect padding of the borders and the mean of the SSIM map over all pixels and
channels (no border crop, unlike scikit-image).  **Small images**: when ``min(H, W) < 11`` the window is
shrunk to the largest odd size ``k <= min(H, W)`` (``k >= 3``), and the Gaussian std is scaled with it,
``sigma = 1.5 * k / 11``, so the window keeps the shape of the standard one (torchmetrics derives the
window size from sigma as ``2 * int(3.5 * sigma + 0.5) + 1``, which gives back exactly ``k``).  Values on
such tiny images are therefore not comparable with 11-px-window SSIM on larger images.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ._checks import check_pair, to_unit_range

__all__ = ["mse", "psnr", "ssim", "ssim_window"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def mse(x: Tensor, ref: Tensor) -> Tensor:
    """Per-image mean squared error ``mean_{c,h,w} (x - ref)^2`` after clamping to [0, 1]. Shape (B,)."""
    check_pair(x, ref)
    x, ref = to_unit_range(x), to_unit_range(ref)
    return (x - ref).square().flatten(1).mean(dim=1)


def psnr(x: Tensor, ref: Tensor) -> Tensor:
    """Per-image PSNR in dB with data range 1: ``10 log10(1 / mse(x, ref))``. Shape (B,).

    Identical images give ``+inf``.
    """
    check_pair(x, ref)
    x, ref = to_unit_range(x), to_unit_range(ref)
    return peak_signal_noise_ratio(x, ref, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim_window(height: int, width: int) -> tuple[int, float]:
    """Window size and Gaussian std used by :func:`ssim` for an ``height x width`` image.

    ``(11, 1.5)`` when both sides are at least 11 px, otherwise the largest odd ``k <= min(H, W)`` with
    ``sigma = 1.5 * k / 11``.  Raises ``ValueError`` below 3 px.
    """
    k = min(SSIM_WINDOW, height, width)
    if k % 2 == 0:
        k -= 1
    if k < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return k, SSIM_SIGMA * k / SSIM_WINDOW


def ssim(x: Tensor, ref: Tensor) -> Tensor:
    r"""Per-image SSIM (Gaussian window 11, std 1.5, data range 1). Shape (B,).

    ``SSIM = mean over pixels and channels of
    (2 mu_x mu_r + C1)(2 s_xr + C2) / ((mu_x^2 + mu_r^2 + C1)(s_x^2 + s_r^2 + C2))`` with local Gaussian-
    weighted moments, ``C1 = 0.01^2`` and ``C2 = 0.03^2``.  Images smaller than 11 px use a shrunk window,
    see :func:`ssim_window` and the module docstring.
    """
    check_pair(x, ref)
    x, ref = to_unit_range(x), to_unit_range(ref)
    k, sigma = ssim_window(x.shape[-2], x.shape[-1])
    out = structural_similarity_index_measure(
        x, ref, gaussian_kernel=True, sigma=sigma, kernel_size=k, data_range=1.0, reduction="none"
    )
    assert isinstance(out, Tensor)
    return out.reshape(x.shape[0])
