"""VGG19 convolutional features, laid out like torchvision's so its ImageNet checkpoint loads unchanged.

torchvision is not a dependency: :class:`VGG19Features` rebuilds ``torchvision.models.vgg19().features``
with the same ``features.<index>.weight`` names, and :func:`load_vgg19_features` reads the standard
checkpoint ``vgg19-dcbb9e9d.pth`` (found locally, or downloaded on request from download.pytorch.org).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from enhancekit.errors import EnhanceKitError

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
VGG19_ENV = "ENHANCEKIT_VGG19_WEIGHTS"

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
    initialisation: load them with :func:`load_vgg19_features`.
    """

    def __init__(self, layer: str = "relu5_4", normalize_input: bool = True) -> None:
        super().__init__(VGG19_DEPTHS, layer, normalize_input)


def _hub_file() -> Path:
    # Looked up at call time so TORCH_HOME (and tests) can move the cache.
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _search() -> Path | None:
    env = os.environ.get(VGG19_ENV)
    for candidate in ([Path(env).expanduser()] if env else []) + [_hub_file()]:
        if candidate.is_file():
            return candidate
    return None


def find_vgg19_weights(path: str | Path | None = None) -> Path:
    """The VGG19 ImageNet checkpoint: ``path`` if given, else ``$ENHANCEKIT_VGG19_WEIGHTS``, else torch
    hub's cache (``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``, where torchvision keeps it)."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise EnhanceKitError(f"VGG19 weights file not found: {explicit}")
        return explicit
    found = _search()
    if found is not None:
        return found
    env = os.environ.get(VGG19_ENV)
    env_state = f"${VGG19_ENV}={env} (missing)" if env else f"${VGG19_ENV} (unset)"
    hub = _hub_file()
    raise EnhanceKitError(
        f"the VGG19 perceptual loss needs torchvision's ImageNet weights {VGG19_FILE}, not found "
        f"(looked at: an explicit path (none given), {env_state}, {hub}); give its path (loss term "
        f"`weights: PATH`), set {VGG19_ENV}=PATH, copy it to {hub}, or let enhancekit download it from "
        f"{VGG19_URL} (loss term `download: true`)"
    )


def _first_line(exc: BaseException) -> str:
    # EnhanceKitError messages are one line; library exceptions may span several or be empty.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _download() -> dict[str, Any]:
    hub = _hub_file()
    try:
        # check_hash compares the file against the hash prefix in its name (dcbb9e9d).
        return torch.hub.load_state_dict_from_url(
            VGG19_URL, model_dir=str(hub.parent), map_location="cpu", check_hash=True, weights_only=True
        )
    except (OSError, RuntimeError) as exc:  # URLError, timeouts, disk errors; RuntimeError: bad hash
        raise EnhanceKitError(
            f"cannot download {VGG19_URL}: {_first_line(exc)}; "
            f"place the file at {hub} or set {VGG19_ENV}=PATH"
        ) from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways (pickle, zip, EOF) on a damaged file
        raise EnhanceKitError(f"cannot read VGG19 weights {path}: {_first_line(exc)}") from exc
    if not isinstance(state, dict):
        raise EnhanceKitError(f"cannot read VGG19 weights {path}: not a state dict")
    return state


def _frozen(module: VGG19Features) -> VGG19Features:
    module.requires_grad_(False)
    return module.eval()


def load_vgg19_features(
    layer: str = "relu5_4", path: str | Path | None = None, download: bool = False
) -> VGG19Features:
    """Frozen (no gradients, eval mode) VGG19 features up to ``layer`` with the ImageNet weights.

    The checkpoint is searched as :func:`find_vgg19_weights` does; with ``download=True`` and no local copy
    (and no explicit ``path``) it is fetched from download.pytorch.org into torch hub's cache, hash-checked.
    ``classifier.*`` entries, and layers past ``layer``, are ignored.
    """
    if download and path is None and _search() is None:
        state, source = _download(), VGG19_URL
    else:
        source_path = find_vgg19_weights(path)
        state, source = _read(source_path), str(source_path)
    module = VGG19Features(layer)
    wanted = module.state_dict()
    missing = [key for key in wanted if key not in state]
    if missing:
        raise EnhanceKitError(f"{source} is not a VGG19 checkpoint: no {missing[0]!r}")
    try:
        module.load_state_dict({key: state[key] for key in wanted})
    except RuntimeError as exc:
        raise EnhanceKitError(f"{source} is not a VGG19 checkpoint: shapes differ") from exc
    return _frozen(module)


def random_vgg19_features(layer: str = "relu5_4", seed: int = 0) -> VGG19Features:
    """Frozen VGG19 features with fixed random weights: a stand-in for plumbing tests and for runs without
    the ImageNet file. Random features do not measure perceptual similarity; do not train with them.

    He-normal weights (He et al., ICCV 2015) keep activations from vanishing across the 16 layers; the
    forked random state leaves the caller's global random stream untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = VGG19Features(layer)
        for conv in module.features:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
    return _frozen(module)
