"""Residual-attention UNet for paired low-light enhancement."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.registry import register_model


class ResidualDenseBlock(nn.Module):
    """Three 3x3 conv + batch-norm stages (ReLU and dropout after the first two), plus the block's input."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for stage in range(3):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
            if stage < 2:
                layers += [nn.ReLU(inplace=True), nn.Dropout2d(dropout)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentionBlock(nn.Module):
    """The specification's attention: 1x1 projections f and g to C/8 channels (BN + ReLU) and h to C;
    ``softmax(f * g)`` mapped back to C channels by a 1x1 conv, multiplied with h, added to the input.

    The softmax runs over channels at each pixel, so the block stays local (a spatial softmax would tie every
    pixel to every other one, cost memory quadratic in the image size, and make tiled inference inexact).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)

        def projection(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)
            )

        self.f, self.g = projection(inner), projection(inner)
        self.h = nn.Conv2d(channels, channels, 1)
        self.expand = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.f(x) * self.g(x), dim=1)
        return x + self.expand(weights) * self.h(x)


class LowLightUNet(nn.Module):
    """UNet with residual dense blocks and attention for low-light enhancement, as the project's
    specification describes it (after Ronneberger et al., "U-Net", MICCAI 2015).

    Encoder: one level per entry of ``widths`` (default: ``depth`` levels of ``base_width * 2 ** level``
    filters); each level is a 3x3 conv + ReLU, a residual dense block and
    (if ``attention``) an attention block, and levels are joined by 2x2 stride-2 convolutions. Decoder:
    nearest x2 upsampling, concatenation with the encoder level's features, 3x3 conv + ReLU and a residual
    dense block; a 1x1 conv to ``in_channels`` and a sigmoid give the enhanced image. The specification's
    network is ``widths=(64, 128, 256, 512, 1024)``; lighter ones (e.g. ``(16, 32, 64, 128, 256)``) run on a
    CPU. Input sides must be multiples of ``2 ** (len(widths) - 1)`` (``size_multiple``); the inference
    engine pads any image to that and crops back.
    """

    # The receptive field spans hundreds of pixels, far beyond any tile overlap: feathering hides the seams.
    tile_blend = "ramp"

    def __init__(
        self,
        in_channels: int = 3,
        base_width: int = 64,
        depth: int = 5,
        widths: Sequence[int] | None = None,
        dropout: float = 0.3,
        attention: bool = True,
    ) -> None:
        super().__init__()
        widths = list(widths) if widths is not None else [base_width * 2**level for level in range(depth)]
        if len(widths) < 2:
            raise ValueError("the UNet needs at least two levels")
        self.in_channels = in_channels
        self.size_multiple = 2 ** (len(widths) - 1)

        def level(c_in: int, c_out: int) -> nn.Sequential:
            parts: list[nn.Module] = [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                ResidualDenseBlock(c_out, dropout),
            ]
            if attention:
                parts.append(AttentionBlock(c_out))
            return nn.Sequential(*parts)

        self.encoder = nn.ModuleList(
            level(c_in, c_out) for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 2, stride=2) for c in widths[:-1])
        self.decoder = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(deep + c, c, 3, padding=1), nn.ReLU(inplace=True), ResidualDenseBlock(c, dropout)
            )
            for c, deep in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = nn.Conv2d(widths[0], in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, encode in enumerate(self.encoder):
            x = encode(x)
            if index < len(self.downsample):
                skips.append(x)
                x = self.downsample[index](x)
        for decode, skip in zip(reversed(self.decoder), reversed(skips), strict=True):
            x = decode(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], dim=1))
        return torch.sigmoid(self.head(x))


register_model(
    "lowlight-unet-spec",
    LowLightUNet,
    task="lowlight",
    description="Residual-attention UNet at the specification's widths 64-1024, untrained; pass --weights",
)
register_model(
    "lowlight-unet",
    LowLightUNet,
    task="lowlight",
    weights="lowlight-unet.safetensors",
    description="Residual-attention UNet 16-256, trained on 32 LOL pairs (configs/lowlight_unet.yaml)",
    base_width=16,
    depth=5,
    dropout=0.3,
    attention=True,
)
