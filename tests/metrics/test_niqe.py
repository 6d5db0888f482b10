"""NIQE against the MATLAB value documented by BasicSR, plus implementation-independent sanity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from enhancekit.errors import EnhanceKitError
from enhancekit.metrics.niqe import niqe

SR = Path(__file__).parents[1] / "data" / "sr"
# Authors' niqe.m in MATLAB R2021a on Set14 baboon, Y of rgb2ycbcr rounded to uint8 (documented by BasicSR).
BABOON_MATLAB_Y = 5.72957338


@pytest.fixture(scope="module")
def baboon() -> np.ndarray:
    return np.asarray(Image.open(SR / "baboon.png").convert("RGB"), dtype=np.float32) / 255.0


def test_baboon_matches_matlab(baboon: np.ndarray) -> None:
    assert niqe(baboon, convert="y") == pytest.approx(BABOON_MATLAB_Y, rel=1e-3)


def test_uint8_and_float_input_agree(baboon: np.ndarray) -> None:
    as_uint8 = np.round(baboon * 255).astype(np.uint8)
    assert niqe(as_uint8) == niqe(baboon)


def test_blur_and_noise_raise_niqe(baboon: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    clean = niqe(baboon)
    blurred = niqe(gaussian_filter(baboon, sigma=(2, 2, 0)))
    noisy = niqe(np.clip(baboon + rng.normal(0, 25 / 255, baboon.shape), 0, 1))
    assert blurred > clean + 1 and noisy > clean + 1


def test_gray_input_and_featureless_image() -> None:
    rng = np.random.default_rng(1)
    gray = gaussian_filter(rng.random((200, 150)), 1.0)
    assert np.isfinite(niqe(gray)) and niqe(gray) == niqe(gray[..., None])
    assert np.isnan(niqe(np.full((96, 96), 0.5)))


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((90, 200, 3), {}),
        ((100, 100, 4), {}),
        ((100, 100), {"convert": "lab"}),
        ((100, 100), {"block_size": 95}),
    ],
)
def test_rejects_bad_input(shape: tuple[int, ...], kwargs: dict) -> None:
    with pytest.raises(EnhanceKitError):
        niqe(np.zeros(shape), **kwargs)
