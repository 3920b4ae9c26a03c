"""A Gaussian prior fitted on training images and its linear MMSE estimate under a mask process.

``x ~ N(μ, Σ)`` with ``μ`` the training images' mean and ``Σ = (1 − ρ) C + ρ T`` the sample covariance ``C``
shrunk toward a smoothness covariance ``T ∝ (LᵀL + εI)⁻¹`` (``L`` the Neumann Laplacian of the Tikhonov
baseline; Ledoit & Wolf 2004 style shrinkage, needed because ``C`` has rank < number of pixels). For
``y = m ⊙ x + n``, ``n ~ N(0, σ²I)``, the posterior mean is the linear MMSE (Wiener) estimate

    ``x̂ = μ + Σ M (M Σ M + σ² I)⁻¹ (y − m ⊙ μ)``,  ``M = diag(m)``

(Kay 1993, eq. 12.20). ``model.input=gaussian`` hands this estimate of ``x0`` from ``y_t`` to the network
(``σ = σ(t)``, ``m = m_{s(t)}``), a learned linear first stage where ``model.input=tikhonov`` has a
hand-made one. The covariance is dense (``n × n`` for ``n = C·H·W`` values), so this is for small aligned
images (faces): at most :data:`MAX_VALUES` values, fixed size. Pure tensor functions; no I/O.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..baselines.linalg import neg_laplacian
from ..data._util import epoch_items
from ..degradations.base import DegradationProcess, MaskProcess

__all__ = [
    "MAX_VALUES",
    "check_gaussian_settings",
    "fit_gaussian_prior",
    "gaussian_fit_images",
    "gaussian_input",
    "gaussian_mmse",
    "require_mask_process",
    "smoothness_covariance",
]

FIT_EPOCHS = 4  # training items are augmented per epoch (random flips): four passes see most faces both ways
FIT_IMAGES = 2048  # items per pass at most
MAX_VALUES = 4096  # a 4096² float32 covariance is 64 MiB; each distinct t in a batch costs a Cholesky, ~n³/3 flops


def check_gaussian_settings(shrinkage: float, smoothness: float) -> None:
    """Refuse, in one line naming the config key, a shrinkage ρ outside [0, 1] or a smoothness ε that is not > 0."""
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"model.gaussian_shrinkage must be in [0, 1], got {shrinkage}")
    if not smoothness > 0:
        raise ValueError(f"model.gaussian_smoothness must be positive, got {smoothness}")


def smoothness_covariance(channels: int, size: int, eps: float) -> Tensor:
    """``T = (LᵀL + εI)⁻¹`` per channel (channels independent), ``L = −Δ`` with Neumann boundary: the
    covariance whose MAP estimate is Tikhonov with the Laplacian regulariser. Shape ``(n, n)``, float64."""
    if not eps > 0:
        raise ValueError(f"model.gaussian_smoothness must be positive, got {eps}")
    p = size * size
    basis = torch.eye(p, dtype=torch.float64).reshape(p, 1, size, size)
    gram = neg_laplacian(neg_laplacian(basis)).reshape(p, p)
    block = torch.linalg.inv(gram + eps * torch.eye(p, dtype=torch.float64))
    return torch.block_diag(*([block] * channels))


def gaussian_fit_images(train_set: object) -> Tensor:
    """The images a Gaussian prior is fitted on: the training set's items of epochs 0..3 (the same for the
    ``model.input=gaussian`` network and the ``gaussian`` peer)."""
    return epoch_items(train_set, FIT_EPOCHS, FIT_IMAGES)


def fit_gaussian_prior(images: Tensor, shrinkage: float, smoothness: float) -> tuple[Tensor, Tensor]:
    """``(μ (C, H, W), Σ (n, n))`` from ``(N, C, S, S)`` images: ``Σ = (1 − ρ) C + ρ T`` with ``T`` (see
    :func:`smoothness_covariance`) scaled to ``C``'s mean variance; float32 results, computed in float64."""
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"a Gaussian prior needs square (N, C, S, S) images, got shape {tuple(images.shape)}")
    check_gaussian_settings(shrinkage, smoothness)
    n, c, s = images.shape[0], images.shape[1], images.shape[-1]
    if n < 2:
        raise ValueError(f"a Gaussian prior needs at least 2 training images, got {n}")
    flat = images.detach().to(torch.float64).flatten(1)
    mean = flat.mean(0)
    sample = torch.cov(flat.T)
    target = smoothness_covariance(c, s, smoothness)
    target = target * (sample.diagonal().mean() / target.diagonal().mean())
    cov = (1.0 - shrinkage) * sample + shrinkage * target
    return mean.reshape(c, s, s).float(), cov.float()


def gaussian_mmse(
    y: Tensor, mask: Tensor, sigma: Tensor, mean: Tensor, cov: Tensor, groups: Tensor | None = None
) -> Tensor:
    """``μ + Σ M (M Σ M + σ² I)⁻¹ (y − m ⊙ μ)`` per image, in float64.

    ``mask`` ``(G, 1 or C, H, W)`` and ``sigma`` ``(G,)`` hold one operator per group and ``groups`` ``(B,)`` the
    group of each image (default: image ``i`` is group ``i``): one Cholesky factorisation of the ``n × n`` system
    (SPD for σ > 0) per group, so a sampler's batch (one t) costs a single factorisation."""
    b, g = y.shape[0], sigma.shape[0]
    groups = torch.arange(b, device=y.device) if groups is None else groups
    m = mask.expand(g, *y.shape[1:]).reshape(g, -1).to(torch.float64)
    mu = mean.reshape(1, -1).to(torch.float64)
    sig = cov.to(torch.float64)
    system = m[:, :, None] * sig[None] * m[:, None, :]
    system.diagonal(dim1=1, dim2=2).add_(sigma.to(torch.float64).reshape(g, 1) ** 2)
    chol = torch.linalg.cholesky(system)
    m_b = m[groups]
    residual = y.reshape(b, -1).to(torch.float64) - m_b * mu
    z = torch.empty_like(residual)
    for k in range(g):  # the images of one group share the factor: one solve with several right-hand sides
        rows = (groups == k).nonzero(as_tuple=True)[0]
        z[rows] = torch.cholesky_solve(residual[rows].T, chol[k]).T
    x = mu + (m_b * z) @ sig  # Σ is symmetric: (Σ M z)ᵀ = (M z)ᵀ Σ
    return x.reshape(y.shape).to(y.dtype)


def require_mask_process(process: DegradationProcess, name: str = "gaussian") -> None:
    """Refuse, in one line, a process the Gaussian input cannot use (its solve assumes a diagonal ``A_t``);
    ``name`` is the network's ``model.input``, for the message."""
    if not isinstance(process, MaskProcess):
        raise ValueError(
            f"model.input={name} needs a mask (inpainting) process, not {process.kind}; use model.input=tikhonov"
        )


def gaussian_input(
    process: DegradationProcess, y: Tensor, t: Tensor, mean: Tensor, cov: Tensor, name: str = "gaussian"
) -> Tensor:
    """:func:`gaussian_mmse` of ``y_t`` under ``process`` at per-sample times ``t`` (``m = m_{s(t)}``,
    ``σ = σ(t)``): what a Gaussian-input network (``model.input=name``) refines. Mask processes, fitted size only."""
    require_mask_process(process, name)
    if tuple(y.shape[1:]) != tuple(mean.shape):
        raise ValueError(
            f"model.input={name} was fitted on {tuple(mean.shape)} images (C, H, W), got {tuple(y.shape[1:])}; "
            "resize the images to that size"
        )
    if not bool(cov.diagonal().gt(0).all()):
        raise ValueError("the network's Gaussian prior was never fitted (zero covariance): train it with train.py")
    times, groups = torch.unique(t, return_inverse=True)  # images at the same t share A_t and σ(t)
    mask = process.mask(y[: len(times)], process.severity(times, len(times), like=y))
    return gaussian_mmse(y, mask, process.sigma(times).to(y), mean, cov, groups)
