"""Intensity windows: which part of a file's value range a model sees as its [0, 1].

Files are read into [0, 1] by the range their format declares (0..255, 0..65535, a DICOM's Bits Stored, a
volume's data range). Data that fill only a sliver of that range look flat to a model trained on photos: a CT
slice stored as signed 16-bit puts soft tissue (-160..240 HU) within 0.6% of the range, and 12-bit data in a
16-bit PNG within 6%. A window stretches the values of interest to [0, 1] for the model, maps its output back,
and leaves the values outside the window as they were (a denoiser made for soft tissue has no business
changing air or metal).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from enhancekit.data.dicom import DicomError, declared_range, display_window, rescale
from enhancekit.data.io import ImageData, VolumeData
from enhancekit.errors import EnhanceKitError

#: Percentiles that ``auto`` spans for files that declare no window of their own.
AUTO_PERCENTILES = (0.5, 99.5)
#: Below this share of their declared range, data are worth a window (see :func:`filled_share`).
NARROW_SHARE = 0.1


_SAME_SIZE = "--window needs a model that keeps the image size, not a super-resolution one"


def check_window_model(scale: int) -> None:
    """Refuse a window for a model that changes the size: outside values could not be kept."""
    if scale != 1:
        raise EnhanceKitError(_SAME_SIZE)


def parse_window(text: str) -> tuple[float, float] | None:
    """``"LO,HI"`` as two numbers (LO < HI), or None for ``"auto"``."""
    if text.strip().lower() == "auto":
        return None
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        raise EnhanceKitError(f"--window must be LO,HI (two numbers) or auto, got {text!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise EnhanceKitError(f"--window LO,HI needs finite numbers, got {text!r}")
    if not low < high:
        raise EnhanceKitError(f"--window LO,HI needs LO < HI, got {text!r}")
    return low, high


def window_for(
    data: ImageData | VolumeData, values: np.ndarray, request: tuple[float, float] | None
) -> tuple[float, float] | None:
    """The window, as (low, high) in the [0, 1] units of ``values`` (``data`` read as the model sees it).

    ``request`` is in the file's own values (for DICOM after Rescale Slope/Intercept, e.g. Hounsfield units);
    None asks for the file's own window (a DICOM's Window Center/Width), else the 0.5-99.5 percentile range,
    which is None (no window) for data without spread, such as a blank padding slice.
    """
    header = data.metadata.get("dicom")
    try:
        if request is None and header is not None:
            request = display_window(header)
        if request is None:
            low, high = _spread(values)
            return (low, high) if high > low else None
        to_unit = _unit_mapping(data)
    except DicomError as exc:
        raise EnhanceKitError(f"cannot place the window: {exc}") from exc
    low, high = sorted(to_unit(v) for v in request)
    return low, high


def filled_share(data: ImageData | VolumeData, values: np.ndarray) -> float | None:
    """The share of [0, 1] that ``values`` fill (their 0.5-99.5 percentile span) when the format, not the
    data, set that range (DICOM, 16-bit images); None otherwise (8-bit photos may be dark on purpose)."""
    if "dicom" not in data.metadata and not (isinstance(data, ImageData) and data.bit_depth == 16):
        return None
    low, high = _spread(values)
    return high - low


def _spread(values: np.ndarray) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``values`` (of a million of them at most: enough, and fast)."""
    sample = values.ravel()[:: max(1, values.size // 1_000_000)]
    low, high = np.percentile(sample, AUTO_PERCENTILES)
    return float(low), float(high)


def stretch(values: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """``values`` mapped from ``window`` to [0, 1] (clipped), as float32: what the model sees, and what a
    windowed evaluation measures (CT denoising is scored within its display window). No window: ``values``."""
    if window is None:
        return values
    low, high = window
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def run_windowed(
    run: Callable[[np.ndarray], np.ndarray], values: np.ndarray, window: tuple[float, float] | None
) -> np.ndarray:
    """``run`` on ``values`` stretched from ``window`` to [0, 1], its output mapped back; values outside the
    window are returned unchanged. ``run`` must keep the array's shape. No window: ``run(values)``."""
    if window is None:
        return run(values)
    low, high = window
    output = np.asarray(run(stretch(values, window)), dtype=np.float32)
    if output.shape != values.shape:
        raise EnhanceKitError(_SAME_SIZE)
    inside = (values >= low) & (values <= high)
    return np.where(inside, output * (high - low) + low, values).astype(np.float32)


def _unit_mapping(data: ImageData | VolumeData) -> Callable[[float], float]:
    """File value -> the [0, 1] value the model sees."""
    header = data.metadata.get("dicom")
    if header is not None:
        slope, intercept = rescale(header)
        low, high = declared_range(header)
        return lambda value: ((value - intercept) / slope - low) / (high - low)
    if isinstance(data, VolumeData):
        low, high = data.value_range
        return lambda value: (value - low) / (high - low)
    peak = 1.0 if data.bit_depth == 32 else float(2**data.bit_depth - 1)
    return lambda value: value / peak
