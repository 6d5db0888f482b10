"""Classical (non-learned) baselines, registered as models so every command can compare against them."""

from __future__ import annotations

import torch
from torch import nn

from enhancekit.data.degradations import imresize
from enhancekit.registry import register_model


class Bicubic(nn.Module):
    """MATLAB-compatible bicubic interpolation (Keys 1981, a = -0.5) by an integer factor ``scale``.

    The standard SR baseline: with MATLAB's ``imresize`` semantics its scores match the published bicubic
    rows of SR papers (e.g. Set5 x3 Y-PSNR 30.39 dB).
    """

    in_channels = None

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = int(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)


register_model(
    "bicubic",
    Bicubic,
    task="sr",
    scale=2,
    description="MATLAB-compatible bicubic upscaling (baseline; scale from --degrade/--scale)",
)
