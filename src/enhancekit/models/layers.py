"""Building blocks shared by network families, dimension-agnostic through ``spatial_dims`` (as MONAI does)."""

from __future__ import annotations

from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def conv(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Module:
    """A 'same'-padded convolution of the given dimensionality (odd kernels)."""
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    kwargs.setdefault("padding", kernel_size // 2)
    return _CONV[spatial_dims](in_channels, out_channels, kernel_size, **kwargs)


def conv_transpose(
    spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 2, **kwargs
) -> nn.Module:
    """A transposed convolution that multiplies every side by exactly ``stride`` (odd kernels)."""
    if spatial_dims not in _CONV_TRANSPOSE:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    # With padding k // 2, an odd kernel gives (n - 1) * stride + 1 samples; output_padding adds the rest.
    kwargs.setdefault("padding", kernel_size // 2)
    kwargs.setdefault("output_padding", stride - 1)
    return _CONV_TRANSPOSE[spatial_dims](in_channels, out_channels, kernel_size, stride=stride, **kwargs)


def batch_norm(spatial_dims: int, channels: int) -> nn.Module:
    """Batch normalisation of the given dimensionality."""
    return _BATCH_NORM[spatial_dims](channels)
