"""Inference: the :class:`Enhancer` engine, tiled (sliding-window) forward and test-time augmentation."""

from enhancekit.inference.engine import Enhancer
from enhancekit.inference.tiling import tiled_forward

__all__ = ["Enhancer", "tiled_forward"]
