"""Shared fixtures: small real images shipped in tests/data (see the LICENSE.md files there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"
SR_DATA = DATA / "sr"


def load_rgb(path: Path) -> np.ndarray:
    """An 8-bit image file as float64 in [0, 1], read with Pillow alone (independent of enhancekit.data)."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


@pytest.fixture
def butterfly() -> np.ndarray:
    return load_rgb(SR_DATA / "butterfly.png")


@pytest.fixture
def baby() -> np.ndarray:
    return load_rgb(SR_DATA / "baby.png")
