"""LPIPS (Zhang et al., CVPR 2018) with AlexNet and VGG16 backbones defined here in plain torch.

The backbones reproduce the ``features`` part of torchvision's ``alexnet`` and ``vgg16`` layer by layer, so
their parameter names are the torchvision state-dict keys (``features.0.weight``, ``features.3.bias``, ...)
and the standard ImageNet weights load unchanged.  The linear heads are named like the LPIPS v0.1 weight
files ``alex.pth`` / ``vgg.pth`` (``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shape (1, C_l, 1, 1)).

Distance between images ``x`` and ``r`` in [0, 1] (grey images are repeated to 3 channels)::

    z = ((2 x - 1) - shift) / scale,   shift = (-.030, -.088, -.188), scale = (.458, .448, .450)
    f_l = backbone activations at layer l (AlexNet relu1..relu5; VGG16 relu1_2, 2_2, 3_3, 4_3, 5_3)
    n(f) = f / (||f||_channels + 1e-10)                  (unit norm of every pixel's channel vector)
    d(x, r) = sum_l mean_{h,w} sum_c w_{l,c} (n(f_l(x)) - n(f_l(r)))^2_{c,h,w}

Weights are read from safetensors files in one directory (``load_lpips``); convert the standard ``.pth``
files once with ``python -m dirac.metrics.convert_weights`` (see ``LPIPS_WEIGHT_FILES``).
Minimum image size: 31 px for AlexNet (its pooling stages run out of pixels below), 16 px for VGG16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ._checks import check_pair, to_unit_range
from ._weights import WeightFile, load_checked, missing_weights_error, read_safetensors

__all__ = [
    "AlexNetFeatures",
    "VGG16Features",
    "LPIPS",
    "LPIPS_WEIGHT_FILES",
    "load_lpips",
    "normalize_channels",
]

NetName = Literal["alex", "vgg"]

_TV_URL = "https://download.pytorch.org/models/"
_LPIPS_URL = "https://github.com/richzhang/PerceptualSimilarity/tree/master/lpips/weights/v0.1/"
_LPIPS_SRC = f"LPIPS v0.1 linear layers, {_LPIPS_URL} (also in the `lpips` pip package, lpips/weights/v0.1/)"

#: Expected files per backbone: (backbone file, linear-layer file).
LPIPS_WEIGHT_FILES: dict[str, tuple[WeightFile, WeightFile]] = {
    "alex": (
        WeightFile(
            "alexnet_backbone.safetensors",
            "alexnet-owt-7be5be79.pth",
            f"torchvision AlexNet ImageNet weights, {_TV_URL}alexnet-owt-7be5be79.pth",
            keep=("features.",),
        ),
        WeightFile("lpips_alex_lin.safetensors", "alex.pth", _LPIPS_SRC),
    ),
    "vgg": (
        WeightFile(
            "vgg16_backbone.safetensors",
            "vgg16-397923af.pth",
            f"torchvision VGG16 ImageNet weights, {_TV_URL}vgg16-397923af.pth",
            keep=("features.",),
        ),
        WeightFile("lpips_vgg_lin.safetensors", "vgg.pth", _LPIPS_SRC),
    ),
}


class _TappedFeatures(nn.Module):
    """``self.features`` (torchvision layout) plus the indices whose outputs LPIPS compares."""

    features: nn.Sequential
    taps: tuple[int, ...]
    channels: tuple[int, ...]
    min_size: int

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the activations after each tapped layer (5 tensors)."""
        outs: list[Tensor] = []
        last = self.taps[-1]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
            if i == last:
                break
        return outs


class AlexNetFeatures(_TappedFeatures):
    """torchvision ``alexnet().features`` (same indices/keys); taps relu1..relu5 (64/192/384/256/256 ch)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # 0
            nn.ReLU(),  # 1 relu1
            nn.MaxPool2d(kernel_size=3, stride=2),  # 2
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3
            nn.ReLU(),  # 4 relu2
            nn.MaxPool2d(kernel_size=3, stride=2),  # 5
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6
            nn.ReLU(),  # 7 relu3
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8
            nn.ReLU(),  # 9 relu4
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10
            nn.ReLU(),  # 11 relu5
            nn.MaxPool2d(kernel_size=3, stride=2),  # 12 (unused by LPIPS)
        )
        self.taps = (1, 4, 7, 9, 11)
        self.channels = (64, 192, 384, 256, 256)
        self.min_size = 31


_VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG16Features(_TappedFeatures):
    """torchvision ``vgg16().features`` (same indices/keys); taps relu1_2 .. relu5_3 (64..512 ch)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.taps = (3, 8, 15, 22, 29)
        self.channels = (64, 128, 256, 512, 512)
        self.min_size = 16


class _LinLayer(nn.Module):
    """1x1 conv without bias; stored as ``model.1`` to match the LPIPS files (index 0 held a Dropout that
    is only active while training the linear layers, so it is an identity here)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def normalize_channels(f: Tensor, eps: float = 1e-10) -> Tensor:
    """Unit-normalise each pixel's channel vector: ``f / (sqrt(sum_c f_c^2) + eps)``, f of shape (B, C, H, W).

    Invariant to a positive per-pixel rescaling ``f -> a(b, h, w) f`` (up to ``eps``).
    """
    norm = f.square().sum(dim=1, keepdim=True).sqrt()
    return f / (norm + eps)


class LPIPS(nn.Module):
    """LPIPS distance module; ``forward(x, ref)`` returns one distance per image, shape (B,).

    Build with :func:`load_lpips` to get the real weights; a bare ``LPIPS(net)`` is randomly initialised
    (only useful for tests).  The module always stays in eval mode and its parameters are frozen by the
    loader; gradients w.r.t. the inputs still flow (clamping to [0, 1] stops them outside that range).
    """

    def __init__(self, net: NetName = "alex", clamp: bool = True) -> None:
        super().__init__()
        if net == "alex":
            self.net: _TappedFeatures = AlexNetFeatures()
        elif net == "vgg":
            self.net = VGG16Features()
        else:
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        self.net_name = net
        self.clamp = clamp
        for i, c in enumerate(self.net.channels):
            self.add_module(f"lin{i}", _LinLayer(c))
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always stays in eval mode (a metric, not a trainable network)."""
        return super().train(False)

    @property
    def lins(self) -> list[_LinLayer]:
        return [getattr(self, f"lin{i}") for i in range(len(self.net.channels))]

    def _prepare(self, x: Tensor) -> Tensor:
        x = (to_unit_range(x) if self.clamp else x).to(self.shift.dtype)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((2 * x - 1) - self.shift) / self.scale

    def forward(self, x: Tensor, ref: Tensor, per_layer: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """LPIPS distance per image (B,); with ``per_layer=True`` also the list of per-layer terms."""
        check_pair(x, ref, channels=(1, 3))
        h, w = x.shape[-2:]
        if min(h, w) < self.net.min_size:
            raise ValueError(
                f"LPIPS-{self.net_name} needs images of at least {self.net.min_size} px, got {h}x{w}; "
                "upsample the images (both the same way) first"
            )
        feats = self.net(torch.cat([self._prepare(x), self._prepare(ref)], dim=0))
        b = x.shape[0]
        terms = []
        for f, lin in zip(feats, self.lins, strict=True):
            diff = (normalize_channels(f[:b]) - normalize_channels(f[b:])).square()
            terms.append(lin(diff).mean(dim=(1, 2, 3)))
        total = torch.stack(terms, dim=0).sum(dim=0)
        return (total, terms) if per_layer else total


def load_lpips(net: NetName, weights_dir: str | Path) -> LPIPS:
    """Build LPIPS with real weights read from ``weights_dir``.

    Expects ``alexnet_backbone.safetensors`` + ``lpips_alex_lin.safetensors`` (net="alex") or
    ``vgg16_backbone.safetensors`` + ``lpips_vgg_lin.safetensors`` (net="vgg"); raises FileNotFoundError
    naming the files, the originals and the conversion command when they are absent, and ValueError when
    keys or shapes do not match.  Returns the module in eval mode with frozen parameters.
    """
    if net not in LPIPS_WEIGHT_FILES:
        raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
    directory = Path(weights_dir)
    specs = LPIPS_WEIGHT_FILES[net]
    paths = [directory / s.filename for s in specs]
    missing = [(p, s) for p, s in zip(paths, specs, strict=True) if not p.is_file()]
    if missing:
        raise missing_weights_error(missing, f"LPIPS-{net}")
    model = LPIPS(net)
    load_checked(model.net, read_safetensors(paths[0]), str(paths[0]), ignore_prefixes=("classifier.",))
    lin_state = read_safetensors(paths[1])
    lin_module = nn.ModuleDict({f"lin{i}": lin for i, lin in enumerate(model.lins)})
    load_checked(lin_module, lin_state, str(paths[1]))
    model.requires_grad_(False)
    return model.eval()
