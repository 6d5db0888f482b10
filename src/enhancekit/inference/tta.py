"""Test-time augmentation (TTA): average a model over 8 symmetries of its input.

Images (2 spatial dims) use the dihedral group of the square: 4 rotations by 90 degrees, each with and
without a horizontal flip. Volumes (3 spatial dims) use the 8 combinations of flips along depth, height and
width and no rotations, because volumes are often anisotropic (slice spacing differs from in-plane spacing),
so a rotation would show the model an axis layout it never saw in training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

NUM_TRANSFORMS = 8


def _check(index: int, spatial_dims: int) -> None:
    if not 0 <= index < NUM_TRANSFORMS:
        raise ValueError(f"transform index must be in [0, {NUM_TRANSFORMS}), got {index}")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def _flip_dims(index: int) -> list[int]:
    """Volume flips: bit k of ``index`` flips spatial axis k (counted from the last axis)."""
    return [-1 - k for k in range(3) if index >> k & 1]


def augment(x: Tensor, index: int, spatial_dims: int = 2) -> Tensor:
    """Transform ``(N, C, *spatial)`` by symmetry ``index`` (0 is the identity)."""
    _check(index, spatial_dims)
    if spatial_dims == 3:
        dims = _flip_dims(index)
        return x.flip(dims) if dims else x
    if index >= 4:
        x = x.flip(-1)
    return x.rot90(index % 4, dims=(-2, -1))


def deaugment(y: Tensor, index: int, spatial_dims: int = 2) -> Tensor:
    """Undo :func:`augment` with the same ``index`` (works on outputs of any scale or channel count)."""
    _check(index, spatial_dims)
    if spatial_dims == 3:
        dims = _flip_dims(index)
        return y.flip(dims) if dims else y
    y = y.rot90(-(index % 4), dims=(-2, -1))
    return y.flip(-1) if index >= 4 else y


def tta_forward(fn: Callable[[Tensor], Tensor], x: Tensor, spatial_dims: int = 2) -> Tensor:
    """Mean of ``deaugment(fn(augment(x)))`` over all 8 symmetries, accumulated in float32."""
    # A copy, so that accumulating in place never writes into a tensor ``fn`` returned (it may be ``x``).
    total = fn(x).to(torch.float32, copy=True)
    for index in range(1, NUM_TRANSFORMS):
        total += deaugment(fn(augment(x, index, spatial_dims)), index, spatial_dims).float()
    return total / NUM_TRANSFORMS
