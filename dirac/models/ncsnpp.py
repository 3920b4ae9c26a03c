"""NCSN++ reconstruction network (Song et al. 2021) on ``diffusers.UNet2DModel``: Φθ of the paper's eq. 11.

``Φθ(y, σ) = y + σ · U(2y − 1, σ)`` (``preconditioning="residual"``, the reference's form, used by every Dirac
model) where ``U`` is diffusers' UNet2DModel with Gaussian-Fourier
embedding of ``log σ`` and skip (FIR) down/up blocks. diffusers divides the UNet's output by the
timestep when ``time_embedding_type="fourier"`` (a score parametrisation); multiplying by σ undoes
that, so the predicted residual has the same scale for every σ (tested in tests/test_models.py).
The network is conditioned on σ(t), not t, because the Fourier projection takes ``log(timestep)``.

``preconditioning="edm"`` (the unconditional priors, σ up to 5 ≫ the data's spread) uses Karras et al. 2022,
Table 1: ``D(y, σ) = ½ + c_skip (y − ½) + c_out U(c_in (y − ½), σ)`` with ``c_skip = σ_d²/(σ² + σ_d²)``,
``c_out = σ σ_d/√(σ² + σ_d²)``, ``c_in = 1/√(σ² + σ_d²)``, σ_d = 0.25: the residual form must cancel a noisy input
of scale σ exactly, which a short CPU run does not learn at σ ≳ 1 (measured: worse than predicting the mean).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
from diffusers import UNet2DModel
from torch import Tensor, nn

from .gaussian_prior import MAX_VALUES, check_gaussian_settings

SIGMA_DATA = 0.25  # std of natural images in [0, 1]: EDM's σ_d (preconditioning and loss weighting)
PRECONDITIONINGS = ("residual", "edm")
INPUTS = ("measurement", "tikhonov", "gaussian", "tikhonov_gaussian")  # what the Reconstructor feeds (reconstructor.py)
GAUSSIAN_INPUTS = ("gaussian", "tikhonov_gaussian")  # inputs that read a Gaussian prior fitted on the training images
# config fields that own no parameters: a fine-tune (init_from) may change them and keep the weights
PARAMETER_FREE = ("dropout", "input", "tikhonov_lambda", "gaussian_shrinkage", "gaussian_smoothness")
# buffers of a model.input=gaussian network: fitted on the training images when a run starts (never trained)
PRIOR_BUFFERS = ("prior_mean", "prior_cov")


@dataclass
class NCSNppConfig:
    """Architecture of an NCSN++ network; ``attention_resolutions`` are feature-map sizes in pixels."""

    image_size: int = 32
    channels: int = 3
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 2
    attention_resolutions: tuple[int, ...] = (8,)
    dropout: float = 0.0
    norm_num_groups: int = 16
    preconditioning: str = "residual"
    input: str = "measurement"
    """``"measurement"``: the network sees ``y_t``; ``"tikhonov"``: it sees the Tikhonov estimate of ``x0`` from
    ``y_t`` (:func:`~dirac.models.reconstructor.tikhonov_input`), so it learns a residual on a deconvolved image;
    ``"gaussian"``: the linear MMSE estimate under a Gaussian prior fitted on the training images
    (:mod:`dirac.models.gaussian_prior`; mask processes, fixed ``image_size``); ``"tikhonov_gaussian"`` (grey
    images only): both, the Tikhonov estimate as the residual's base and the Gaussian one beside it
    (:func:`stacked_input`)."""
    tikhonov_lambda: float = 0.05
    """λ of the Tikhonov input at t = 1 (σ_y); at time t it is scaled by ``(σ(t)/σ_y)²``."""
    gaussian_shrinkage: float = 0.5
    """``"gaussian"`` input: weight ρ of the smoothness covariance in ``Σ = (1 − ρ) C + ρ T``
    (:mod:`dirac.models.gaussian_prior`)."""
    gaussian_smoothness: float = 0.3
    """``"gaussian"`` input: ε of ``T ∝ (LᵀL + εI)⁻¹``."""

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)
        if self.input not in INPUTS:
            raise ValueError(f"unknown model.input {self.input!r}; choose one of {INPUTS}")
        if not float(self.tikhonov_lambda) > 0:
            raise ValueError(f"model.tikhonov_lambda must be positive, got {self.tikhonov_lambda}")
        self.tikhonov_lambda = float(self.tikhonov_lambda)
        self.gaussian_shrinkage = float(self.gaussian_shrinkage)
        self.gaussian_smoothness = float(self.gaussian_smoothness)
        check_gaussian_settings(self.gaussian_shrinkage, self.gaussian_smoothness)
        if self.input == "tikhonov_gaussian" and self.channels != 1:
            raise ValueError(
                f"model.input=tikhonov_gaussian feeds two estimates on the UNet's replicated grey channels, so it "
                f"needs model.channels=1, got {self.channels}; use model.input=tikhonov for RGB images"
            )
        if self.input in GAUSSIAN_INPUTS and self.values > MAX_VALUES:
            raise ValueError(
                f"model.input={self.input} keeps a dense covariance of channels·image_size² = {self.values} values "
                f"(at most {MAX_VALUES}); use model.input=tikhonov or a smaller model.image_size"
            )

    def input_settings(self) -> dict:
        """What the network is fed: ``input`` and the settings that input reads (``tikhonov_lambda`` /
        ``gaussian_*``) — two configs with equal settings feed equal weights the same image."""
        tik, gauss = ("tikhonov_lambda",), ("gaussian_shrinkage", "gaussian_smoothness")
        used = {"tikhonov": tik, "gaussian": gauss, "tikhonov_gaussian": tik + gauss}
        return {k: getattr(self, k) for k in ("input", *used.get(self.input, ()))}

    @property
    def estimates(self) -> int:
        """Images the network is fed per sample: 2 for ``tikhonov_gaussian``, else 1."""
        return 2 if self.input == "tikhonov_gaussian" else 1

    @property
    def values(self) -> int:
        """Values per image, ``channels · image_size²``."""
        return self.channels * self.image_size**2

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @classmethod
    def from_dict(cls, d: dict) -> NCSNppConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown NCSN++ config keys {sorted(unknown)}; known keys: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        d["attention_resolutions"] = list(self.attention_resolutions)
        return d


_SMALL = NCSNppConfig(
    image_size=32, block_out_channels=(32, 64, 64), layers_per_block=2, attention_resolutions=(8,), norm_num_groups=16
)
PRESETS: dict[str, NCSNppConfig] = {
    # tests: ~51 k parameters, 8–16 px
    "tiny": NCSNppConfig(
        image_size=16, block_out_channels=(8, 16), layers_per_block=1, attention_resolutions=(), norm_num_groups=4
    ),
    # CPU default: ~1.9 M parameters, 32 px, attention at 8 px
    "small": _SMALL,
    # issue 15's width lever: ~4.3 M parameters, the 8-px level doubled to 128 channels (1.3-1.45x small's time per
    # NFE on a CPU: bench/throughput.py --model wide)
    "wide": replace(_SMALL, block_out_channels=(32, 64, 128)),
    # paper: ~67 M parameters, 256 px, channel_mult [1,1,2,2,2,2,2] × 128, attention at 16 px, dropout 0.1
    "paper": NCSNppConfig(
        image_size=256,
        block_out_channels=(128, 128, 256, 256, 256, 256, 256),
        layers_per_block=2,
        attention_resolutions=(16,),
        dropout=0.1,
        norm_num_groups=32,
    ),
}


class NCSNpp(nn.Module):
    """``forward(y, sigma) -> x̂0``: residual clean-image prediction conditioned on the noise level."""

    def __init__(self, config: NCSNppConfig | None = None) -> None:
        super().__init__()
        self.config = config or NCSNppConfig()
        c = self.config
        if c.image_size % c.downsample_factor:
            raise ValueError(
                f"image_size {c.image_size} is not divisible by 2**(levels-1) = {c.downsample_factor} for "
                f"{len(c.block_out_channels)} levels; use a multiple of {c.downsample_factor} or fewer levels"
            )
        resolutions = [c.image_size // 2**i for i in range(len(c.block_out_channels))]
        attn = [r in c.attention_resolutions for r in resolutions]
        for ch, a in zip(c.block_out_channels, attn, strict=True):
            if ch % c.norm_num_groups or (a and ch % 32):
                raise ValueError(
                    f"channel count {ch} must be divisible by norm_num_groups={c.norm_num_groups}"
                    + (" and by 32 at attention levels" if a else "")
                )
        if c.preconditioning not in PRECONDITIONINGS:
            raise ValueError(f"unknown preconditioning {c.preconditioning!r}; choose one of {PRECONDITIONINGS}")
        if c.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {c.channels}")
        # diffusers' skip blocks hard-code 3-channel skip convolutions, so the UNet always works on RGB;
        # grey images are replicated to 3 channels on the way in and averaged on the way out.
        try:
            self.unet = self._build_unet(c, attn)
        except ValueError as e:  # the up-blocks normalise skip-concatenated widths in min(width / 4, 32) groups
            raise ValueError(
                f"block_out_channels {list(c.block_out_channels)} do not fit diffusers' skip up-blocks ({e}); "
                "use widths that are multiples of 32, e.g. [32, 64, 128]"
            ) from None
        python_floats(self.unet)
        if c.input in GAUSSIAN_INPUTS:  # zero until fitted (dirac.cli.train): an unfitted prior is refused when used
            self.register_buffer("prior_mean", torch.zeros(c.channels, c.image_size, c.image_size))
            self.register_buffer("prior_cov", torch.zeros(c.values, c.values))
        self.autocast_dtype: torch.dtype | None = None  # set_precision("bf16"): the UNet runs under autocast
        self.zero_init_output()

    @staticmethod
    def _build_unet(c: NCSNppConfig, attn: list[bool]) -> UNet2DModel:
        return UNet2DModel(
            sample_size=c.image_size,
            in_channels=3,
            out_channels=3,
            time_embedding_type="fourier",
            down_block_types=tuple("AttnSkipDownBlock2D" if a else "SkipDownBlock2D" for a in attn),
            up_block_types=tuple("AttnSkipUpBlock2D" if a else "SkipUpBlock2D" for a in reversed(attn)),
            block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block,
            norm_num_groups=c.norm_num_groups,
            resnet_time_scale_shift="scale_shift",
            mid_block_scale_factor=2**-0.5,
            attention_head_dim=None,
            dropout=c.dropout,
        )

    def set_gaussian_prior(self, mean: Tensor, cov: Tensor) -> None:
        """Store a fitted Gaussian prior ``(μ, Σ)`` (:func:`~dirac.models.gaussian_prior.fit_gaussian_prior`)."""
        if self.config.input not in GAUSSIAN_INPUTS:
            raise ValueError(
                f"only a model.input=gaussian or tikhonov_gaussian network holds a Gaussian prior, not "
                f"{self.config.input}"
            )
        self.prior_mean.copy_(mean.reshape(self.prior_mean.shape))
        self.prior_cov.copy_(cov)

    def set_precision(self, mixed_precision: str) -> NCSNpp:
        """``"no"`` (float32) or ``"bf16"``/``"fp16"``: the UNet runs under ``torch.autocast`` in that type while the
        residual ``y + σ·U`` and the output stay float32 (inference; training gets autocast from accelerate)."""
        dtypes = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if mixed_precision not in dtypes:
            raise ValueError(f"mixed_precision must be one of {sorted(dtypes)}, got {mixed_precision!r}")
        self.autocast_dtype = dtypes[mixed_precision]
        return self

    def compile_unet(self, backend: str = "inductor") -> NCSNpp:
        """``torch.compile`` the UNet in place (``nn.Module.compile``: parameter names and checkpoints unchanged)."""
        self.unet.compile(backend=backend)
        return self

    def zero_init_output(self) -> None:
        """Zero the layers that write to image space (``conv_out`` and the skip path's output convolutions), as
        NCSN++ does (init_scale 0): the network starts as the identity ``Φ(y) = y`` instead of adding a random
        residual it must first unlearn (measured: several times faster training on the CPU default)."""
        convs = [self.unet.conv_out] + [b.skip_conv for b in self.unet.up_blocks if getattr(b, "skip_conv", None)]
        for conv in convs:
            nn.init.zeros_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def check_input(self, y: Tensor) -> None:
        c = self.config
        if y.ndim != 4:
            raise ValueError(f"network input must be (B, C, H, W), got shape {tuple(y.shape)}")
        if c.estimates > 1 and y.shape[1] != c.channels * c.estimates:
            raise ValueError(
                f"a model.input={c.input} network takes its {c.estimates} estimates stacked on the channel axis "
                f"({c.channels * c.estimates} channels), got {y.shape[1]}; call it through dirac's Reconstructor"
            )
        if c.estimates == 1 and y.shape[1] != c.channels:
            raise ValueError(
                f"network expects {c.channels}-channel images, got {y.shape[1]} channels; convert the images "
                f"(grey <-> RGB) or use a model trained with channels={y.shape[1]}"
            )
        h, w = y.shape[-2:]
        if h % c.downsample_factor or w % c.downsample_factor:
            raise ValueError(
                f"image size {h}x{w} does not fit the network depth: both sides must be multiples of "
                f"{c.downsample_factor} ({len(c.block_out_channels)} levels); crop or resize the images"
            )

    def forward(self, y: Tensor, sigma: Tensor) -> Tensor:
        """``x̂0 = y + σ · U(2y − 1, σ)``; ``sigma`` is a positive ``(B,)`` tensor or a scalar. A two-estimate
        network (``input="tikhonov_gaussian"``) takes ``(B, 2, H, W)`` and adds the residual to channel 0."""
        self.check_input(y)
        sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(y.shape[0])
        s = sigma.view(-1, 1, 1, 1)
        if self.config.preconditioning == "edm":
            norm = (s**2 + SIGMA_DATA**2).sqrt()
            centred = y - 0.5
            raw = self._unet(centred / norm, sigma)
            return 0.5 + SIGMA_DATA**2 / norm**2 * self._base(centred) + s * SIGMA_DATA / norm * raw
        return self._base(y) + self._unet(2.0 * y - 1.0, sigma)

    def _base(self, y: Tensor) -> Tensor:
        """The image the residual is added to: the first of the stacked estimates."""
        return y[:, : self.config.channels]

    def _unet(self, u: Tensor, sigma: Tensor) -> Tensor:
        """The UNet's raw output: UNet2DModel returns raw / σ with fourier embedding, so × σ recovers it. Grey
        inputs are replicated to 3 channels (two grey estimates ``[a, b]`` become ``[a, a, b]``: see
        :func:`stacked_input`) and the output averaged back."""
        u_in = u.expand(-1, 3, -1, -1) if u.shape[1] == 1 else u
        if self.config.estimates == 2:
            u_in = torch.cat([u[:, :1], u], dim=1)
        grey = self.config.channels == 1
        if self.autocast_dtype is None:
            out = self.unet(u_in, sigma).sample
        else:
            with torch.autocast(u.device.type, dtype=self.autocast_dtype):
                out = self.unet(u_in, sigma).sample.float()
        raw = out * sigma.view(-1, 1, 1, 1)
        return raw.mean(1, keepdim=True) if grey else raw


def reads_input_image(key: str) -> bool:
    """Whether a weight convolves the UNet's 3-channel input image: diffusers' ``conv_in`` and the 1x1
    ``skip_conv`` of each skip down-block (which adds the downsampled input at its level)."""
    return key == "unet.conv_in.weight" or (key.startswith("unet.down_blocks.") and key.endswith(".skip_conv.weight"))


def stacked_input(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Weights of a grey single-input network made to read ``[a, a, b]`` exactly as it read ``[a, a, a]``: every
    convolution on the input image gets ``W[:, 0] += W[:, 2]`` and ``W[:, 2] = 0``, so a ``tikhonov_gaussian``
    network fine-tuned from a ``tikhonov`` one starts as that network and learns what the second estimate adds
    (a "net2net"-style function-preserving widening, Chen et al. 2016). Returns a new dict."""
    out = dict(weights)
    for key in filter(reads_input_image, weights):
        w = weights[key].clone()
        if w.shape[1] != 3:
            raise ValueError(f"{key} reads {w.shape[1]} input channels, expected the UNet's 3")
        w[:, 0] += w[:, 2]
        w[:, 2] = 0
        out[key] = w
    return out


def python_floats(module: nn.Module) -> int:
    """Turn NumPy scalar attributes of every submodule into Python floats/ints; returns how many changed.

    diffusers stores e.g. ``output_scale_factor = np.sqrt(2)`` (a ``numpy.float64``) on its ResNet blocks and
    ``rescale_output_factor`` on attention; ``torch.compile``'s guards reject NumPy scalars as module attributes.
    ``x / np.float64(a)`` and ``x / float(a)`` are the same double, so the outputs do not change (bit for bit).
    """
    changed = 0
    for m in module.modules():
        for key, value in list(vars(m).items()):
            if isinstance(value, np.generic) and isinstance(value.item(), (float, int)):
                setattr(m, key, value.item())
                changed += 1
    return changed


def build_ncsnpp(spec: str | dict | NCSNppConfig, **overrides) -> NCSNpp:
    """Build from a preset name (``tiny``/``small``/``wide``/``paper``), a config dict or an ``NCSNppConfig``."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown NCSN++ preset {spec!r}; known: {sorted(PRESETS)}")
        base = PRESETS[spec].to_dict()
    elif isinstance(spec, NCSNppConfig):
        base = spec.to_dict()
    else:
        base = dict(spec)
    base.update(overrides)
    return NCSNpp(NCSNppConfig.from_dict(base))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
