"""Few-shot perception control for any restorer (Adrai et al., "Deep Optimal Transport: A Practical Algorithm for
Photo-realistic Image Restoration", NeurIPS 2023), in a fixed domain with no training and no download.

Overlapping ``p×p×C`` patches (stride 1) of about a dozen *restored* images and of as many *unpaired clean*
images are fitted by Gaussians ``N(μ_r, Σ_r)`` and ``N(μ_c, Σ_c)``; the closed-form W2-optimal map between them is

    T(v) = μ_c + A (v − μ_r),   A = Σ_r^{-1/2} (Σ_r^{1/2} Σ_c Σ_r^{1/2})^{1/2} Σ_r^{-1/2}

(symmetric positive definite; Knott & Smith 1984). By default (``keep_dc``) each patch's per-channel mean (its
DC: colour and brightness, which a dozen images estimate poorly and a restorer of blur already gets right) is
kept and only the mean-free rest (texture, sharpness) is transported: ``T(v) = dc(v) + μ_c + A (ac(v) − μ_r)``
with the Gaussians fitted on ``ac(v) = v − dc(v)``. An image is mapped patch by patch and the overlapping patches
are averaged back (fold), and ``x̂_α = (1 − α)·x̂ + α·T(x̂)`` walks from the restorer's output (α = 0: its
distortion) to output whose patch statistics match clean images (α = 1: perception).

Limits: only first and second patch moments are matched (a Gaussian model of p×p patches, nothing larger);
overlap-averaging shrinks the transported patches' variance a little, so α = 1 is close to but not exactly
the clean patch distribution; the map is fitted per restorer and degradation (refit when either changes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from ..reconstruction import GeneratorLike, Reconstruction, Restorer, RestorerWrapper
from ..uncertainty.gaussian import RIDGE, extract_patches, gaussian_fit


def sqrtm_psd(m: Tensor, inverse: bool = False) -> Tensor:
    """``M^{1/2}`` (or ``M^{-1/2}``) of a symmetric positive semi-definite matrix by eigendecomposition."""
    m = 0.5 * (m + m.T)
    w, v = torch.linalg.eigh(m)
    w = w.clamp_min(1e-12 * max(float(w.max()), 1e-300))
    return (v * (w.rsqrt() if inverse else w.sqrt())) @ v.T


def _ridged(cov: Tensor, ridge: float) -> Tensor:
    d = cov.shape[0]
    return cov + (ridge * float(torch.diagonal(cov).sum()) / d + 1e-12) * torch.eye(d, dtype=cov.dtype)


def gaussian_ot_matrix(cov_r: Tensor, cov_c: Tensor, ridge: float = RIDGE) -> Tensor:
    """``A = Σ_r^{-1/2} (Σ_r^{1/2} Σ_c Σ_r^{1/2})^{1/2} Σ_r^{-1/2}``: pushes ``N(0, Σ_r)`` to ``N(0, Σ_c)``."""
    cr, cc = _ridged(cov_r.double(), ridge), _ridged(cov_c.double(), ridge)
    half, inv_half = sqrtm_psd(cr), sqrtm_psd(cr, inverse=True)
    a = inv_half @ sqrtm_psd(half @ cc @ half) @ inv_half
    return 0.5 * (a + a.T)


def _split_dc(v: Tensor, patch: int) -> tuple[Tensor, Tensor]:
    """``(dc, ac)`` of channel-major patch rows ``(n, C·p·p)``: the per-channel patch mean, broadcast, and the rest."""
    n, d = v.shape
    per = v.reshape(n, d // (patch * patch), patch * patch)
    dc = per.mean(-1, keepdim=True).expand_as(per)
    return dc.reshape(n, d), (per - dc).reshape(n, d)


@dataclass
class GaussianOT:
    """The fitted map ``T(v) = μ_c + A (v − μ_r)`` on ``patch×patch×C`` vectors (on their mean-free part, the
    per-channel patch mean passed through, when ``keep_dc``)."""

    mu_r: Tensor
    mu_c: Tensor
    a: Tensor
    patch: int
    keep_dc: bool = False

    @classmethod
    def fit(
        cls, restored: Tensor, clean: Tensor, patch: int = 4, keep_dc: bool = True, ridge: float = RIDGE
    ) -> GaussianOT:
        """Fit on restored images and unpaired clean images ``(B, C, H, W)`` (same channels; each set must hold more
        patches than a patch has dimensions, else the fit is refused: its covariance would be singular)."""
        if restored.shape[1] != clean.shape[1]:
            raise ValueError(f"restored and clean images need the same channels, got {restored.shape[1]} and "
                             f"{clean.shape[1]}")  # fmt: skip
        split = (lambda v: _split_dc(v, patch)[1]) if keep_dc else (lambda v: v)
        mu_r, cov_r = gaussian_fit(split(extract_patches(restored, patch)))
        mu_c, cov_c = gaussian_fit(split(extract_patches(clean, patch)))
        return cls(mu_r, mu_c, gaussian_ot_matrix(cov_r, cov_c, ridge), patch, keep_dc)

    def transport(self, v: Tensor) -> Tensor:
        """``T`` on rows ``(n, d)`` of patch vectors."""
        v = v.double()
        if not self.keep_dc:
            return self.mu_c + (v - self.mu_r) @ self.a
        dc, ac = _split_dc(v, self.patch)
        return dc + self.mu_c + (ac - self.mu_r) @ self.a

    def __call__(self, x: Tensor) -> Tensor:
        """``T(x)`` for images ``(B, C, H, W)``: every overlapping patch mapped, overlaps averaged back."""
        b, c, h, w = x.shape
        p = self.patch
        if c * p * p != self.a.shape[0]:
            raise ValueError(f"the map was fitted on {self.a.shape[0]}-dim patches, not {c}×{p}×{p} ones; refit it")
        cols = F.unfold(x.double(), kernel_size=p)  # (B, C·p·p, L)
        mapped = self.transport(cols.transpose(1, 2).reshape(-1, cols.shape[1]))
        mapped = mapped.reshape(b, -1, cols.shape[1]).transpose(1, 2)
        summed = F.fold(mapped, (h, w), kernel_size=p)
        count = F.fold(torch.ones_like(cols), (h, w), kernel_size=p)
        return (summed / count).to(x.dtype)

    def interpolate(self, x: Tensor, alpha: float) -> Tensor:
        """``x̂_α = (1 − α)·x̂ + α·T(x̂)``."""
        return x if alpha == 0 else (1.0 - alpha) * x + alpha * self(x)


class PerceptionControlled(RestorerWrapper):
    """Any restorer followed by ``x̂_α``: same process, noise and NFE as ``base``; ``extras["alpha"]``."""

    def __init__(self, base: Restorer, ot: GaussianOT, alpha: float) -> None:
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"perception_control.alphas must lie in [0, 1], got {alpha}")
        self.ot, self.alpha = ot, float(alpha)
        super().__init__(base, "ot")

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        rec = self.base(y, generator)
        x = self.ot.interpolate(rec.x, self.alpha)
        return Reconstruction(x, nfe=rec.nfe, extras={**rec.extras, "alpha": self.alpha})
