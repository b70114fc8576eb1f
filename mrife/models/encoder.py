"""The feature extraction module of MRIFE: ResNet backbone + ASPP + SE (paper Sec. III-B).

The same architecture serves as the segmentation encoder, the student and the
teacher (Sec. III-C-2). The backbone comes from timm with dilated last stages, so
at output stride 8 one feature point covers one 8 x 8 pixel block of the input
(the masking module relies on that correspondence).

Every model builds its encoders from one :class:`EncoderSpec`, the encoder's settings
held once (DeepLabv3+ builds smp's encoder from it): a backbone, a band count or an
output stride changes in one place.

Reads top to bottom: input checks, the spec, backbone factory (pretrained / local
weights), ASPP, then the `Encoder` itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import timm
import torch
from timm.layers import SEModule
from torch import nn

from mrife.config import PAPER_ASPP_RATES, ModelConfig, RunConfig

#: ASPP rates at output stride 8 for the paper's 512-px input (DeepLab's choice, see
#: NOTES.md); halved at OS 16. A smaller input takes mrife.config.aspp_rates_for.
ASPP_RATES_OS8 = PAPER_ASPP_RATES
OUTPUT_STRIDES = (8, 16)


def check_input(x: torch.Tensor, stride: int, who: str, bands: int = 3) -> None:
    """Raise a ValueError unless `x` is [B, bands, H, W] with H and W divisible by `stride`.

    The error suggests the padded size, so that the output maps back onto the
    input pixel for pixel (the decoder upsamples by exactly `stride`).
    """
    if x.ndim != 4 or x.shape[1] != bands:
        raise ValueError(f"{who} expects a batch of images [B, {bands}, H, W] (data.bands = {bands}), "
                         f"got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        ph, pw = -(-h // stride) * stride, -(-w // stride) * stride
        raise ValueError(
            f"{who}: input size {h} x {w} (H x W) is not divisible by the output stride {stride}; "
            f"pad the input to {ph} x {pw}, e.g. torch.nn.functional.pad(x, (0, {pw - w}, 0, {ph - h}))"
        )


def check_output_stride(output_stride: int) -> None:
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")


@dataclass(frozen=True)
class EncoderSpec:
    """The encoder's settings, held once: every model builds its encoders from one.

    Attributes:
        backbone: timm model name (the paper: "resnet101").
        output_stride: input pixels per feature point, 8 or 16 (timm dilates the last stages).
        channels: feature width C of the ASPP output (DeepLabv3's 256); at least 8, as
            MRIFE's decoder narrows to C / 4.
        aspp_rates: the ASPP's three atrous rates at output stride 8, in feature points
            (halved at 16: :attr:`atrous_rates`).
        bands: the input's channels (``data.bands``; 3 = RGB).
        pretrained: ImageNet weights via timm (random init with a warning when offline).
        weights_path: a local backbone state dict, timm naming (wins over `pretrained`; RGB only).

    Raises:
        ValueError: an output stride, backbone, width or weights file no encoder can take.
    """

    backbone: str = "resnet18"
    output_stride: int = 8
    channels: int = 256
    aspp_rates: tuple[int, int, int] = ASPP_RATES_OS8
    bands: int = 3
    pretrained: bool = False
    weights_path: str | Path | None = None

    #: field -> the configuration key it is read from (:meth:`from_config`).
    config_keys: ClassVar[dict[str, str]] = {
        "backbone": "model.backbone", "output_stride": "model.output_stride", "channels": "model.channels",
        "aspp_rates": "model.aspp_rates", "bands": "data.bands", "pretrained": "model.pretrained",
        "weights_path": "model.weights_path",
    }

    def __post_init__(self):
        check_output_stride(self.output_stride)
        if not timm.is_model(self.backbone):
            raise ValueError(f"unknown timm backbone {self.backbone!r} (model.backbone); "
                             "try one of timm.list_models('resnet*')")
        if int(self.channels) != self.channels or self.channels < 8:
            raise ValueError(f"channels (model.channels) must be an integer >= 8, got {self.channels!r}")
        if self.weights_path is not None and self.bands != 3:
            raise ValueError(f"weights_path holds RGB weights; with data.bands = {self.bands} use model.pretrained "
                             "(timm adapts the first layer) or no weights")
        object.__setattr__(self, "aspp_rates", tuple(self.aspp_rates))  # a list from YAML or a keyword

    @classmethod
    def from_config(cls, cfg: RunConfig | ModelConfig) -> EncoderSpec:
        """The spec of a run's configuration (``model.*`` and ``data.bands``), or of a
        ``model`` section alone (3 bands)."""
        run = cfg if isinstance(cfg, RunConfig) else RunConfig(model=cfg)
        values = {}
        for field, key in cls.config_keys.items():
            section, name = key.split(".")  # "data.bands" -> run.data.bands
            values[field] = getattr(getattr(run, section), name)
        return cls(**values)

    @property
    def atrous_rates(self) -> tuple[int, ...]:
        """The ASPP's rates at this output stride: (12, 24, 36) -> (6, 12, 18) at 16, as DeepLab does."""
        return tuple(r * 8 // self.output_stride for r in self.aspp_rates)

    def build(self) -> Encoder:
        """The project's encoder of these settings (backbone + ASPP + SE)."""
        return Encoder(self)


def load_backbone_weights(backbone: nn.Module, path: str | Path, name: str) -> None:
    """Load a local state dict (timm naming) into a features-only `backbone`, in place.

    A full timm checkpoint is accepted too: its classifier (e.g. `fc.*` of a ResNet)
    is dropped, since the features-only backbone has none. Any other missing or
    unexpected key is an error naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file {path} does not exist (weights_path of {name})")
    try:
        # timm's reader: .safetensors or torch.load(weights_only=True); unwraps "state_dict"/"model".
        state = timm.models.load_state_dict(str(path))
    except Exception as err:
        raise ValueError(f"cannot read backbone weights from {path}: {err}") from err
    classifier = timm.models.get_pretrained_cfg_value(name, "classifier")
    if classifier:
        state = {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch: another architecture's weights
        raise ValueError(f"backbone weights in {path} do not fit timm '{name}': {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"backbone weights in {path} do not match timm '{name}': "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:3]}). "
            f"Save the file from timm.create_model('{name}').state_dict() (timm naming)."
        )


def create_backbone(spec: EncoderSpec, out_indices: tuple[int, ...]) -> tuple[nn.Module, bool]:
    """Build the timm features-only backbone of `spec`, dilated to its output stride;
    returns (backbone, pretrained_loaded).

    `out_indices` are timm feature levels (for ResNets: 1 -> stride 4, 4 -> last stage).
    `spec.weights_path` (a local state dict) wins over `spec.pretrained`; with `pretrained`
    a failed download (no internet) warns and keeps the random initialization. The first
    conv takes `spec.bands` channels (timm's ``in_chans``: ImageNet weights of the first
    conv are adapted to it the way timm does).
    """
    name = spec.backbone
    kwargs = dict(features_only=True, output_stride=spec.output_stride, out_indices=out_indices, in_chans=spec.bands)
    if spec.weights_path is not None:
        backbone = timm.create_model(name, pretrained=False, **kwargs)
        load_backbone_weights(backbone, spec.weights_path, name)
        return backbone, True
    if spec.pretrained:
        try:
            return timm.create_model(name, pretrained=True, **kwargs), True
        except Exception as err:  # offline: huggingface_hub/httpx/urllib errors, not all OSError
            warnings.warn(
                f"could not get ImageNet weights for backbone '{name}' ({type(err).__name__}: {err}); "
                "continuing with a RANDOMLY INITIALIZED backbone. Pass weights_path=<local state dict> "
                "to use local weights.",
                RuntimeWarning,
                stacklevel=3,
            )
    return timm.create_model(name, pretrained=False, **kwargs), False


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias: BN follows) + BN + ReLU; [B, cin, h, w] -> [B, cout, h, w]."""
    pad = dilation * (kernel - 1) // 2  # keeps the spatial size
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): [B, Cin, h, w] -> [B, channels, h, w].

    Branches: 1x1 conv, three 3x3 atrous convs at `rates`, image pooling; their
    concatenation is projected by 1x1 conv + BN + ReLU + dropout.
    """

    def __init__(self, in_channels: int, channels: int = 256, rates=ASPP_RATES_OS8, dropout: float = 0.1):
        super().__init__()
        if len(rates) != 3:
            raise ValueError(f"ASPP takes three atrous rates, got {tuple(rates)}")
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, channels)]
            + [conv_bn_relu(in_channels, channels, 3, rate) for rate in rates]
        )
        # No BN after the pooled 1x1 map: BN on a 1 x 1 map fails for a training batch of one.
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, channels, 1), nn.ReLU(inplace=True)
        )
        self.project = nn.Sequential(conv_bn_relu(5 * channels, channels), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])  # [B, C, 1, 1] -> [B, C, h, w]
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class Encoder(nn.Module):
    """Backbone + ASPP + SE: image [B, bands, H, W] -> features [B, channels, H/os, W/os].

    Built from an :class:`EncoderSpec` (a backbone name alone stands for ``EncoderSpec(name)``).
    H and W must be divisible by the output stride (8 or 16); otherwise a ValueError
    suggests the padded size. The ASPP's rates are the spec's at output stride 8, halved
    at output stride 16 as DeepLab does. Attributes `out_channels` and `output_stride`
    are what a decoder is built from; `pretrained_loaded` tells whether backbone weights
    were loaded.
    """

    def __init__(self, spec: EncoderSpec | str = EncoderSpec(), aspp_dropout: float = 0.1):
        super().__init__()
        spec = EncoderSpec(spec) if isinstance(spec, str) else spec
        self.spec = spec
        self.output_stride = spec.output_stride
        self.out_channels = spec.channels
        self.bands = spec.bands
        self.backbone, self.pretrained_loaded = create_backbone(spec, (4,))
        self.aspp = ASPP(self.backbone.feature_info.channels()[-1], spec.channels, spec.atrous_rates, aspp_dropout)
        self.se = SEModule(spec.channels, rd_ratio=1 / 16)  # reduction 16, sigmoid gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.output_stride, type(self).__name__, self.bands)
        (top,) = self.backbone(x)  # [B, bands, H, W] -> [B, C_backbone, H/os, W/os]
        return self.se(self.aspp(top))  # -> [B, channels, H/os, W/os]
