"""Image quality metrics with their conventions in one place.

``METRICS`` maps a metric name to its function and whether it needs a reference; commands and the training
engine look metrics up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from enhancekit.errors import EnhanceKitError
from enhancekit.metrics.full_reference import mse, psnr, rgb_to_y, ssim, ssim_volume


@dataclass(frozen=True)
class Metric:
    """A metric: ``full_reference`` ones take (output, target, color=, crop=), the others (image)."""

    name: str
    fn: Callable[..., float]
    full_reference: bool
    higher_is_better: bool


def _niqe(image: np.ndarray) -> float:
    # Imported lazily: NIQE loads its parameter file and is not needed by most runs.
    from enhancekit.metrics.niqe import niqe

    return niqe(image)


def _nima(image: np.ndarray) -> float:
    # Imported lazily: NIMA needs torch and a user-supplied weights file.
    from enhancekit.metrics.nima import nima

    return nima(image)


METRICS: dict[str, Metric] = {
    "psnr": Metric("psnr", psnr, full_reference=True, higher_is_better=True),
    "ssim": Metric("ssim", ssim, full_reference=True, higher_is_better=True),
    "mse": Metric("mse", mse, full_reference=True, higher_is_better=False),
    "niqe": Metric("niqe", _niqe, full_reference=False, higher_is_better=False),
    "nima": Metric("nima", _nima, full_reference=False, higher_is_better=True),
}


def _volume_ssim(output: np.ndarray, target: np.ndarray, *, color: str = "rgb", crop: int = 0) -> float:
    del color, crop  # volumes are gray and uncropped
    return ssim_volume(output, target)


#: Metrics of D x H x W volumes: PSNR and MSE over all voxels, SSIM with a 3D window.
VOLUME_METRICS: dict[str, Metric] = {
    "psnr": METRICS["psnr"],
    "ssim": Metric("ssim", _volume_ssim, full_reference=True, higher_is_better=True),
    "mse": METRICS["mse"],
}


def parse_metrics(spec: str | list[str] | tuple[str, ...], *, volumes: bool = False) -> list[Metric]:
    """Metrics named in a comma-separated string (or a list), in order; unknown names raise."""
    table = VOLUME_METRICS if volumes else METRICS
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        kind = "volume metric(s)" if volumes else "metric(s)"
        raise EnhanceKitError(
            f"unknown {kind} {', '.join(unknown) or '(none)'}; available: {', '.join(table)}"
        )
    return [table[n] for n in names]


__all__ = [
    "METRICS",
    "VOLUME_METRICS",
    "Metric",
    "mse",
    "parse_metrics",
    "psnr",
    "rgb_to_y",
    "ssim",
    "ssim_volume",
]
