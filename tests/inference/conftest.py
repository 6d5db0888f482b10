"""Shared fixtures of the inference tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn


def _make_local_net(in_ch: int = 3, out_ch: int = 3) -> nn.Sequential:
    """Fully convolutional, zero 'same' padding, receptive-field radius 2 + 1 + 1 = 4."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_ch, 8, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, out_ch, 3, padding=1),
    ).eval()


@pytest.fixture
def local_net() -> Callable[..., nn.Sequential]:
    """A factory of the same seeded local network, so tiled and untiled runs compare like with like."""
    return _make_local_net
