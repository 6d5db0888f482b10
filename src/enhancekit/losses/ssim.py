"""Differentiable SSIM for training, with the same conventions as :func:`enhancekit.metrics.ssim`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.metrics.full_reference import gaussian_window_1d


def ssim_torch(output: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of (N, C, H, W) batches: 11x11 Gaussian window (sigma 1.5), valid positions, channel mean.

    Agrees with the NumPy metric (the tests check it), so a model trained on ``1 - SSIM`` optimises what it
    is scored on.
    """
    channels = output.shape[1]
    window = torch.as_tensor(gaussian_window_1d(), dtype=output.dtype, device=output.device)
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(output), blur(target)
    var_x = blur(output * output) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(output * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


class SSIMLoss(nn.Module):
    """``1 - SSIM`` (Wang et al., IEEE TIP 2004)."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim_torch(output, target)
