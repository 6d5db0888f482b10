"""Volumes through image models: 3D models see the whole volume (tiled into overlapping, blended windows by
the :class:`~enhancekit.inference.Enhancer` when ``tile`` is set), 2D models see it slice by slice.

A 4D file (e.g. a NIfTI time series or repeated acquisitions) is taken as a sequence of 3D volumes along its
last axis, each enhanced on its own, except a colour stack (a TIFF whose last axis holds 3 or 4 samples per
pixel), whose slices reach a 2D model as colour images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from enhancekit.data.io import VolumeData
from enhancekit.errors import EnhanceKitError


def slice_axis(volume: VolumeData) -> int:
    """The axis a 2D model slices along: NIfTI stores x, y, z (slices on the third axis); TIFF stacks and
    NumPy arrays put the slice index first."""
    return 2 if volume.affine is not None else 0


def enhance_volume(
    enhance: Callable[[np.ndarray], np.ndarray],
    voxels: np.ndarray,
    *,
    spatial_dims: int,
    axis: int = 0,
    colour: bool = False,
    on_slice: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``enhance`` applied to a normalised 3D (or 4D, last axis = repeats or colour) volume.

    Args:
        enhance: a callable on one image (``spatial_dims=2``) or one volume (``spatial_dims=3``), e.g. an
            :class:`~enhancekit.inference.Enhancer`.
        voxels: float array in [0, 1].
        axis: the slicing axis for 2D models.
        colour: the last axis of a 4D volume holds each pixel's colour samples (see
            :attr:`~enhancekit.data.io.VolumeData.colour_samples`): 2D models get whole colour slices.
        on_slice: ``(done, total)`` after each 2D slice or 3D volume, for progress bars.
    """
    if voxels.ndim not in (3, 4):
        raise EnhanceKitError(f"expected a 3D or 4D volume, got shape {voxels.shape}")
    if voxels.ndim == 4 and not (colour and spatial_dims == 2):
        volumes = [voxels[..., t] for t in range(voxels.shape[-1])]
        return np.stack(
            [enhance_volume(enhance, v, spatial_dims=spatial_dims, axis=axis) for v in volumes], -1
        )
    if spatial_dims == 3:
        out = enhance(np.ascontiguousarray(voxels))
        if on_slice is not None:
            on_slice(1, 1)
        return out
    slices = []
    count = voxels.shape[axis]
    for index in range(count):
        slices.append(enhance(np.ascontiguousarray(np.take(voxels, index, axis=axis))))
        if on_slice is not None:
            on_slice(index + 1, count)
    return np.stack(slices, axis=axis)
