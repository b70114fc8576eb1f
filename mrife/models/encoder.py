"""The feature extraction module of MRIFE: ResNet backbone + ASPP + SE (paper Sec. III-B).

The same architecture serves as the segmentation encoder, the student and the
teacher (Sec. III-C-2). The backbone comes from timm with dilated last stages, so
at output stride 8 one feature point covers one 8 x 8 pixel block of the input
(the masking module relies on that correspondence).

Reads top to bottom: input check, backbone factory (pretrained / local weights),
ASPP, then the `Encoder` itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import timm
import torch
from timm.layers import SEModule
from torch import nn

from mrife.config import PAPER_ASPP_RATES

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


def create_backbone(
    name: str,
    output_stride: int,
    out_indices: tuple[int, ...],
    pretrained: bool = False,
    weights_path: str | Path | None = None,
    bands: int = 3,
) -> tuple[nn.Module, bool]:
    """Build a timm features-only backbone with dilated stages; returns (backbone, pretrained_loaded).

    `out_indices` are timm feature levels (for ResNets: 1 -> stride 4, 4 -> last stage).
    `weights_path` (a local state dict) wins over `pretrained`; with `pretrained=True`
    a failed download (no internet) warns and keeps the random initialization. `bands`
    is the input's channel count (timm's ``in_chans``: ImageNet weights of the first conv
    are adapted to it the way timm does).
    """
    check_output_stride(output_stride)
    if not timm.is_model(name):
        raise ValueError(f"unknown timm backbone {name!r}; try one of timm.list_models('resnet*')")
    kwargs = dict(features_only=True, output_stride=output_stride, out_indices=out_indices, in_chans=bands)
    if weights_path is not None:
        if bands != 3:
            raise ValueError(f"weights_path holds RGB weights; with data.bands = {bands} use model.pretrained "
                             "(timm adapts the first layer) or no weights")
        backbone = timm.create_model(name, pretrained=False, **kwargs)
        load_backbone_weights(backbone, weights_path, name)
        return backbone, True
    if pretrained:
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
        if int(channels) != channels or channels < 8:  # MRIFE's decoder narrows to channels / 4
            raise ValueError(f"channels (model.channels) must be an integer >= 8, got {channels!r}")
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

    H and W must be divisible by `output_stride` (8 or 16); otherwise a ValueError
    suggests the padded size. `aspp_rates` are the rates at output stride 8, halved
    at output stride 16 as DeepLab does. `pretrained=True` asks timm for ImageNet
    weights and falls back to random init with a warning when offline;
    `weights_path` loads a local backbone state dict instead (timm naming).
    Attribute `pretrained_loaded` tells whether backbone weights were loaded.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        output_stride: int = 8,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        channels: int = 256,
        aspp_rates: tuple[int, int, int] = ASPP_RATES_OS8,
        aspp_dropout: float = 0.1,
        bands: int = 3,
    ):
        super().__init__()
        check_output_stride(output_stride)
        self.output_stride = output_stride
        self.out_channels = channels
        self.bands = bands
        self.backbone, self.pretrained_loaded = create_backbone(
            backbone, output_stride, (4,), pretrained, weights_path, bands
        )
        rates = tuple(r * 8 // output_stride for r in aspp_rates)  # (12, 24, 36) -> (6, 12, 18) at OS 16
        self.aspp = ASPP(self.backbone.feature_info.channels()[-1], channels, rates, aspp_dropout)
        self.se = SEModule(channels, rd_ratio=1 / 16)  # reduction 16, sigmoid gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.output_stride, type(self).__name__, self.bands)
        (top,) = self.backbone(x)  # [B, bands, H, W] -> [B, C_backbone, H/os, W/os]
        return self.se(self.aspp(top))  # -> [B, channels, H/os, W/os]
