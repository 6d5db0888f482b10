"""Pixel-wise losses."""

from __future__ import annotations

import torch
from torch import nn


class CharbonnierLoss(nn.Module):
    """Charbonnier (smooth L1) loss ``mean(sqrt((x - y)^2 + eps^2))`` (Lai et al., LapSRN, CVPR 2017)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((output - target) ** 2 + self.eps**2).mean()
