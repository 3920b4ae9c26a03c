"""FID / KID with an Inception-v3 pool3 feature extractor defined here in plain torch.

``FIDInceptionV3`` reproduces the network of pytorch-fid (the TensorFlow FID Inception ported to PyTorch):
torchvision's Inception-v3 layout and parameter names (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, ...) with the FID-specific blocks: the pooling branch of the
InceptionA/C/E blocks averages with ``count_include_pad=False`` (TensorFlow semantics) and the last block
(``Mixed_7c``) max-pools instead.  Input: images in [0, 1], resized to 299x299 (bilinear,
``align_corners=False``, no antialias, as pytorch-fid) and scaled to [-1, 1]; output: the 2048-d
average-pooled features.  The weights file ``pt_inception-2015-12-05-6726825d.pth`` is converted once to
``fid_inception_v3.safetensors`` (its 1008-way ``fc`` head is ignored by the loader).

Note: torchmetrics' default FID network (torch-fidelity) resizes with a TF1-compatible bilinear kernel,
so scores from it and from this (pytorch-fid-style) network differ slightly; neither is downloadable here.

``frechet_distance`` computes ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})`` in float64 with
``tr (S1 S2)^{1/2} = tr (S1^{1/2} S2 S1^{1/2})^{1/2}``, the trace of the square root of a symmetric PSD
matrix, from ``eigh`` with negative round-off eigenvalues clipped to 0 (no complex arithmetic).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ._checks import check_images, to_unit_range
from ._weights import WeightFile, load_checked, missing_weights_error, read_safetensors

__all__ = [
    "FID",
    "FID_WEIGHT_FILE",
    "FIDInceptionV3",
    "KID",
    "feature_statistics",
    "frechet_distance",
    "load_fid_inception",
]

FID_WEIGHT_FILE = WeightFile(
    "fid_inception_v3.safetensors",
    "pt_inception-2015-12-05-6726825d.pth",
    "pytorch-fid FID Inception weights, "
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
)


# --------------------------------------------------------------------------------------------- network
class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3) + ReLU, keys ``conv.*`` and ``bn.*``."""

    def __init__(self, c_in: int, c_out: int, **conv_kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **conv_kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: Tensor) -> Tensor:
    # TensorFlow's 3x3 average pool ignores the zero padding (count_include_pad=False).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """FID InceptionA (Mixed_5b/c/d): 64 + 64 + 96 + pool_features output channels."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """InceptionB (Mixed_6a), grid reduction 35 -> 17: 384 + 96 + c_in channels."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], dim=1)


class InceptionC(nn.Module):
    """FID InceptionC (Mixed_6b..e) with factorised 7x7 convolutions: 4 x 192 = 768 channels."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, bd, bp], dim=1)


class InceptionD(nn.Module):
    """InceptionD (Mixed_7a), grid reduction 17 -> 8: 320 + 192 + c_in channels."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class InceptionE(nn.Module):
    """FID InceptionE (Mixed_7b: TF average pool; Mixed_7c: ``max_pool=True``): 2048 channels."""

    def __init__(self, c_in: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        # The FID network's last block max-pools here (a quirk of the TF graph that pytorch-fid keeps).
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], dim=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 pool3 feature extractor of FID: images (B, C, H, W) in [0, 1] -> features (B, 2048).

    Grey images are repeated to 3 channels.  Always in eval mode (BatchNorm uses its running statistics).
    ``num_features = 2048`` tells torchmetrics the feature size without a dummy forward.
    """

    num_features: int = 2048

    def __init__(self, resize: bool = True) -> None:
        super().__init__()
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Always stays in eval mode (a fixed feature extractor)."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, "images", channels=(1, 3))
        x = to_unit_range(x).to(self.Conv2d_1a_3x3.conv.weight.dtype)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        blocks = (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        )
        for block in blocks:
            x = block(x)
        return x.mean(dim=(2, 3))


def load_fid_inception(weights_path: str | Path) -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` with weights from ``fid_inception_v3.safetensors``.

    ``weights_path`` is the file itself or the directory holding it.  Raises FileNotFoundError (naming the
    file, the original ``pt_inception-2015-12-05-6726825d.pth`` and the conversion command) when absent
    and ValueError on key/shape mismatch.  The ``fc.*`` classifier keys of the file are ignored.
    """
    path = Path(weights_path)
    if path.is_dir() or path.suffix != ".safetensors":
        path = path / FID_WEIGHT_FILE.filename
    if not path.is_file():
        raise missing_weights_error([(path, FID_WEIGHT_FILE)], "FID Inception-v3")
    model = FIDInceptionV3()
    load_checked(model, read_safetensors(path), str(path), ignore_prefixes=("fc.", "AuxLogits."))
    model.requires_grad_(False)
    return model.eval()


# ----------------------------------------------------------------------------------------------- maths
def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64 (N >= 2)."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {tuple(features.shape)}")
    f = features.double()
    mu = f.mean(dim=0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrt_psd(m: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix via eigh (negative round-off -> 0)."""
    evals, evecs = torch.linalg.eigh((m + m.T) / 2)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    r"""Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), a float64 scalar tensor.

    ``d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^{1/2} S2 S1^{1/2})^{1/2})``; the last trace equals
    ``tr((S1 S2)^{1/2})``.  Computed in float64 with symmetric eigendecompositions; clamped at 0.
    """
    mu1, mu2, s1, s2 = (t.detach().double() for t in (mu1, mu2, sigma1, sigma2))
    d = mu1.shape[-1] if mu1.ndim == 1 else -1
    if mu1.ndim != 1 or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            "expected mu (D,) and sigma (D, D) for both sets, got "
            f"{tuple(mu1.shape)}, {tuple(s1.shape)}, {tuple(mu2.shape)}, {tuple(s2.shape)}"
        )
    if not all(bool(torch.isfinite(t).all()) for t in (mu1, mu2, s1, s2)):
        raise ValueError("statistics contain NaN or inf")
    r1 = _sqrt_psd(s1)
    middle = r1 @ s2 @ r1
    evals = torch.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = evals.clamp_min(0).sqrt().sum()
    dist = (mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return dist.clamp_min(0)


# ------------------------------------------------------------------------------------ torchmetrics glue
def _num_features(feature: nn.Module) -> int:
    n = getattr(feature, "num_features", None)
    if not isinstance(n, int):
        raise ValueError(
            "the feature module needs an integer attribute `num_features` (the feature dimension), "
            "so that torchmetrics does not have to run a dummy 299x299 uint8 forward to find it"
        )
    return n


class FID(FrechetInceptionDistance):
    """torchmetrics ``FrechetInceptionDistance`` driven by our own feature module.

    ``update(images, real=...)`` passes float images in [0, 1] straight to ``feature`` (e.g. the module
    from :func:`load_fid_inception`, or any (B, C, H, W) -> (B, D) network with ``num_features = D``);
    torchmetrics accumulates feature sums and outer products in float64.  ``compute()`` forms mean and
    covariance from them and uses our :func:`frechet_distance` (symmetric eigendecomposition) instead of
    torchmetrics' ``eigvals`` of the non-symmetric product ``S1 S2``; the two agree to round-off.
    """

    def __init__(self, feature: nn.Module, reset_real_features: bool = True, **kwargs: object) -> None:
        _num_features(feature)
        super().__init__(feature=feature, reset_real_features=reset_real_features, normalize=True, **kwargs)

    def compute(self) -> Tensor:
        n_r, n_f = int(self.real_features_num_samples), int(self.fake_features_num_samples)
        if n_r < 2 or n_f < 2:
            raise RuntimeError("FID needs at least 2 real and 2 fake images")
        stats = []
        for s, ss, n in (
            (self.real_features_sum, self.real_features_cov_sum, n_r),
            (self.fake_features_sum, self.fake_features_cov_sum, n_f),
        ):
            mu = s / n
            stats.append((mu, (ss - n * torch.outer(mu, mu)) / (n - 1)))
        (mu_r, cov_r), (mu_f, cov_f) = stats
        return frechet_distance(mu_r, cov_r, mu_f, cov_f).float()


class KID(KernelInceptionDistance):
    """torchmetrics ``KernelInceptionDistance`` driven by our own feature module.

    ``KID = mean over subsets of the unbiased MMD^2 with kernel k(a, b) = (a.b / D + 1)^3``; ``compute()``
    returns ``(mean, std)`` over ``subsets`` random subsets of ``subset_size`` images (drawn with the
    global torch RNG: seed it with ``torch.manual_seed`` for reproducible values).  Keeps all features.
    """

    def __init__(self, feature: nn.Module, subsets: int = 100, subset_size: int = 1000, **kwargs: object) -> None:
        _num_features(feature)
        super().__init__(feature=feature, subsets=subsets, subset_size=subset_size, normalize=True, **kwargs)
