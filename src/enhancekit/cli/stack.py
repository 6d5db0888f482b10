"""``enhancekit stack``: a clean reference image from repeated noisy frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from enhancekit.cli.ui import console
from enhancekit.data.io import is_volume_file, list_inputs, read_image, read_volume, write_image
from enhancekit.data.stack import stack_reference
from enhancekit.errors import EnhanceKitError
from enhancekit.inference.volumes import slice_axis


def _volume_frames(path: Path) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Frames of a multi-page stack in [0, 1], frame index first, the bit depth to write and the metadata a
    derived output keeps (a DICOM header): integer data keep their scale. NIfTI keeps its frames (time or
    repeats of one slice) on the third axis."""
    volume = read_volume(path)
    if volume.voxels.ndim != 3 and not volume.colour_samples:
        raise EnhanceKitError(
            f"{path} has shape {volume.voxels.shape}: a stack must hold frames of one 2D image (3 axes)"
        )
    metadata = {"dicom": volume.metadata["dicom"]} if "dicom" in volume.metadata else {}
    if metadata:  # mapped by its header's declared range, as its frames are on their own
        pixels, bit_depth = volume.normalized(), 8 * min(volume.dtype.itemsize, 2)
    elif volume.dtype in (np.uint8, np.uint16):
        pixels, bit_depth = volume.voxels / np.iinfo(volume.dtype).max, 8 * volume.dtype.itemsize
    else:
        pixels, bit_depth = volume.normalized(), 16
    return np.moveaxis(pixels, slice_axis(volume), 0), bit_depth, metadata


def stack(
    frames: Annotated[
        list[Path],
        typer.Argument(
            help="Frame images and/or folders of them, or one stack (multi-page TIFF, multi-frame DICOM,"
            " NIfTI).",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file to write.")],
    method: Annotated[str, typer.Option(help="mean | median")] = "mean",
) -> None:
    """Build a clean reference (per-pixel mean or median) from repeated noisy captures of a static scene."""
    volume_stack = len(frames) == 1 and frames[0].is_file() and is_volume_file(frames[0])
    sources = [frames[0]] if volume_stack else list_inputs(frames)
    if output.resolve() in {path.resolve() for path in sources}:
        raise EnhanceKitError(f"output {output} is one of the frames; choose another file")
    if volume_stack:
        pixels, bit_depth, metadata = _volume_frames(frames[0])
        count, reference = len(pixels), stack_reference(pixels, method)
    else:
        if len(sources) < 2:
            raise EnhanceKitError("a stack needs at least two frames")
        count, bit_depths, first_metadata = len(sources), [], []

        def frames_read() -> Iterator[np.ndarray]:
            # Lazily: the mean then holds one frame at a time, whatever the stack's length.
            for path in sources:
                image = read_image(path)
                bit_depths.append(image.bit_depth)
                if not first_metadata:
                    first_metadata.append(image.metadata)
                yield image.pixels

        reference = stack_reference(frames_read(), method)
        # One 16-bit frame makes a 16-bit reference: its precision is not rounded away. The output carries
        # the first frame's metadata (its DICOM header, dpi, colour profile).
        bit_depth, metadata = max(bit_depths), first_metadata[0]
    metadata = {**metadata, "derivation": f"enhancekit stack --method {method} of {count} frames"}
    write_image(output, reference, bit_depth=bit_depth, metadata=metadata)
    console.print(f"{method} of {count} frames written to {output} ({bit_depth}-bit)")
