"""Registered baselines: bicubic is MATLAB imresize; DnCNN is residual and works in 2D and 3D."""

from __future__ import annotations

import torch

from enhancekit import create_model
from enhancekit.data.degradations import imresize


def test_bicubic_model_is_imresize():
    x = torch.rand(1, 3, 17, 23)
    y = create_model("bicubic", scale=3)(x)
    assert y.shape == (1, 3, 51, 69)
    torch.testing.assert_close(y, imresize(x, scale=3))


def test_dncnn_2d_and_3d_shapes_and_residual():
    for dims, shape in ((2, (2, 1, 20, 24)), (3, (1, 1, 8, 10, 12))):
        net = create_model("dncnn", depth=4, width=8, spatial_dims=dims)
        x = torch.rand(shape)
        assert net(x).shape == x.shape
        # The untrained network estimates zero noise, so it returns its input unchanged.
        torch.testing.assert_close(net(x), x)
        torch.nn.init.normal_(net.body[-1].weight)
        assert not torch.allclose(net(x), x)
