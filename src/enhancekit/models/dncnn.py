"""DnCNN: residual-learning denoiser."""

from __future__ import annotations

import torch
from torch import nn

from enhancekit.models.layers import batch_norm, conv
from enhancekit.registry import register_model


class DnCNN(nn.Module):
    """DnCNN of Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image
    Denoising" (IEEE TIP 2017).

    ``depth`` convolutions of ``width`` filters (3x3): conv+ReLU, ``depth - 2`` conv+BN+ReLU, conv; the
    network predicts the noise (residual learning) and returns ``x - noise``. DnCNN-S is depth 17, width 64.
    The last convolution starts at zero, so the untrained network is the identity.
    """

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 17,
        width: int = 64,
        kernel_size: int = 3,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if in_channels < 1 or width < 1:
            raise ValueError(f"in_channels and width must be >= 1, got {in_channels} and {width}")
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        layers: list[nn.Module] = [conv(spatial_dims, in_channels, width, kernel_size), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                conv(spatial_dims, width, width, kernel_size, bias=False),
                batch_norm(spatial_dims, width),
                nn.ReLU(inplace=True),
            ]
        noise_head = conv(spatial_dims, width, in_channels, kernel_size)
        # With PyTorch's default init the first predicted residual has a std near 0.4 (on [0, 1] images), far
        # above any noise; Adam at 1e-3 then switched off every ReLU within 100 steps (output = input), and at
        # 1e-4 had not started learning after 100. Starting from "no noise" trains at 1e-3 (probe in
        # training_logs/gray_denoise/dncnn_init_probe.txt).
        nn.init.zeros_(noise_head.weight)
        nn.init.zeros_(noise_head.bias)
        layers.append(noise_head)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


register_model(
    "dncnn",
    DnCNN,
    task="denoise",
    in_channels=1,
    depth=17,
    width=64,
    description="DnCNN-S (Zhang et al. 2017), untrained; pass --weights",
)
register_model(
    "dncnn-gray",
    DnCNN,
    task="denoise",
    weights="dncnn-gray.safetensors",
    in_channels=1,
    depth=17,
    width=64,
    description="DnCNN-17, blind gray AWGN (sigma 0-55, Train400), the same CPU budget as adl-gray",
)
