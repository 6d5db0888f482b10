"""UEGAN-style unsupervised enhancer: generator with a Global Attention Module and CBAM local feature
enhancement, and a multi-scale discriminator.

After Ni, Yang, Wang, Liu, Kwong, "Towards Unsupervised Deep Image Enhancement with Generative Adversarial
Network", IEEE TIP 2020 (UEGAN), with the project's changes: the local feature enhancement (LFE) is CBAM
(Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018), upsampling is by transposed
convolutions, and the output is a residual on the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from enhancekit.registry import register_model

NORMS = ("batch", "instance", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def conv_norm_act(
    c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, norm: str = "batch"
) -> nn.Sequential:
    """Convolution, normalisation, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=norm == "none"),
        _norm(norm, c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class GlobalAttentionModule(nn.Module):
    """Global lighting and colour context: parallel 7x7 and 5x5 convolutions, concatenated and fused, gated
    channel-wise by the feature map's per-channel mean and standard deviation passed through a 1x1 bottleneck
    (UEGAN's global statistics), added to the module's input (residual)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.wide = nn.Conv2d(channels, channels, 7, padding=3)
        self.medium = nn.Conv2d(channels, channels, 5, padding=2)
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)
        )
        hidden = max(channels // reduction, 4)
        self.statistics = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = F.leaky_relu(torch.cat([self.wide(x), self.medium(x)], dim=1), 0.2)
        features = self.fuse(context)
        # The population std (correction=0) stays defined on the 1x1 maps of images of 8 px or less.
        stats = torch.cat(
            [x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), keepdim=True, correction=0)], dim=1
        )
        return x + features * self.statistics(stats)


class ChannelAttention(nn.Module):
    """CBAM channel attention: global average and max pooling through a shared MLP, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(pooled)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: mean and max over channels, concatenated, a 7x7 conv, sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class LocalFeatureEnhancement(nn.Module):
    """LFE after CBAM: a conv, channel attention then spatial attention, added to the input."""

    def __init__(self, channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3, norm=norm), ChannelAttention(channels), SpatialAttention()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UEGANGenerator(nn.Module):
    """UEGAN-style generator (Ni et al., IEEE TIP 2020) with CBAM local feature enhancement.

    - Stem: two conv-norm-LeakyReLU layers at ``base_width``.
    - Encoder: ``depth`` stride-2 conv-norm-LeakyReLU stages doubling the width.
    - Bottleneck: ``global_blocks`` Global Attention Modules (global lighting and colour).
    - Decoder: per level a transposed conv (x2) with norm and LeakyReLU, the encoder skip added, and a
      :class:`LocalFeatureEnhancement` (CBAM) when ``local_enhancement``.
    - Output: a 3x3 conv to ``in_channels`` and ``tanh``, added to the input (the generator learns a
      correction; the conv starts at zero, so an untrained generator is the identity).

    Any input size: the inference engine pads to ``size_multiple = 2 ** depth`` and crops back.
    """

    tile_blend = "ramp"  # the global module sees the whole tile: blend tiles instead of cutting them

    def __init__(
        self,
        in_channels: int = 3,
        base_width: int = 32,
        depth: int = 3,
        global_blocks: int = 2,
        local_enhancement: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.in_channels = in_channels
        self.size_multiple = 2**depth
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.stem = nn.Sequential(
            conv_norm_act(in_channels, base_width, 3, norm=norm),
            conv_norm_act(base_width, base_width, 3, norm=norm),
        )
        self.down = nn.ModuleList(
            conv_norm_act(c_in, c_out, 3, stride=2, norm=norm)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.global_attention = nn.Sequential(
            *(GlobalAttentionModule(widths[-1]) for _ in range(global_blocks))
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(c_deep, c, 4, stride=2, padding=1, bias=norm == "none"),
                _norm(norm, c),
                nn.LeakyReLU(0.2, inplace=True),
            )
            for c, c_deep in zip(widths[:-1], widths[1:], strict=True)
        )
        self.local = nn.ModuleList(
            LocalFeatureEnhancement(c, norm) if local_enhancement else nn.Identity() for c in widths[:-1]
        )
        self.head = nn.Conv2d(base_width, in_channels, 3, padding=1)
        # Zero-initialised: an untrained generator is exactly the identity, so unpaired training starts from
        # the input image instead of noise, and the identity loss holds from the first step.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stem(x)
        skips = []
        for down in self.down:
            skips.append(features)
            features = down(features)
        features = self.global_attention(features)
        for level in reversed(range(len(self.up))):
            features = self.local[level](self.up[level](features) + skips[level])
        return x + torch.tanh(self.head(features))


class MultiScaleDiscriminator(nn.Module):
    """Multi-scale discriminator in the manner of UEGAN's: a tower of stride-2 spectral-normalised convs with
    a prediction head after each of the last ``scales`` stages, so the heads judge realism from local
    patches (early, small receptive field) up to global appearance (deep, the whole crop). ``forward``
    returns the list of logit maps, finest first, as ``enhancekit.losses.adversarial`` takes them."""

    def __init__(
        self,
        in_channels: int = 3,
        base_width: int = 32,
        stages: int = 5,
        scales: int = 3,
        max_width: int = 256,
    ) -> None:
        super().__init__()
        if not 1 <= scales <= stages:
            raise ValueError(f"need 1 <= scales <= stages, got scales={scales}, stages={stages}")
        self.in_channels = in_channels
        self.size_multiple = 2**stages
        widths = [min(base_width * 2**i, max_width) for i in range(stages)]
        self.stages = nn.ModuleList()
        c_in = in_channels
        for width in widths:
            self.stages.append(
                nn.Sequential(
                    spectral_norm(nn.Conv2d(c_in, width, 4, stride=2, padding=1)),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            c_in = width
        self.heads = nn.ModuleList(
            spectral_norm(nn.Conv2d(w, 1, 3, padding=1)) for w in widths[stages - scales :]
        )
        self.first_head = stages - scales

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        logits = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index >= self.first_head:
                logits.append(self.heads[index - self.first_head](x))
        return logits


# Light widths for CPUs; base_width=32, global_blocks=2 is closer to UEGAN's size (13 M parameters).
LIGHT = {"base_width": 16, "depth": 3, "global_blocks": 1}

register_model(
    "uegan",
    UEGANGenerator,
    task="enhance",
    description="UEGAN-style generator: global attention + CBAM local enhancement, untrained; pass --weights",
    **LIGHT,
)
register_model(
    "uegan-fivek",
    UEGANGenerator,
    task="enhance",
    weights="uegan-fivek.safetensors",
    description="UEGAN-style, light, trained unpaired on FiveK inputs vs Expert C (configs/uegan_fivek.yaml)",
    **LIGHT,
)
register_model(
    "uegan-no-lfe",
    UEGANGenerator,
    task="enhance",
    local_enhancement=False,
    description="UEGAN-style generator without the CBAM local enhancement (ablation), untrained",
    **LIGHT,
)
register_model(
    "uegan-discriminator",
    MultiScaleDiscriminator,
    task="enhance",
    role="discriminator",
    description="UEGAN multi-scale discriminator: spectral norm, one head per scale (GAN training only)",
)
