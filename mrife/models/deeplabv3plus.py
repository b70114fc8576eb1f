"""The baseline: segmentation_models_pytorch's DeepLabV3Plus on the project's timm ResNet.

The paper's Table III baseline is DeepLabv3+ (Chen et al., ECCV 2018). This is smp's
``DeepLabV3Plus``, the canonical atrous-separable design (separable ASPP and decoder
convs, stride-4 feature reduced to 48 channels) that users actually run, wrapped in the
project's :class:`SegmentationModel` contract. Its encoder is smp's ``tu-`` (timm
universal) encoder, i.e. the same timm ResNet, with the same dilated stages, as the rest
of the project, at the run's output stride (8 by default, 16 when asked). The ASPP rates
are passed explicitly, as the other models' encoders take them (``model.aspp_rates``):
DeepLab's (12, 24, 36) at output stride 8 for the paper's input, halved at 16 (smp's
default is (12, 24, 36) whatever the stride), scaled down for a smaller input.

Why smp rather than a hand-written DeepLabv3+: it is the baseline users run; the
hand-written one (dense ASPP and decoder convs) had 16.6 M parameters vs smp's 12.3 M at
the cpu batch (resnet18, 256 channels), and its training step took 1.53x as long.

Weights: ``weights_path`` loads a local timm state dict into the timm model inside smp's
encoder with :func:`~mrife.models.encoder.load_backbone_weights`; ``pretrained=True`` asks
timm for ImageNet weights through :func:`~mrife.models.encoder.create_backbone` (offline:
a RuntimeWarning, and the random initialization is kept).
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import timm
import torch
from torch import nn

from .base import SegmentationModel
from .encoder import ASPP_RATES_OS8, check_input, check_output_stride, create_backbone, load_backbone_weights

#: timm feature levels smp's encoder takes from a ResNet at depth 5 (strides 2, 4, 8, 16, 32 undilated).
SMP_OUT_INDICES = (0, 1, 2, 3, 4)


class DeepLabV3Plus(SegmentationModel):
    """Image [B, 3, H, W] -> logits [B, num_classes, H, W]; H, W divisible by `output_stride`.

    `channels` is smp's ``decoder_channels``: the width of the ASPP and of the decoder;
    `aspp_rates` its atrous rates at output stride 8 (halved at 16).
    The smp model is ``self.net``; its timm features model is ``self.net.encoder.model``.
    Attribute `pretrained_loaded` tells whether backbone weights were loaded.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        output_stride: int = 8,
        num_classes: int = 2,
        channels: int = 256,
        bands: int = 3,
        aspp_rates: tuple[int, int, int] = ASPP_RATES_OS8,
    ):
        super().__init__()
        check_output_stride(output_stride)
        if not timm.is_model(backbone):
            raise ValueError(f"unknown timm backbone {backbone!r}; try one of timm.list_models('resnet*')")
        if int(channels) != channels or channels < 8:  # same bound as the other models' ASPP
            raise ValueError(f"channels (model.channels) must be an integer >= 8, got {channels!r}")
        self.output_stride, self.bands = output_stride, bands
        rates = tuple(r * 8 // output_stride for r in aspp_rates)  # (12, 24, 36) -> (6, 12, 18) at OS 16
        self.net = smp.DeepLabV3Plus(
            encoder_name="tu-" + backbone,
            encoder_weights=None,  # weights are handled below, as the other models do
            encoder_output_stride=output_stride,
            in_channels=bands,
            decoder_channels=int(channels),
            decoder_atrous_rates=rates,
            classes=num_classes,
        )
        features = self.net.encoder.model  # timm features_only ResNet, dilated to `output_stride`
        self.pretrained_loaded = False
        if weights_path is not None:  # wins over `pretrained`, as in create_backbone
            if bands != 3:
                raise ValueError(f"weights_path holds RGB weights; with data.bands = {bands} use model.pretrained "
                                 "(timm adapts the first layer) or no weights")
            load_backbone_weights(features, weights_path, backbone)
            self.pretrained_loaded = True
        elif pretrained:
            downloaded, self.pretrained_loaded = create_backbone(
                backbone, output_stride, SMP_OUT_INDICES, pretrained=True, bands=bands
            )  # offline: warns "RANDOMLY INITIALIZED" and returns a random model
            if self.pretrained_loaded:
                features.load_state_dict(downloaded.state_dict())  # strict: the same architecture

    @property
    def classifier(self) -> nn.Conv2d:
        """The final 1x1 conv (smp's segmentation head, before its x4 upsampling)."""
        return self.net.segmentation_head[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.output_stride, type(self).__name__, self.bands)
        return self.net(x)  # [B, bands, H, W] -> [B, num_classes, H, W]
