"""SRCNN: architecture as specified, variants by argument, shipped weights beat bicubic on a real image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enhancekit import create_model
from enhancekit.data.degradations import imresize, parse_degradation
from enhancekit.inference import Enhancer
from enhancekit.metrics import psnr


def _params(kernels, widths, channels=3):
    k1, k2, k3 = kernels
    w1, w2 = widths
    return (k1 * k1 * channels + 1) * w1 + (k2 * k2 * w1 + 1) * w2 + (k3 * k3 * w2 + 1) * channels


@pytest.mark.parametrize("kernels", [(9, 3, 5), (9, 1, 5), (9, 5, 5)])
def test_layers_and_parameter_count(kernels):
    net = create_model("srcnn", scale=3, kernel_sizes=kernels)
    assert sum(p.numel() for p in net.parameters()) == _params(kernels, (64, 32))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == list(kernels)
    assert [c.out_channels for c in convs] == [64, 32, 3]
    x = torch.rand(1, 3, 20, 17)
    assert net(x).shape == (1, 3, 60, 51)


def test_glorot_initialisation_and_residual_start():
    torch.manual_seed(0)
    net = create_model("srcnn", scale=2)
    first = net.body[0].weight
    bound = (6 / (first.shape[1] * 81 + first.shape[0] * 81)) ** 0.5  # fan_in + fan_out of a 9x9 conv
    assert first.abs().max() <= bound and first.abs().max() > 0.9 * bound
    assert torch.count_nonzero(net.body[0].bias) == 0
    residual = create_model("srcnn", scale=2, residual=True)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(residual(x), imresize(x, scale=2))  # starts from the bicubic result


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_weights_beat_bicubic_on_a_real_image(butterfly, scale):
    degradation = parse_degradation(f"bicubic:{scale}")
    target = degradation.prepare_target(butterfly.astype(np.float32))
    source = np.round(degradation(target) * 255) / 255
    srcnn = Enhancer(create_model(f"srcnn-x{scale}"), device="cpu")(source)
    bicubic = Enhancer(create_model("bicubic", scale=scale), device="cpu")(source)
    gain = psnr(np.clip(srcnn, 0, 1), target, color="y", crop=scale) - psnr(
        np.clip(bicubic, 0, 1), target, color="y", crop=scale
    )
    # Set5 butterfly is the image where SRCNN gains most over bicubic (about 2-3 dB in the paper).
    assert gain > 1.5


def test_tiled_srcnn_equals_untiled(baby):
    source = baby[100:180, 120:220].astype(np.float32)
    model = create_model("srcnn-x3")
    whole = Enhancer(model, device="cpu")(source)
    # Receptive field: bicubic (2 LR px) plus 9-5-5 convs (8 HR px, under 3 LR px): overlap 12 covers it.
    tiled = Enhancer(model, device="cpu", tile=32, tile_overlap=12)(source)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
