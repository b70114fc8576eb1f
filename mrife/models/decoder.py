"""The decoder of MRIFE: two stacked transposed convolutions (paper Sec. III-D).

Each stage is ConvTranspose2d + BatchNorm + ReLU + Dropout; a 1x1 classifier
follows. The two stages recover exactly the input resolution: x4 then x2 at
output stride 8, x4 then x4 at output stride 16. The paper (and its reference
[40]) gives no channel widths; the project halves the width at each stage
(256 -> 128 -> 64 for the usual 256-channel encoder).
"""

from __future__ import annotations

import torch
from torch import nn

#: upsampling factor of each transposed convolution, by output stride.
STAGE_FACTORS = {8: (4, 2), 16: (4, 4)}


def _up_stage(cin: int, cout: int, factor: int, dropout: float) -> nn.Sequential:
    # kernel 2f, stride f, padding f/2: output size exactly f * input, and kernels
    # overlap (a kernel equal to the stride gives blocky, checkerboard outputs).
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 2 * factor, stride=factor, padding=factor // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


class Decoder(nn.Module):
    """Features [B, in_channels, h, w] -> logits [B, num_classes, h*os, w*os].

    `hidden` are the two stages' widths, by default half and a quarter of `in_channels`.
    """

    def __init__(
        self,
        in_channels: int = 256,
        num_classes: int = 2,
        output_stride: int = 8,
        dropout: float = 0.1,
        hidden: tuple[int, int] | None = None,
    ):
        super().__init__()
        if output_stride not in STAGE_FACTORS:
            raise ValueError(f"output_stride must be one of {tuple(STAGE_FACTORS)}, got {output_stride!r}")
        f1, f2 = STAGE_FACTORS[output_stride]
        hidden = hidden or (in_channels // 2, in_channels // 4)
        self.output_stride = output_stride
        self.up1 = _up_stage(in_channels, hidden[0], f1, dropout)
        self.up2 = _up_stage(hidden[0], hidden[1], f2, dropout)
        self.classifier = nn.Conv2d(hidden[1], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up1(x)  # [B, Cin, h, w] -> [B, hidden0, f1*h, f1*w]
        x = self.up2(x)  # -> [B, hidden1, os*h, os*w]
        return self.classifier(x)  # -> [B, num_classes, os*h, os*w]
