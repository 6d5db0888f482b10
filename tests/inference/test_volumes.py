"""Volumes through image models: colour TIFF stacks reach a 2D model as colour slices and stay RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from torch import Tensor, nn

from enhancekit.data.io import read_volume, write_volume
from enhancekit.inference import Enhancer
from enhancekit.inference.volumes import enhance_volume, slice_axis


class _RotateChannels(nn.Module):
    """RGB -> GBR: only a model that sees all three samples of a pixel at once can do it."""

    in_channels = 3

    def forward(self, x: Tensor) -> Tensor:
        return x[:, [1, 2, 0]]


def test_rgb_tiff_stack_goes_through_a_colour_model_and_stays_rgb(tmp_path: Path) -> None:
    stack = np.random.default_rng(0).integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", stack, photometric="rgb")
    volume = read_volume(tmp_path / "in.tif")
    assert volume.colour_samples
    enhanced = enhance_volume(
        Enhancer(_RotateChannels(), device="cpu"),
        volume.normalized(),
        spatial_dims=2,
        axis=slice_axis(volume),
        colour=volume.colour_samples,
    )
    write_volume(tmp_path / "out.tif", volume.from_normalized(enhanced))
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 3
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        written = tif.asarray()
    np.testing.assert_array_equal(written, stack[..., [1, 2, 0]])


def test_gray_stack_is_not_colour(tmp_path: Path) -> None:
    # Three slices of 4 x 3 pixels: a last axis of length 3 that is columns, not colour.
    tifffile.imwrite(tmp_path / "gray.tif", np.zeros((3, 4, 3), np.uint16), photometric="minisblack")
    assert not read_volume(tmp_path / "gray.tif").colour_samples
