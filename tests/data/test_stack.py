"""Stack references: the mean and median of frames, checked against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from enhancekit import EnhanceKitError
from enhancekit.data.stack import stack_reference


def test_mean_and_median_match_numpy():
    frames = np.random.default_rng(0).random((7, 9, 11, 1)).astype(np.float32)
    np.testing.assert_allclose(stack_reference(iter(frames)), frames.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(stack_reference(list(frames), "median"), np.median(frames, axis=0))


def test_bad_stacks_are_user_errors():
    with pytest.raises(EnhanceKitError, match="no frames"):
        stack_reference([])
    with pytest.raises(EnhanceKitError, match="frames must match"):
        stack_reference([np.zeros((4, 4)), np.zeros((4, 5))])
    with pytest.raises(EnhanceKitError, match="unknown stack method"):
        stack_reference([np.zeros((4, 4))], "max")
