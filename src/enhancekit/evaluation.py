"""Scoring of model outputs (``eval``) and of existing images (``score``), as per-image rows plus a summary.

This is the layer between the commands and the building blocks: it reads files (``data``), runs a model
(``inference``), and measures (``metrics``) under the task's conventions (``tasks``). Outputs are quantised
to the target's bit depth before they are measured, as published figures are computed on saved images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from enhancekit.data.degradations import Degradation, GaussianNoise, crop_to_multiple, refuse_saved_noise
from enhancekit.data.io import (
    ImageData,
    VolumeData,
    data_range,
    folder_contents,
    from_float,
    is_volume_file,
    list_inputs,
    pair_by_stem,
    read_image,
    to_float,
)
from enhancekit.data.series import VolumeSource, read_volume_source
from enhancekit.errors import EnhanceKitError
from enhancekit.metrics import Metric


def quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1] and round to the levels of ``bit_depth`` bits, as saving the image would."""
    if not np.isfinite(pixels).all():
        raise EnhanceKitError("the model's output holds NaN or infinite values (diverged weights?)")
    return to_float(from_float(pixels, bit_depth))


@dataclass
class Report:
    """Per-image scores and their summary, serialised as the JSON that ``eval``/``score`` write."""

    model: str | None
    metric_names: list[str]
    settings: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, min and max of each metric over the images (finite values only for the mean)."""
        out: dict[str, dict[str, float]] = {}
        for name in self.metric_names:
            values = np.array([row[name] for row in self.images], dtype=np.float64)
            finite = values[np.isfinite(values)]
            out[name] = {
                "mean": float(finite.mean()) if finite.size else math.nan,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metrics": self.summary(),
            "images": self.images,
            "settings": self.settings,
        }


def measure(
    output: np.ndarray, target: np.ndarray | None, metrics: Sequence[Metric], *, color: str, crop: int
) -> dict[str, float]:
    """Scores of one image: full-reference metrics against ``target``, the others on ``output`` alone."""
    scores = {}
    for metric in metrics:
        if metric.full_reference:
            if target is None:
                raise EnhanceKitError(f"metric {metric.name} needs a target (--target)")
            scores[metric.name] = metric.fn(output, target, color=color, crop=crop)
        else:
            scores[metric.name] = metric.fn(output)
    return scores


def measure_volume(output: np.ndarray, clean: np.ndarray, metrics: Sequence[Metric]) -> dict[str, float]:
    """Scores of one volume file; a 4D file (a series of 3D volumes on its last axis) gets each volume's
    scores averaged, as 3D SSIM is defined on one volume."""
    if output.ndim == 3:
        return measure(output, clean, metrics, color="rgb", crop=0)
    per_volume = [
        measure(output[..., t], clean[..., t], metrics, color="rgb", crop=0) for t in range(output.shape[-1])
    ]
    return {name: float(np.mean([scores[name] for scores in per_volume])) for name in per_volume[0]}


def match_target(output: np.ndarray, target: np.ndarray, scale: int, name: str) -> np.ndarray:
    """The target cropped to the output when the HR side was not a multiple of ``scale`` (SR protocol)."""
    if output.shape == target.shape:
        return target
    if scale > 1:
        cropped = crop_to_multiple(target, scale)
        if cropped.shape == output.shape:
            return cropped
    raise EnhanceKitError(
        f"{name}: output size {output.shape[1]}x{output.shape[0]} does not match target size "
        f"{target.shape[1]}x{target.shape[0]}"
    )


def degraded_pairs(
    targets: Sequence[Path], degradation: Degradation
) -> Iterator[tuple[str, ImageData, np.ndarray]]:
    """(name, degraded input, target) made from clean targets, the input quantised to the target's depth
    when the degradation says a saved file would hold it so (``bicubic``, ``awgn-saved``; ``awgn`` stays
    floats, as in published tables)."""
    for path in targets:
        image = read_image(path)
        target = degradation.prepare_target(image.pixels)
        degraded = degradation(target)
        source = quantize(degraded, image.bit_depth) if degradation.saved_as_image else degraded
        yield (
            path.name,
            ImageData(
                source, alpha=None, bit_depth=image.bit_depth, mode=image.mode, metadata=image.metadata
            ),
            target,
        )


def check_volume_degradation(degradation: Degradation) -> None:
    """Volumes are evaluated with Gaussian noise as floats (no saved depth to round to): refuse the rest."""
    refuse_saved_noise(degradation, "volumes")
    if not isinstance(degradation, GaussianNoise):
        raise EnhanceKitError(f"volumes are evaluated with noise (awgn:S), not {degradation!r}")


def degraded_volume_pairs(
    targets: Sequence[VolumeSource], degradation: Degradation
) -> Iterator[tuple[VolumeSource, VolumeData, np.ndarray, np.ndarray]]:
    """(source, volume, degraded, clean) for 3D (or 4D: a series of 3D) volume files and DICOM series, on the
    volume's [0, 1] normalised scale."""
    check_volume_degradation(degradation)
    for source in targets:
        volume = read_volume_source(source)
        # Noise is relative to each volume's data range whatever its format: a DICOM maps by its declared
        # range (signed 16 bits for CT), in which awgn:25 would be thousands of HU.
        low, high = data_range(volume.voxels)
        reversed_range = volume.value_range[0] > volume.value_range[1]  # MONOCHROME1: white stays 1
        volume = replace(volume, value_range=(high, low) if reversed_range else (low, high))
        if volume.voxels.ndim not in (3, 4):
            raise EnhanceKitError(
                f"{source.name}: expected a 3D or 4D volume, got shape {volume.voxels.shape}"
            )
        clean = volume.normalized()
        yield source, volume, np.asarray(degradation(clean), np.float32), clean


def holds_volumes(path: Path) -> bool:
    """Whether ``path`` is a volume file, or a folder with volumes and no 2D images (files whose header
    cannot be read do not take part: they are reported when read)."""
    if not path.is_dir():
        try:
            return path.is_file() and is_volume_file(path)  # a missing path is reported by list_inputs
        except EnhanceKitError:
            return False  # reported when read
    kinds = {kind for _, kind in folder_contents(path)}
    if not kinds:
        raise EnhanceKitError(f"no image or volume files found in {path}")
    return "volume" in kinds and "image" not in kinds


def folder_pairs(
    inputs: Sequence[Path], targets: Sequence[Path]
) -> Iterator[tuple[str, ImageData, np.ndarray]]:
    """(name, input, target) read from two folders paired by file stem."""
    for input_path, target_path in pair_by_stem(list(inputs), list(targets)):
        yield target_path.name, read_image(input_path), read_image(target_path).pixels


def score_files(
    inputs: Sequence[str | Path], targets: Sequence[str | Path] | None
) -> list[tuple[Path, Path | None]]:
    """Files to score: input files, each paired by stem with a target when targets are given."""
    input_files = list_inputs(inputs)
    if targets is None:
        return [(p, None) for p in input_files]
    return pair_by_stem(input_files, list_inputs(targets))
