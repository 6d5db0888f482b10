"""Clean references from repeated noisy captures: the per-pixel mean (or median) of a stack of frames.

The X-ray and microscopy workflow: a clean image of a static scene is the average of many noisy exposures
(50 X-ray frames in ADL's use case, 50 or 400 in FMD and W2S). The mean keeps the noise's expectation and
divides its standard deviation by sqrt(frames); the median resists outlier frames (motion, cosmic hits).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from enhancekit.errors import EnhanceKitError

METHODS = ("mean", "median")


def stack_reference(frames: Iterable[np.ndarray], method: str = "mean") -> np.ndarray:
    """The per-pixel ``method`` of equally shaped float frames, as float32.

    The mean is accumulated frame by frame in float64, so long stacks need one frame of memory; the median
    needs the whole stack.
    """
    if method not in METHODS:
        raise EnhanceKitError(f"unknown stack method {method!r}; use {' or '.join(METHODS)}")
    count = 0
    total: np.ndarray | None = None
    kept: list[np.ndarray] = []
    for frame in frames:
        frame = np.asarray(frame)
        if total is not None and frame.shape != total.shape:
            raise EnhanceKitError(
                f"frame {count + 1} has shape {frame.shape}, the first had {total.shape}; frames must match"
            )
        total = frame.astype(np.float64) if total is None else total + frame
        if method == "median":
            kept.append(frame)
        count += 1
    if total is None:
        raise EnhanceKitError("the stack has no frames")
    if method == "median":
        return np.median(np.stack(kept), axis=0).astype(np.float32)
    return (total / count).astype(np.float32)
