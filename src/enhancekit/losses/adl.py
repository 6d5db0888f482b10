"""Textural and histogram losses of ADL (Ghahremani et al., "Adversarial Distortion Learning for Medical Image
Denoising", 2022).

Both terms accept 2D batches (N, C, H, W) and volumetric batches (N, C, D, H, W).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.errors import EnhanceKitError

KERNELS = ("laplacian", "sobel")
CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
}


def _check_batch(output: torch.Tensor, target: torch.Tensor) -> int:
    """The number of spatial dimensions (2 or 3) of two batches of the same shape."""
    if output.shape != target.shape:
        raise EnhanceKitError(
            f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape"
        )
    if output.dim() not in (4, 5):
        raise EnhanceKitError(
            f"expected (N, C, H, W) or (N, C, D, H, W) tensors, got {output.dim()} dimensions"
        )
    return output.dim() - 2


def laplacian_kernel(spatial_dims: int) -> torch.Tensor:
    """The discrete Laplacian stencil as a (1, 1, 3, ...) kernel: 4 neighbours in 2D, 6 neighbours in 3D."""
    kernel = torch.zeros((3,) * spatial_dims)
    centre = (1,) * spatial_dims
    for axis in range(spatial_dims):
        for side in (0, 2):
            index = list(centre)
            index[axis] = side
            kernel[tuple(index)] = 1.0
    kernel[centre] = -2.0 * spatial_dims
    return kernel[None, None]


def sobel_kernels(spatial_dims: int) -> torch.Tensor:
    """One Sobel kernel per axis, shape (spatial_dims, 1, 3, ...): derivative along it, [1, 2, 1] across."""
    derivative = torch.tensor([-1.0, 0.0, 1.0])
    smoothing = torch.tensor([1.0, 2.0, 1.0])
    kernels = []
    for axis in range(spatial_dims):
        kernel = torch.ones((3,) * spatial_dims)
        for other in range(spatial_dims):
            shape = [1] * spatial_dims
            shape[other] = 3
            kernel = kernel * (derivative if other == axis else smoothing).view(shape)
        kernels.append(kernel)
    return torch.stack(kernels)[:, None]


class PyramidTexturalLoss(nn.Module):
    """Pyramid textural loss of ADL (Ghahremani et al., 2022): edge maps compared at every pyramid level.

    Level 0 is the input; each further level average-pools the previous one by 2 (odd sizes are floored).
    The per-level terms are summed, so every scale contributes (the authors' code overwrites the running value
    instead of adding to it, so only one level counts there). Edge maps come from a fixed Laplacian, or from
    the Sobel gradient magnitude, applied per channel with replicate padding, so a flat region has no edge at
    the border either.
    """

    def __init__(self, levels: int = 3, kernel: str = "laplacian", criterion: str = "l1") -> None:
        super().__init__()
        if levels < 1:
            raise EnhanceKitError(f"the pyramid needs at least one level, got {levels}")
        if kernel not in KERNELS:
            raise EnhanceKitError(f"unknown edge kernel {kernel!r}; available: {', '.join(KERNELS)}")
        if criterion not in CRITERIA:
            raise EnhanceKitError(f"unknown criterion {criterion!r}; available: {', '.join(CRITERIA)}")
        self.levels = levels
        self.kernel = kernel
        self.criterion = criterion
        make = laplacian_kernel if kernel == "laplacian" else sobel_kernels
        # Non-persistent: the constructor fixes the kernels, so checkpoints need not carry them.
        self.register_buffer("kernel_2d", make(2), persistent=False)
        self.register_buffer("kernel_3d", make(3), persistent=False)

    def edge_map(self, image: torch.Tensor) -> torch.Tensor:
        """The edge map of a (N, C, H, W) or (N, C, D, H, W) batch, same shape as the input."""
        spatial_dims = image.dim() - 2
        channels = image.shape[1]
        base = (self.kernel_2d if spatial_dims == 2 else self.kernel_3d).to(image.dtype)
        per_channel = base.shape[0]
        weight = base.repeat(channels, *(1,) * (base.dim() - 1))
        conv = F.conv2d if spatial_dims == 2 else F.conv3d
        padded = F.pad(image, (1, 1) * spatial_dims, mode="replicate")
        edges = conv(padded, weight, groups=channels)
        if self.kernel == "laplacian":
            return edges
        gradients = edges.view(image.shape[0], channels, per_channel, *image.shape[2:])
        # The epsilon keeps the square root's gradient finite where the image is flat.
        return torch.sqrt((gradients**2).sum(dim=2) + 1e-12)

    def level_terms(self, output: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """The criterion between the edge maps at each level, finest first."""
        spatial_dims = _check_batch(output, target)
        smallest = min(output.shape[2:])
        if smallest < 2 ** (self.levels - 1):
            raise EnhanceKitError(f"a {self.levels}-level pyramid needs sizes >= {2 ** (self.levels - 1)}")
        pool = F.avg_pool2d if spatial_dims == 2 else F.avg_pool3d
        criterion = CRITERIA[self.criterion]
        terms = []
        for level in range(self.levels):
            if level:
                output, target = pool(output, 2), pool(target, 2)
            terms.append(criterion(self.edge_map(output), self.edge_map(target)))
        return terms

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.level_terms(output, target)).sum()


def _check_histogram_arguments(bins: int, value_range: tuple[float, float], sigma: float | None) -> None:
    if bins < 2:
        raise EnhanceKitError(f"the histogram needs at least 2 bins, got {bins}")
    if not value_range[1] > value_range[0]:
        raise EnhanceKitError(f"empty value range {value_range}")
    if sigma is not None and sigma <= 0:
        raise EnhanceKitError(f"the Gaussian kernel's sigma must be positive, got {sigma}")


def soft_histogram(
    image: torch.Tensor,
    bins: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
    sigma: float | None = None,
) -> torch.Tensor:
    """Differentiable histogram of each image and channel, shape (N, C, bins), each summing to 1.

    Bins split ``value_range`` evenly; a value spreads its unit mass over the bin centres with a kernel:

    * ``sigma=None``: triangular kernel one bin wide, i.e. linear interpolation between the two nearest
      centres; values beyond the outer centres go to the outer bins (and get no gradient there).
    * ``sigma`` (in value units): Gaussian kernel, truncated at 3 sigma; values far outside the range weigh
      nothing.

    The kernel's weights are scattered into the bins (``scatter_add``), so memory grows with the number of
    values times the kernel's support (2 bins, or about 6 sigma / bin width), never times ``bins``, which a
    dense (values x bins) kernel density would need and which 3D volumes cannot afford. The gradient
    reaches the values through the weights (the bin indices are piecewise constant).
    """
    _check_histogram_arguments(bins, value_range, sigma)
    low, high = value_range
    width = (high - low) / bins
    values = image.flatten(2)
    # Position in units of bins, with the centre of bin i at i.
    position = (values - low) / width - 0.5
    histogram = values.new_zeros(*values.shape[:2], bins)
    if sigma is None:
        position = position.clamp(0, bins - 1)
        # Capped at bins - 2 so the upper neighbour exists; a value on the last centre gets weight 1 there.
        lower = position.detach().floor().long().clamp(max=bins - 2)
        upper_weight = position - lower
        histogram = histogram.scatter_add(2, lower, 1 - upper_weight).scatter_add(2, lower + 1, upper_weight)
    else:
        nearest = position.detach().round().long().clamp(0, bins - 1)
        radius = max(1, math.ceil(3 * sigma / width))
        for offset in range(-radius, radius + 1):
            index = nearest + offset
            inside = (index >= 0) & (index < bins)
            weight = torch.exp(-0.5 * ((position - index) * (width / sigma)) ** 2) * inside
            histogram = histogram.scatter_add(2, index.clamp(0, bins - 1), weight)
    # Guards the Gaussian case where every value lies far outside the range.
    return histogram / histogram.sum(dim=2, keepdim=True).clamp_min(torch.finfo(histogram.dtype).tiny)


class HistogramLoss(nn.Module):
    """Histogram loss of ADL (Ghahremani et al., 2022): log-cosh distance between intensity histograms.

    ``sum_bins log cosh(h_output - h_target)``, averaged over images and channels, with the differentiable
    :func:`soft_histogram` (the authors' ``torch.histc`` passes no gradient to the network). The histograms
    ignore where values are, so this term constrains the intensity distribution only.
    """

    def __init__(
        self, bins: int = 64, sigma: float | None = None, value_range: tuple[float, float] = (0.0, 1.0)
    ) -> None:
        super().__init__()
        self.bins = bins
        self.sigma = sigma
        self.value_range = (float(value_range[0]), float(value_range[1]))
        # Fails at construction rather than at the first training step.
        _check_histogram_arguments(bins, self.value_range, sigma)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_batch(output, target)
        difference = soft_histogram(output, self.bins, self.value_range, self.sigma) - soft_histogram(
            target, self.bins, self.value_range, self.sigma
        )
        # log cosh(x) = log1p(2 sinh^2(x / 2)) keeps float32 precision for the tiny differences that
        # histograms of large images have, where log(cosh(x)) rounds to 0; |x| <= 1, so nothing overflows.
        log_cosh = torch.log1p(2 * torch.sinh(difference / 2) ** 2)
        return log_cosh.sum(dim=2).mean()
