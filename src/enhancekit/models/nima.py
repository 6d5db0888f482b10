"""NIMA: Neural Image Assessment (Talebi and Milanfar, IEEE TIP 2018).

An ImageNet backbone whose classifier is replaced by dropout and a 10-way fully connected layer with a
softmax: the predicted distribution of human ratings 1..10 (AVA). The score is the distribution's mean;
its standard deviation says how much raters would disagree. The backbone here is VGG16, the first of the
paper's backbones and the one of the widely used PyTorch port, whose checkpoints load unchanged
(``features.*`` and ``classifier.1.*``; a DataParallel ``module.`` prefix is dropped).

No weights ship with enhancekit (the published ones are trained on AVA, whose licence is not ours to
grant): the user supplies a file, which :func:`enhancekit.pretrained.load_nima` reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.models.vgg import VGG16_DEPTHS, VGGFeatures

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
