"""CycleGAN networks (Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017): the ResNet generator and the PatchGAN discriminator, the unpaired
baseline of the UEGAN system."""

from __future__ import annotations

import torch
from torch import nn

from enhancekit.registry import register_model


class _ResnetBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Zhu et al., ICCV 2017, after Johnson et al. 2016): c7s1-w, two stride-2 downs,
    ``blocks`` residual blocks at 4w, two transposed-conv ups, c7s1-C; instance norm, reflection padding.
    Outputs map ``tanh`` to [0, 1]. The paper's widths: ``width=64, blocks=9`` (256 px) or ``6`` (128 px)."""

    def __init__(self, in_channels: int = 3, width: int = 64, blocks: int = 9) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.size_multiple = 4
        # Instance norm at the 1/4 scale needs more than one pixel there.
        self.min_size = 8
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for factor in (1, 2):
            layers += [
                nn.Conv2d(width * factor, width * factor * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * factor * 2),
                nn.ReLU(inplace=True),
            ]
        layers += [_ResnetBlock(width * 4) for _ in range(blocks)]
        for factor in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    width * factor, width * factor // 2, 3, stride=2, padding=1, output_padding=1
                ),
                nn.InstanceNorm2d(width * factor // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, in_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The network works in [-1, 1], as the paper's; the toolkit's images are in [0, 1].
        return (self.net(2 * x - 1) + 1) / 2


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al., CVPR 2017), 70x70 receptive field at ``layers=3``: C64-C128-C256-
    C512 (LeakyReLU 0.2, instance norm but on the first), then a 1-channel logit map."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        modules: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        channels = width
        for index in range(1, layers + 1):
            out = width * min(2**index, 8)
            stride = 2 if index < layers else 1
            modules += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out
        modules.append(nn.Conv2d(channels, 1, 4, padding=1))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1)


register_model(
    "cyclegan",
    ResnetGenerator,
    task="enhance",
    width=32,
    blocks=6,
    description="CycleGAN ResNet generator (Zhu et al. 2017), light widths, untrained; pass --weights",
)
register_model(
    "cyclegan-discriminator",
    PatchDiscriminator,
    task="enhance",
    role="discriminator",
    width=32,
    description="PatchGAN 70x70 discriminator (Isola et al. 2017), for CycleGAN training",
)
