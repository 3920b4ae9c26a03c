"""Image-quality metrics on batches (B, C, H, W) in [0, 1].

* fidelity (per image): :func:`mse`, :func:`psnr`, :func:`ssim`
* learned perceptual distance (per image): :class:`LPIPS` / :func:`load_lpips` (AlexNet, VGG16)
* distribution distances with Inception features: :class:`FID`, :class:`KID`, :func:`load_fid_inception`,
  :func:`frechet_distance`
* offline distribution distances without weights: :func:`swd`, :func:`patch_frechet_distance`,
  :func:`patch_kid` (multi-scale Laplacian-pyramid patch statistics, :class:`MultiScalePatchDistance`)

Pretrained weights are never downloaded: convert the standard files once with
``python -m dirac.metrics.convert_weights SRC.pth DST.safetensors`` (see that module).
"""

from ._weights import convert_pth_to_safetensors
from .fid import FID, KID, FIDInceptionV3, feature_statistics, frechet_distance, load_fid_inception
from .fidelity import mse, psnr, ssim, ssim_window
from .lpips import LPIPS, LPIPS_WEIGHT_FILES, load_lpips, normalize_channels
from .swd import (
    LevelScores,
    MultiScalePatchDistance,
    laplacian_pyramid,
    patch_frechet_distance,
    patch_kid,
    reconstruct_laplacian_pyramid,
    sliced_wasserstein,
    swd,
)

__all__ = [
    "FID",
    "FIDInceptionV3",
    "KID",
    "LPIPS",
    "LPIPS_WEIGHT_FILES",
    "LevelScores",
    "MultiScalePatchDistance",
    "convert_pth_to_safetensors",
    "feature_statistics",
    "frechet_distance",
    "laplacian_pyramid",
    "load_fid_inception",
    "load_lpips",
    "mse",
    "normalize_channels",
    "patch_frechet_distance",
    "patch_kid",
    "psnr",
    "reconstruct_laplacian_pyramid",
    "sliced_wasserstein",
    "ssim",
    "ssim_window",
    "swd",
]
