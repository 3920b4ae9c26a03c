"""Gaussian patch statistics behind the uncertainty–perception (UP) plane (Cohen et al., "Looks Too Good To Be
True", NeurIPS 2024) and the few-shot OT map (:mod:`dirac.perception.ot`).

* :func:`extract_patches`: every (overlapping) ``p×p×C`` patch of a batch as rows of a ``(n, p²C)`` matrix;
* :func:`gaussian_fit`: sample mean and covariance ``Σ = (V − μ)ᵀ(V − μ) / (n − 1)``;
* :func:`entropy_power`: ``N(Σ) = exp(mean_i log λ_i(Σ + εI))`` — the entropy power of ``N(μ, Σ)``
  (``exp(2h/d) / 2πe``), i.e. the geometric mean of the eigenvalues; ``N(cΣ) = c N(Σ)``;
* :func:`renyi_half`: Rényi divergence of order ½ between two Gaussians (Gil, Alajaji & Linder 2013),
  ``D_½ = ¼ Δμᵀ Σ̄⁻¹ Δμ + ln(|Σ̄| / sqrt(|Σ₁||Σ₂|))``, ``Σ̄ = (Σ₁ + Σ₂)/2`` (= twice the Bhattacharyya distance);
* :func:`eta`: the UP bound's factor ``η(P) = 2e^{2P/d} − sqrt((2e^{2P/d} − 1)² − 1)`` (1 ≤ η ≤ 2, η(0) = 2),
  so that ``U(P) ≥ η(P)·N(X|Y)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

RIDGE = 1e-6  # relative ridge: ε = RIDGE · tr(Σ)/d (+ 1e-12), so log-eigenvalues stay finite


def extract_patches(x: Tensor, patch: int, stride: int = 1) -> Tensor:
    """``(B, C, H, W)`` → ``(B·L, C·p·p)``: every ``p×p`` patch (all channels) at the given stride."""
    if x.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    if patch < 1 or patch > min(x.shape[-2:]):
        raise ValueError(f"patch={patch} must be in [1, {min(x.shape[-2:])}] for images of {tuple(x.shape[-2:])}")
    cols = torch.nn.functional.unfold(x.double(), kernel_size=patch, stride=stride)  # (B, C·p·p, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def patch_count(images: int, height: int, width: int, patch: int) -> int:
    """How many overlapping ``p×p`` patches (stride 1) ``images`` images of ``height×width`` hold."""
    return images * max(height - patch + 1, 0) * max(width - patch + 1, 0)


def require_enough_patches(n: int, d: int, key: str) -> None:
    """Refuse (naming ``key``) a Gaussian fit of ``n`` vectors in ``d > n - 1`` dimensions: its covariance would be
    singular, and every entropy power, divergence or OT map from it set by the ridge, not by the data."""
    if n <= d:
        raise ValueError(
            f"{key}: {n} patches cannot fit a Gaussian over {d}-dimensional patches (need more than {d}); use a "
            f"smaller {key} or more images"
        )


def gaussian_fit(v: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of the rows of ``v`` ``(n, d)`` (float64)."""
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"need an (n >= 2, d) sample matrix, got shape {tuple(v.shape)}")
    require_enough_patches(v.shape[0], v.shape[1], "patch")
    v = v.double()
    mu = v.mean(0)
    c = v - mu
    return mu, c.T @ c / (v.shape[0] - 1)


def _ridge(cov: Tensor, ridge: float) -> Tensor:
    d = cov.shape[-1]
    eps = ridge * float(torch.diagonal(cov).sum()) / d + 1e-12
    return cov + eps * torch.eye(d, dtype=cov.dtype, device=cov.device)


def _logdet(cov: Tensor) -> Tensor:
    return torch.linalg.eigvalsh(cov).clamp_min(1e-300).log().sum()


def entropy_power(cov: Tensor, ridge: float = RIDGE) -> float:
    """``exp(mean log eig(Σ + εI))``: the geometric mean of the covariance eigenvalues (per-dimension variance
    of the isotropic Gaussian with the same entropy)."""
    cov = _ridge(cov.double(), ridge)
    return float((_logdet(cov) / cov.shape[-1]).exp())


def renyi_half(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor, ridge: float = RIDGE) -> float:
    """``D_½(N(μ₁,Σ₁) ‖ N(μ₂,Σ₂)) = ¼ ΔμᵀΣ̄⁻¹Δμ + ln|Σ̄| − ½(ln|Σ₁| + ln|Σ₂|)`` in nats (symmetric, ≥ 0)."""
    c1, c2 = _ridge(cov1.double(), ridge), _ridge(cov2.double(), ridge)
    avg = 0.5 * (c1 + c2)
    dm = (mu1.double() - mu2.double()).reshape(-1, 1)
    maha = float((dm.T @ torch.linalg.solve(avg, dm)).squeeze())
    return max(0.25 * maha + float(_logdet(avg) - 0.5 * (_logdet(c1) + _logdet(c2))), 0.0)


def eta(p: float | Tensor, d: int) -> Tensor:
    """The UP bound's factor ``η(P) = 2e^{2P/d} − sqrt((2e^{2P/d} − 1)² − 1)`` ∈ [1, 2] (Cohen et al. 2024):
    a perception index ``P`` (nats, ``D_½`` over ``d`` dimensions) forces ``U ≥ η(P)·N(X|Y)``."""
    u = torch.exp(-2.0 * torch.as_tensor(p, dtype=torch.float64).clamp_min(0.0) / d)
    # with a = 2e^{2P/d}: a − sqrt(a² − 2a) = 2 / (1 + sqrt(1 − e^{−2P/d})) (no overflow, no cancellation)
    return 2.0 / (1.0 + torch.sqrt(1.0 - u))


def patch_entropy_power(err: Tensor, patch: int, ridge: float = RIDGE) -> float:
    """Entropy power of ``p×p×C`` patches of ``err`` ``(B, C, H, W)`` under a patch-stationary Gaussian model
    (the covariance pooled over images and positions: an upper bound on the conditional entropy power)."""
    return entropy_power(gaussian_fit(extract_patches(err, patch))[1], ridge)


def patch_renyi_half(x: Tensor, ref: Tensor, patch: int, ridge: float = RIDGE) -> float:
    """``D_½`` between Gaussian fits of the ``p×p×C`` patches of ``x`` and of ``ref`` (perception index P)."""
    m1, c1 = gaussian_fit(extract_patches(x, patch))
    m2, c2 = gaussian_fit(extract_patches(ref, patch))
    return renyi_half(m1, c1, m2, c2, ridge)
