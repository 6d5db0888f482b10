"""NIMA: Neural Image Assessment (Talebi and Milanfar, IEEE TIP 2018).

An ImageNet backbone whose classifier is replaced by dropout and a 10-way fully connected layer with a
softmax: the predicted distribution of human ratings 1..10 (AVA). The score is the distribution's mean;
its standard deviation says how much raters would disagree. The backbone here is VGG16, the first of the
paper's backbones and the one of the widely used PyTorch port, whose checkpoints load unchanged
(``features.*`` and ``classifier.1.*``; a DataParallel ``module.`` prefix is dropped).

No weights ship with enhancekit (the published ones are trained on AVA, whose licence is not ours to
grant): the user supplies a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.models.vgg import VGG16_DEPTHS, VGGFeatures

NIMA_ENV = "ENHANCEKIT_NIMA_WEIGHTS"
NIMA_HELP = (
    "NIMA needs published weights, which enhancekit does not ship: e.g. the VGG16 NIMA checkpoint of the "
    "PyTorch port 'kentsyx/Neural-IMage-Assessment' (trained on AVA); pass it with --nima-weights PATH or "
    f"set {NIMA_ENV}=PATH. NIQE (--metrics niqe) needs no weights."
)
INPUT_SIZE = 224
BUCKETS = 10


class NIMA(nn.Module):
    """NIMA (Talebi and Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 2018) on VGG16: the ImageNet
    convolutional features (input RGB in [0, 1], resized to 224 x 224 and ImageNet-normalised), dropout
    ``dropout`` (0.75 in the paper) and a linear layer to 10 score buckets, softmax. ``forward`` returns the
    (N, 10) distribution; :func:`nima_mean_std` turns it into the score."""

    def __init__(self, dropout: float = 0.75) -> None:
        super().__init__()
        self.features = VGGFeatures(VGG16_DEPTHS, "pool5")
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(512 * 7 * 7, BUCKETS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True
        )
        return torch.softmax(self.classifier(self.features(x).flatten(1)), dim=1)


def nima_mean_std(distribution: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean score and standard deviation of (N, 10) distributions over the ratings 1..10."""
    ratings = torch.arange(1, BUCKETS + 1, dtype=distribution.dtype, device=distribution.device)
    mean = (distribution * ratings).sum(dim=1)
    variance = (distribution * (ratings - mean[:, None]) ** 2).sum(dim=1)
    return mean, variance.clamp_min(0).sqrt()


def load_nima(path: str | Path | None = None) -> NIMA:
    """NIMA in eval mode with the weights at ``path`` (``.pth``/``.pt`` state dict or ``.safetensors``), or
    at ``$ENHANCEKIT_NIMA_WEIGHTS``; a missing or mismatched file is a one-line :class:`EnhanceKitError`."""
    chosen = path if path is not None else os.environ.get(NIMA_ENV)
    if not chosen:
        raise EnhanceKitError(NIMA_HELP)
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise EnhanceKitError(f"NIMA weights file not found: {path}. {NIMA_HELP}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and header errors of a damaged file
        raise EnhanceKitError(f"cannot read NIMA weights {path}: {type(exc).__name__}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EnhanceKitError(f"cannot read NIMA weights {path}: not a state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = NIMA()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EnhanceKitError(
            f"{path} is not a VGG16 NIMA checkpoint (expected features.* and classifier.1.* entries)"
        ) from exc
    return model.eval().requires_grad_(False)
