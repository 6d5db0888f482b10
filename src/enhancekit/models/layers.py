"""Building blocks shared by network families, dimension-agnostic through ``spatial_dims`` (as MONAI does)."""

from __future__ import annotations

from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def conv(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Module:
    """A 'same'-padded convolution of the given dimensionality (odd kernels)."""
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    kwargs.setdefault("padding", kernel_size // 2)
    return _CONV[spatial_dims](in_channels, out_channels, kernel_size, **kwargs)


def batch_norm(spatial_dims: int, channels: int) -> nn.Module:
    """Batch normalisation of the given dimensionality."""
    return _BATCH_NORM[spatial_dims](channels)
