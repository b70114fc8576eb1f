"""The baseline: standard DeepLabv3+ (Chen et al., ECCV 2018) on a timm ResNet.

The paper's Table III baseline. It shares the backbone and ASPP of `encoder.py`
but has no SE and its own decoder: the low-level (stride 4) feature reduced to 48
channels, concatenated with the upsampled ASPP output, two 3x3 convs, a 1x1
classifier, then bilinear upsampling x4 to the input size (see NOTES.md,
"Baseline DeepLabv3+").
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationModel
from .encoder import ASPP, ASPP_RATES_OS8, check_input, conv_bn_relu, create_backbone

LOW_LEVEL_CHANNELS = 48  # DeepLabv3+'s reduction of the stride-4 feature


class DeepLabV3Plus(SegmentationModel):
    """Image [B, 3, H, W] -> logits [B, num_classes, H, W]; H, W divisible by `output_stride`."""

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        output_stride: int = 8,
        num_classes: int = 2,
        channels: int = 256,
    ):
        super().__init__()
        self.output_stride = output_stride
        # timm feature levels of a ResNet: 1 -> stride 4 (layer1), 4 -> last stage (layer4).
        self.backbone, self.pretrained_loaded = create_backbone(
            backbone, output_stride, (1, 4), pretrained, weights_path
        )
        low_channels, top_channels = self.backbone.feature_info.channels()
        rates = tuple(r * 8 // output_stride for r in ASPP_RATES_OS8)
        self.aspp = ASPP(top_channels, channels, rates)
        self.reduce = conv_bn_relu(low_channels, LOW_LEVEL_CHANNELS, 1)
        self.fuse = nn.Sequential(
            conv_bn_relu(channels + LOW_LEVEL_CHANNELS, channels, 3), conv_bn_relu(channels, channels, 3)
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.output_stride, type(self).__name__)
        low, top = self.backbone(x)  # [B, C_low, H/4, W/4], [B, C_top, H/os, W/os]
        top = self.aspp(top)  # -> [B, 256, H/os, W/os]
        top = F.interpolate(top, size=low.shape[-2:], mode="bilinear", align_corners=False)  # -> H/4
        y = self.fuse(torch.cat([top, self.reduce(low)], dim=1))  # [B, 256 + 48, H/4, W/4] -> [B, 256, ...]
        y = self.classifier(y)  # -> [B, num_classes, H/4, W/4]
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)  # -> [B, K, H, W]
