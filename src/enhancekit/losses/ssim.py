"""Differentiable SSIM for training, with the same conventions as :func:`enhancekit.metrics.ssim`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.metrics.full_reference import gaussian_window_1d


def ssim_torch(
    output: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, structure_only: bool = False
) -> torch.Tensor:
    """Mean SSIM of (N, C, H, W) batches: 11x11 Gaussian window (sigma 1.5), valid positions, channel mean.

    Agrees with the NumPy metric (the tests check it), so a model trained on ``1 - SSIM`` optimises what it
    is scored on. ``structure_only`` drops SSIM's luminance factor, keeping contrast x structure.
    """
    channels = output.shape[1]
    window = torch.as_tensor(gaussian_window_1d(), dtype=output.dtype, device=output.device)
    if min(output.shape[-2:]) < window.numel():
        size = "x".join(str(n) for n in output.shape[-2:])
        raise EnhanceKitError(
            f"SSIM needs images of at least {window.numel()}x{window.numel()} pixels, got {size} "
            "(raise the patch size)"
        )
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(output), blur(target)
    var_x = blur(output * output) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(output * target) - mu_x * mu_y
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    if structure_only:
        return contrast_structure.mean()
    return ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * contrast_structure).mean()


class SSIMLoss(nn.Module):
    """``1 - SSIM`` (Wang et al., IEEE TIP 2004)."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim_torch(output, target)


class StructureLoss(nn.Module):
    """Weight-free content loss: ``1 - contrast x structure`` of SSIM on luma (or on each colour channel with
    ``per_channel``), averaged over ``scales`` dyadic scales (x1, x1/2, ...).

    An unpaired enhancer must change brightness, contrast and colour while keeping the content of its input.
    SSIM without its luminance factor ignores local mean shifts (brightness and colour casts) and compares
    local contrast and correlation, i.e. edges and texture, at every scale; it needs no pretrained network,
    so training works offline where the VGG19 weights of UEGAN's consistency loss are missing.
    On luma alone, chroma is unconstrained (colour blotches cost nothing); ``per_channel`` keeps each
    channel's structure while still leaving its local mean, i.e. tone and colour balance, free.
    """

    def __init__(self, scales: int = 3, per_channel: bool = False) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.scales = scales
        self.per_channel = per_channel
        self.register_buffer(
            "luma_weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False
        )

    def _compared(self, x: torch.Tensor) -> torch.Tensor:
        """The channels whose structure is kept: all of them, or luma (the mean for non-RGB inputs)."""
        if self.per_channel:
            return x
        if x.shape[1] == 3:
            return (x * self.luma_weights.to(x.dtype)).sum(1, keepdim=True)
        return x.mean(1, keepdim=True)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x, y = self._compared(output), self._compared(target)
        terms = []
        for scale in range(self.scales):
            if scale:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
                if min(x.shape[-2:]) < 11:
                    break  # coarser than the SSIM window; the full scale itself must fit (ssim_torch says so)
            terms.append(1.0 - ssim_torch(x, y, structure_only=True))
        return torch.stack(terms).mean()
