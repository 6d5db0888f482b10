"""SRCNN: three-layer super-resolution CNN on the bicubic-upscaled image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from enhancekit.data.degradations import imresize
from enhancekit.registry import register_model


class SRCNN(nn.Module):
    """SRCNN of Dong, Loy, He and Tang, "Image Super-Resolution Using Deep Convolutional Networks"
    (IEEE TPAMI 2016).

    The input is the low-resolution image; the network upscales it with MATLAB-exact bicubic interpolation
    (as the paper does before the network) and refines it with three 'same'-padded convolutions: patch
    extraction (``kernel_sizes[0]``, ``widths[0]`` filters, ReLU), non-linear mapping (``kernel_sizes[1]``,
    ``widths[1]``, ReLU) and reconstruction (``kernel_sizes[2]``, ``in_channels`` filters, linear). The
    project's specification is 9-3-5 with 64/32 filters; the paper's 9-1-5 and 9-5-5 are one argument away.
    Weights are Glorot-uniform initialised, biases zero. ``residual=True`` predicts only the correction to
    the bicubic image (as VDSR does), with the last layer zero-initialised so training starts from the
    bicubic result; it trains faster.
    """

    def __init__(
        self,
        scale: int = 3,
        in_channels: int = 3,
        kernel_sizes: Sequence[int] = (9, 3, 5),
        widths: Sequence[int] = (64, 32),
        residual: bool = False,
    ) -> None:
        super().__init__()
        if len(kernel_sizes) != 3 or len(widths) != 2:
            raise ValueError("SRCNN takes three kernel sizes and two widths")
        if scale < 1 or scale != int(scale):
            raise ValueError(f"scale must be a whole number >= 1, got {scale}")
        self.scale = int(scale)
        self.in_channels = in_channels
        self.residual = residual
        k1, k2, k3 = kernel_sizes
        w1, w2 = widths
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w1, k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w1, w2, k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w2, in_channels, k3, padding=k3 // 2),
        )
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        if residual:
            # A zero correction at the start: training begins from the bicubic result instead of noise.
            nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upscaled = imresize(x, scale=self.scale) if self.scale > 1 else x
        refined = self.body(upscaled)
        return upscaled + refined if self.residual else refined


register_model(
    "srcnn",
    SRCNN,
    task="sr",
    scale=3,
    description="SRCNN (Dong et al. 2016), 9-3-5 64/32, untrained; pass --weights",
)

for _scale in (2, 3, 4):
    register_model(
        f"srcnn-x{_scale}",
        SRCNN,
        task="sr",
        weights=f"srcnn-x{_scale}.safetensors",
        description=f"SRCNN 9-5-5 residual, x{_scale}, trained on T91 (configs/srcnn_x{_scale}.yaml)",
        scale=_scale,
        kernel_sizes=(9, 5, 5),
        widths=(64, 32),
        residual=True,
    )
