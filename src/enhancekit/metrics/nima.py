"""NIMA score of an image (Talebi and Milanfar 2018): the mean of the predicted rating distribution, 1..10,
higher is better. The weights come from the user (see :func:`enhancekit.pretrained.load_nima`)."""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from enhancekit.models.nima import NIMA, nima_mean_std
from enhancekit.pretrained import NIMA_ENV, load_nima


@functools.lru_cache(maxsize=2)
def _model(path: str | None) -> NIMA:
    return load_nima(path)


def nima_model() -> NIMA:
    """The NIMA model for ``$ENHANCEKIT_NIMA_WEIGHTS`` (loaded once); raises with instructions when unset."""
    return _model(os.environ.get(NIMA_ENV))


def nima(image: np.ndarray) -> float:
    """Mean NIMA score of an H x W x C (or H x W) image in [0, 1]; gray images are repeated to RGB."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    x = torch.from_numpy(np.ascontiguousarray(np.clip(array, 0, 1).transpose(2, 0, 1)))[None]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    with torch.inference_mode():
        mean, _ = nima_mean_std(nima_model()(x[:, :3]))
    return float(mean[0])
