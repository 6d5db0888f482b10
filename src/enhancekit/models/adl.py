"""Efficient-UNet denoiser and discriminator of ADL, 2D and 3D through ``spatial_dims``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.models.layers import batch_norm, conv, conv_transpose
from enhancekit.registry import register_model

OUTPUT_ACTIVATIONS = ("sigmoid", "none", "residual")


def conv_bn_relu(spatial_dims: int, c_in: int, c_out: int, kernel_size: int, **kwargs) -> nn.Sequential:
    """Convolution (no bias: the batch norm has one), batch norm, ReLU."""
    return nn.Sequential(
        conv(spatial_dims, c_in, c_out, kernel_size, bias=False, **kwargs),
        batch_norm(spatial_dims, c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU stages plus a shortcut (identity, or a 1x1 conv when the width changes)."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(spatial_dims, c_in, c_out, 3), conv_bn_relu(spatial_dims, c_out, c_out, 3)
        )
        self.shortcut = nn.Identity() if c_in == c_out else conv(spatial_dims, c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def residual_stack(spatial_dims: int, c_in: int, c_out: int, blocks: int) -> nn.Sequential:
    """``blocks`` residual blocks, the first one changing the width from ``c_in`` to ``c_out``."""
    return nn.Sequential(
        *(ResidualBlock(spatial_dims, c_in if i == 0 else c_out, c_out) for i in range(blocks))
    )


class FeatureExtractor(nn.Module):
    """Multi-scale input stage: 7x7 convs with dilations 1, 2 and 4 (each BN-ReLU), concatenated, fused by a
    7x7 conv-BN and added to a 1x1 projection of the input, then ReLU.

    Concatenation rather than a sum lets the fusing conv weigh the three receptive fields (7, 13, 25 pixels)
    separately; it costs one 7x7 conv of three times the width.
    """

    dilations = (1, 2, 4)

    def __init__(self, spatial_dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            conv_bn_relu(spatial_dims, c_in, c_out, 7, dilation=d, padding=3 * d) for d in self.dilations
        )
        self.fuse = nn.Sequential(
            conv(spatial_dims, len(self.dilations) * c_out, c_out, 7, bias=False),
            batch_norm(spatial_dims, c_out),
        )
        self.shortcut = conv(spatial_dims, c_in, c_out, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.relu(self.fuse(features) + self.shortcut(x))


class EfficientUNet(nn.Module):
    """Efficient-UNet of Ghahremani, Khateri, Sierra and Tohka, "Adversarial Distortion Learning for Medical
    Image Denoising" (ADL, 2022): the denoiser, and (with logit heads) the discriminator.

    - Input: a :class:`FeatureExtractor` (dilated 7x7 convs, dilations 1/2/4, concatenated) to ``filters[0]``.
    - Encoder: level ``k`` runs ``blocks_per_level`` residual blocks at ``filters[k]`` and resolution
      ``1 / 2**k``; levels are joined by stride-2 3x3 conv-BN-ReLU; a bridge residual block of ``bridge``
      filters (default ``filters[-1]``) closes the bottom level.
    - Decoder: stride-2 3x3 transposed conv-BN-ReLU up, the encoder features of that level ADDED (the widths
      match, so skips cost no extra channels), residual blocks.
    - Content enhancer: a 3x3 conv-BN-ReLU projection of the raw input to ``filters[0]`` channels is
      concatenated to the input of the last, full-resolution decoder block, so that the image content reaches
      the output without passing through the whole encoder-decoder (the skips only carry extracted features).
    - Heads ("transformers") at x1, x1/2 and x1/4: ``transformer_blocks`` residual blocks, a 1x1 conv to
      ``out_channels`` and ``output_activation`` (``"sigmoid"`` for the denoiser, ``"none"`` for logits).
      ``"residual"`` adds each head's output to the input averaged down to that scale (DnCNN's residual
      learning: the heads predict the negated noise) and zero-starts the heads' last convs, so the untrained
      network is the identity. ADL as published uses ``"sigmoid"``; residual heads learn the same task from
      far fewer samples (``training_logs/gray_denoise/``).

    ``forward(x)`` returns the full-resolution output; ``forward(x, all_scales=True)`` returns
    ``[x1, x1/2, x1/4]``, all of which enter ADL's loss. Input sides must be multiples of ``size_multiple``
    ``= 2 ** (len(filters) - 1)``; the inference engine pads to that and crops back.
    """

    # Dilated 7x7 input convs and four levels give a receptive field far wider than any tile overlap.
    tile_blend = "ramp"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        filters: Sequence[int] = (96, 128, 160, 192),
        bridge: int | None = None,
        spatial_dims: int = 2,
        blocks_per_level: int = 1,
        transformer_blocks: int = 1,
        content_enhancer: bool = True,
        output_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        filters = list(filters)
        if len(filters) < 3:
            raise ValueError(f"three output scales need at least three levels, got filters={filters}")
        if blocks_per_level < 1:
            raise ValueError(f"blocks_per_level must be >= 1, got {blocks_per_level}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        out_channels = in_channels if out_channels is None else out_channels
        bridge = filters[-1] if bridge is None else bridge
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.size_multiple = 2 ** (len(filters) - 1)
        self.output_activation = output_activation
        dims = spatial_dims

        self.extractor = FeatureExtractor(dims, in_channels, filters[0])
        self.encoder = nn.ModuleList(residual_stack(dims, c, c, blocks_per_level) for c in filters)
        self.downsample = nn.ModuleList(
            conv_bn_relu(dims, c_in, c_out, 3, stride=2)
            for c_in, c_out in zip(filters[:-1], filters[1:], strict=True)
        )
        self.bridge = ResidualBlock(dims, filters[-1], bridge)
        # Decoder-side width of each level: the bridge is the bottom one.
        widths = [*filters[:-1], bridge]
        self.upsample = nn.ModuleList(
            nn.Sequential(
                conv_transpose(dims, deep, c, 3, bias=False), batch_norm(dims, c), nn.ReLU(inplace=True)
            )
            for c, deep in zip(widths[:-1], widths[1:], strict=True)
        )
        self.enhancer = conv_bn_relu(dims, in_channels, filters[0], 3) if content_enhancer else None
        first_in = 2 * filters[0] if content_enhancer else filters[0]
        self.decoder = nn.ModuleList(
            residual_stack(dims, first_in if level == 0 else c, c, blocks_per_level)
            for level, c in enumerate(widths[:-1])
        )
        self.heads = nn.ModuleList(
            nn.Sequential(*residual_stack(dims, c, c, transformer_blocks), conv(dims, c, out_channels, 1))
            for c in widths[:3]
        )
        if output_activation == "residual":
            if out_channels != in_channels:
                raise ValueError("residual output needs out_channels == in_channels")
            for head in self.heads:
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)

    def _activate(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.output_activation == "sigmoid":
            return torch.sigmoid(y)
        if self.output_activation == "residual":
            # "area" is average pooling in 2D and 3D alike, matching how the loss shrinks the target.
            return y + (x if y.shape[2:] == x.shape[2:] else F.interpolate(x, size=y.shape[2:], mode="area"))
        return y

    def forward(self, x: torch.Tensor, all_scales: bool = False) -> torch.Tensor | list[torch.Tensor]:
        skips = []
        features = self.extractor(x)
        for level, encode in enumerate(self.encoder):
            features = encode(features)
            if level < len(self.downsample):
                skips.append(features)
                features = self.downsample[level](features)
        features = self.bridge(features)
        # Decoder features per level, deepest first; the bridge output is the bottom level's.
        decoded = [features]
        for level in reversed(range(len(self.decoder))):
            features = self.upsample[level](features) + skips[level]
            if level == 0 and self.enhancer is not None:
                features = torch.cat([features, self.enhancer(x)], dim=1)
            features = self.decoder[level](features)
            decoded.append(features)
        decoded.reverse()
        if not all_scales:
            return self._activate(self.heads[0](decoded[0]), x)
        return [
            self._activate(head(f), x) for head, f in zip(self.heads, decoded[: len(self.heads)], strict=True)
        ]


class ADLDiscriminator(nn.Module):
    """ADL's discriminator (Ghahremani et al., "Adversarial Distortion Learning for Medical Image Denoising",
    2022): an :class:`EfficientUNet` of filters (48, 64, 80, 96) whose three heads give per-pixel real/fake
    logits at x1, x1/2 and x1/4; ``forward`` returns that list, as ``enhancekit.losses.adversarial`` takes.
    """

    def __init__(
        self,
        in_channels: int = 1,
        filters: Sequence[int] = (48, 64, 80, 96),
        bridge: int | None = None,
        spatial_dims: int = 2,
        blocks_per_level: int = 1,
        transformer_blocks: int = 1,
        content_enhancer: bool = True,
    ) -> None:
        super().__init__()
        self.net = EfficientUNet(
            in_channels,
            out_channels=1,
            filters=filters,
            bridge=bridge,
            spatial_dims=spatial_dims,
            blocks_per_level=blocks_per_level,
            transformer_blocks=transformer_blocks,
            content_enhancer=content_enhancer,
            output_activation="none",
        )
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.size_multiple = self.net.size_multiple

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(x, all_scales=True)


# Light widths run on a CPU; the specification's denoiser is filters=(96, 128, 160, 192), one argument away.
LIGHT_FILTERS = (32, 48, 64, 96)
LIGHT_FILTERS_3D = (16, 24, 32, 48)

register_model(
    "adl",
    EfficientUNet,
    task="denoise",
    in_channels=1,
    filters=LIGHT_FILTERS,
    description="ADL Efficient-UNet denoiser (Ghahremani et al. 2022), light, untrained; pass --weights",
)
register_model(
    "adl-3d",
    EfficientUNet,
    task="denoise",
    in_channels=1,
    filters=LIGHT_FILTERS_3D,
    spatial_dims=3,
    description="ADL Efficient-UNet volume denoiser (3D convs), light widths, untrained; pass --weights",
)
register_model(
    "adl-discriminator",
    ADLDiscriminator,
    task="denoise",
    in_channels=1,
    description="ADL discriminator: three-scale per-pixel logits (for GAN training, not inference)",
    role="discriminator",
)
register_model(
    "adl-microscopy",
    EfficientUNet,
    task="denoise",
    weights="adl-microscopy.safetensors",
    in_channels=1,
    filters=LIGHT_FILTERS,
    description="ADL, light, trained on 5 real W2S noisy/clean pairs (configs/adl_microscopy.yaml)",
)
# One network, two trainings: float noise (the published protocol, awgn:S), noisy 8-bit files (awgn-saved:S).
for gray_name, gray_description in (
    ("adl-gray", "ADL, light, residual heads, blind gray AWGN 0-55 (Train400; configs/adl_gray_awgn.yaml)"),
    ("adl-gray-8bit", "adl-gray's network trained for noisy 8-bit files (noise clipped, rounded to 8 bits)"),
):
    register_model(
        gray_name,
        EfficientUNet,
        task="denoise",
        weights=f"{gray_name}.safetensors",
        in_channels=1,
        filters=LIGHT_FILTERS,
        output_activation="residual",
        description=gray_description,
    )
