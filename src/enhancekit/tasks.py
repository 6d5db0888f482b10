"""Per-task defaults, decided once: colour space and border crop for metrics, synthetic degradation, metrics.

Commands look these up instead of branching on the task themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskDefaults:
    """Defaults of one task.

    ``color``: ``"y"`` (BT.601 luma as MATLAB's rgb2ycbcr) or ``"rgb"`` (all channels; gray stays gray).
    ``crop_is_scale``: crop ``scale`` pixels from each border before full-reference metrics (SR convention).
    ``degradation``: the synthetic degradation ``eval`` applies to a target when no ``--input`` is given,
    with ``{scale}`` filled in from the model.
    """

    name: str
    color: str
    crop_is_scale: bool
    degradation: str | None
    metrics: tuple[str, ...]


TASK_DEFAULTS: dict[str, TaskDefaults] = {
    "sr": TaskDefaults(
        "sr", color="y", crop_is_scale=True, degradation="bicubic:{scale}", metrics=("psnr", "ssim", "mse")
    ),
    "denoise": TaskDefaults(
        "denoise", color="rgb", crop_is_scale=False, degradation="awgn:25", metrics=("psnr", "ssim", "mse")
    ),
    "lowlight": TaskDefaults(
        "lowlight", color="rgb", crop_is_scale=False, degradation=None, metrics=("psnr", "ssim", "mse")
    ),
    "enhance": TaskDefaults(
        "enhance", color="rgb", crop_is_scale=False, degradation=None, metrics=("psnr", "ssim", "mse")
    ),
}
