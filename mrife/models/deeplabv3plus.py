"""The baseline: segmentation_models_pytorch's DeepLabV3Plus on the project's timm ResNet.

The paper's Table III baseline is DeepLabv3+ (Chen et al., ECCV 2018). This is smp's
``DeepLabV3Plus``, the canonical atrous-separable design (separable ASPP and decoder
convs, stride-4 feature reduced to 48 channels) that users actually run, wrapped in the
project's :class:`SegmentationModel` contract and built from the same
:class:`~mrife.models.encoder.EncoderSpec` as the other models. Its encoder is smp's
``tu-`` (timm universal) encoder, i.e. the same timm ResNet, with the same dilated stages,
as the rest of the project, at the run's output stride (8 by default, 16 when asked). The
ASPP rates are passed explicitly, as the other models' encoders take them (``model.aspp_rates``):
DeepLab's (12, 24, 36) at output stride 8 for the paper's input, halved at 16 (smp's
default is (12, 24, 36) whatever the stride), scaled down for a smaller input.

Why smp rather than a hand-written DeepLabv3+: it is the baseline users run; the
hand-written one (dense ASPP and decoder convs) had 16.6 M parameters vs smp's 12.3 M at
the cpu batch (resnet18, 256 channels), and its training step took 1.53x as long.

Weights: the spec's ``weights_path`` loads a local timm state dict into the timm model inside smp's
encoder with :func:`~mrife.models.encoder.load_backbone_weights`; its ``pretrained`` asks
timm for ImageNet weights through :func:`~mrife.models.encoder.create_backbone` (offline:
a RuntimeWarning, and the random initialization is kept).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from mrife.config import RunConfig

from .base import SegmentationModel
from .encoder import EncoderSpec, check_input, create_backbone, load_backbone_weights

#: timm feature levels smp's encoder takes from a ResNet at depth 5 (strides 2, 4, 8, 16, 32 undilated).
SMP_OUT_INDICES = (0, 1, 2, 3, 4)


class DeepLabV3Plus(SegmentationModel):
    """Image [B, bands, H, W] -> logits [B, num_classes, H, W]; H, W divisible by the output stride.

    The spec's `channels` is smp's ``decoder_channels``: the width of the ASPP and of the
    decoder; its `aspp_rates` the ASPP's atrous rates at output stride 8 (halved at 16).
    The smp model is ``self.net``; its timm features model is ``self.net.encoder.model``.
    Attribute `pretrained_loaded` tells whether backbone weights were loaded.
    """

    config_keys = tuple(EncoderSpec.config_keys.values())

    def __init__(self, encoder: EncoderSpec = EncoderSpec(), num_classes: int = 2):
        super().__init__()
        self.output_stride, self.bands = encoder.output_stride, encoder.bands
        self.net = smp.DeepLabV3Plus(
            encoder_name="tu-" + encoder.backbone,
            encoder_weights=None,  # weights are handled below, as the other models do
            encoder_output_stride=encoder.output_stride,
            in_channels=encoder.bands,
            decoder_channels=int(encoder.channels),
            decoder_atrous_rates=encoder.atrous_rates,
            classes=num_classes,
        )
        features = self.net.encoder.model  # timm features_only ResNet, dilated to the output stride
        self.pretrained_loaded = False
        if encoder.weights_path is not None:  # wins over `pretrained`, as in create_backbone
            load_backbone_weights(features, encoder.weights_path, encoder.backbone)
            self.pretrained_loaded = True
        elif encoder.pretrained:
            downloaded, self.pretrained_loaded = create_backbone(encoder, SMP_OUT_INDICES)
            # offline: warns "RANDOMLY INITIALIZED" and returns a random model
            if self.pretrained_loaded:
                features.load_state_dict(downloaded.state_dict())  # strict: the same architecture

    @classmethod
    def from_config(cls, cfg: RunConfig) -> DeepLabV3Plus:
        return cls(EncoderSpec.from_config(cfg))

    def cam_layers(self) -> dict[str, nn.Module]:
        """``aspp`` (smp's ASPP stage: its output at the output stride, the layer that matches
        the other models' encoder outputs) and ``decoder`` (its stride-4 fusion block, just
        before the segmentation head)."""
        return {"aspp": self.net.decoder.aspp, "decoder": self.net.decoder.block2}

    @property
    def classifier(self) -> nn.Conv2d:
        """The final 1x1 conv (smp's segmentation head, before its x4 upsampling)."""
        return self.net.segmentation_head[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.output_stride, type(self).__name__, self.bands)
        return self.net(x)  # [B, bands, H, W] -> [B, num_classes, H, W]
