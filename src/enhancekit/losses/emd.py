"""Earth mover's distance between score distributions: NIMA's training loss (Talebi and Milanfar 2018,
after Hou et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn


def emd(predicted: torch.Tensor, target: torch.Tensor, r: int = 2) -> torch.Tensor:
    """Mean over the batch of ``(mean_k |CDF_p(k) - CDF_t(k)|^r)^(1/r)`` for (N, K) distributions over K
    ordered buckets (``r = 2`` in NIMA, which penalises the Euclidean distance of the CDFs)."""
    if predicted.shape != target.shape or predicted.dim() != 2:
        raise ValueError(
            f"expected two (N, K) distributions, got {tuple(predicted.shape)}, {tuple(target.shape)}"
        )
    gap = (torch.cumsum(predicted, dim=1) - torch.cumsum(target, dim=1)).abs()
    return (gap**r).mean(dim=1).pow(1.0 / r).mean()


class EMDLoss(nn.Module):
    """:func:`emd` as a module."""

    def __init__(self, r: int = 2) -> None:
        super().__init__()
        self.r = r

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return emd(predicted, target, self.r)
