"""VGG19 convolutional features, laid out like torchvision's so its ImageNet checkpoint loads unchanged.

torchvision is not a dependency: :class:`VGG19Features` rebuilds ``torchvision.models.vgg19().features``
with the same ``features.<index>.weight`` names, so that
:func:`enhancekit.pretrained.load_vgg19_features` loads the standard checkpoint ``vgg19-dcbb9e9d.pth``.
"""

from __future__ import annotations

import torch
from torch import nn

from enhancekit.errors import EnhanceKitError

# Convolutions per block of configurations "E" (VGG19) and "D" (VGG16); a 2x2 max-pool closes each block.
VGG19_DEPTHS = (2, 2, 4, 4, 4)
VGG16_DEPTHS = (2, 2, 3, 3, 3)
_BLOCK_WIDTHS = (64, 128, 256, 512, 512)
# The statistics torchvision's ImageNet models were trained with, on RGB in [0, 1].
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_layout(depths: tuple[int, ...]) -> tuple[tuple[tuple[int, int] | str, ...], dict[str, int]]:
    """torchvision's ``features`` Sequential as (in, out) channels of a 3x3 convolution, ``"relu"`` or
    ``"pool"``, and the index of each ``conv{block}_{i}`` / ``relu{block}_{i}`` / ``pool{block}`` in it."""
    layout: list[tuple[int, int] | str] = []
    names: dict[str, int] = {}
    in_channels = 3
    for block, (depth, width) in enumerate(zip(depths, _BLOCK_WIDTHS, strict=True), start=1):
        for i in range(1, depth + 1):
            names[f"conv{block}_{i}"] = len(layout)
            layout.append((in_channels, width))
            names[f"relu{block}_{i}"] = len(layout)
            layout.append("relu")
            in_channels = width
        names[f"pool{block}"] = len(layout)
        layout.append("pool")
    return tuple(layout), names


_LAYOUTS = {depths: _build_layout(depths) for depths in (VGG19_DEPTHS, VGG16_DEPTHS)}
VGG19_LAYERS = _LAYOUTS[VGG19_DEPTHS][1]


def _make_layer(spec: tuple[int, int] | str) -> nn.Module:
    if spec == "relu":
        return nn.ReLU(inplace=True)
    if spec == "pool":
        return nn.MaxPool2d(2, 2)
    in_channels, out_channels = spec
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class VGGFeatures(nn.Module):
    """The convolutional part of a VGG network (Simonyan and Zisserman, ICLR 2015) with ``depths``
    convolutions per block, up to ``layer``; torchvision's parameter names (see :class:`VGG19Features`)."""

    def __init__(self, depths: tuple[int, ...], layer: str, normalize_input: bool = True) -> None:
        super().__init__()
        layout, names = _LAYOUTS[tuple(depths)]
        if layer not in names:
            raise EnhanceKitError(
                f"unknown VGG layer {layer!r}; use relu<block>_<i>, conv<block>_<i> or pool<b>"
            )
        self.layer = layer
        self.normalize_input = normalize_input
        # Only the layers up to ``layer`` are built: later ones would cost memory and never run.
        self.features = nn.Sequential(*(_make_layer(spec) for spec in layout[: names[layer] + 1]))
        # Non-persistent: the statistics are constants, not part of (or expected in) any checkpoint.
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise EnhanceKitError(f"VGG features need 1- or 3-channel images, got {x.shape[1]} channels")
        if self.normalize_input:
            x = (x - self.mean) / self.std
        return self.features(x)

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, normalize_input={self.normalize_input}"


class VGG19Features(VGGFeatures):
    """The convolutional part of VGG19 (configuration "E") of Simonyan and Zisserman, "Very Deep
    Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015), as used for perceptual losses
    (Johnson, Alahi and Fei-Fei, ECCV 2016; Ledig et al., CVPR 2017).

    Parameter names match torchvision's ``vgg19().features`` (``features.0.weight`` ...). The network stops
    at ``layer`` (``relu5_4`` by default; any ``relu{block}_{i}`` or, for pre-activation features as in
    ESRGAN, ``conv{block}_{i}``), so no layer past it is built or run. With ``normalize_input`` the input is
    taken as RGB in [0, 1] and standardised with the ImageNet mean and std the weights were trained with;
    one-channel (gray) inputs are repeated to three channels. Weights start with PyTorch's default
    initialisation: load them with :func:`enhancekit.pretrained.load_vgg19_features`.
    """

    def __init__(self, layer: str = "relu5_4", normalize_input: bool = True) -> None:
        super().__init__(VGG19_DEPTHS, layer, normalize_input)
