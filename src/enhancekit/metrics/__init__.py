"""Image quality metrics with their conventions in one place.

``METRICS`` maps a metric name to its function and whether it needs a reference; commands and the training
engine look metrics up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from enhancekit.errors import EnhanceKitError
from enhancekit.metrics.full_reference import mse, psnr, rgb_to_y, ssim


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


METRICS: dict[str, Metric] = {
    "psnr": Metric("psnr", psnr, full_reference=True, higher_is_better=True),
    "ssim": Metric("ssim", ssim, full_reference=True, higher_is_better=True),
    "mse": Metric("mse", mse, full_reference=True, higher_is_better=False),
    "niqe": Metric("niqe", _niqe, full_reference=False, higher_is_better=False),
}


def parse_metrics(spec: str | list[str] | tuple[str, ...]) -> list[Metric]:
    """Metrics named in a comma-separated string (or a list), in order; unknown names raise."""
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise EnhanceKitError(
            f"unknown metric(s) {', '.join(unknown) or '(none)'}; available: {', '.join(METRICS)}"
        )
    return [METRICS[n] for n in names]


__all__ = ["METRICS", "Metric", "mse", "parse_metrics", "psnr", "rgb_to_y", "ssim"]
