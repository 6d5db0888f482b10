"""ADL Efficient-UNet and discriminator: shapes in 2D and 3D, three output scales, the dilated feature
extractor, gradient paths, and padding through the inference engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enhancekit import create_model
from enhancekit.inference import Enhancer
from enhancekit.models.adl import ADLDiscriminator, EfficientUNet
from enhancekit.registry import count_parameters

SPEC_FILTERS = (96, 128, 160, 192)


@pytest.mark.parametrize(("name", "shape"), [("adl", (1, 1, 48, 40)), ("adl-3d", (1, 1, 16, 16, 16))])
def test_three_scales_and_sigmoid_range(name, shape):
    torch.manual_seed(0)
    model = create_model(name)
    assert model.size_multiple == 8 and model.in_channels == 1 and model.spatial_dims == len(shape) - 2
    x = torch.rand(shape)
    with torch.no_grad():
        full = model(x)
        scales = model(x, all_scales=True)
    assert full.shape == shape
    assert [tuple(y.shape[2:]) for y in scales] == [tuple(s // f for s in shape[2:]) for f in (1, 2, 4)]
    torch.testing.assert_close(scales[0], full)
    for y in scales:
        assert y.shape[:2] == shape[:2] and y.min() >= 0 and y.max() <= 1


def test_out_channels_and_variants():
    model = EfficientUNet(3, 2, filters=(8, 8, 16), bridge=24, blocks_per_level=2, content_enhancer=False)
    assert model.size_multiple == 4
    ys = model.eval()(torch.rand(2, 3, 16, 12), all_scales=True)
    assert [tuple(y.shape) for y in ys] == [(2, 2, 16, 12), (2, 2, 8, 6), (2, 2, 4, 3)]
    with pytest.raises(ValueError, match="three levels"):
        EfficientUNet(filters=(8, 16))


@pytest.mark.parametrize("shape", [(2, 1, 16, 24), (1, 1, 8, 16, 8)])
def test_residual_heads_start_as_the_identity_and_learn_a_correction(shape):
    torch.manual_seed(0)
    model = EfficientUNet(filters=(8, 8, 16), spatial_dims=len(shape) - 2, output_activation="residual")
    x = torch.rand(shape) * 1.4 - 0.2  # noisy input leaves [0, 1]: a residual output must not clip it
    scales = model.eval()(x, all_scales=True)
    pool = torch.nn.functional.avg_pool2d if len(shape) == 4 else torch.nn.functional.avg_pool3d
    for factor, y in zip((1, 2, 4), scales, strict=True):
        torch.testing.assert_close(y, x if factor == 1 else pool(x, factor))
    model.train()
    (model(x) - 0.5).square().mean().backward()
    assert model.heads[0][-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="out_channels == in_channels"):
        EfficientUNet(1, 2, filters=(8, 8, 16), output_activation="residual")


def test_discriminator_returns_three_logit_maps():
    torch.manual_seed(0)
    disc = create_model("adl-discriminator")
    assert (
        disc.net.extractor.branches[0][0].out_channels == 48 and disc.net.bridge.body[0][0].out_channels == 96
    )
    logits = disc(torch.rand(2, 1, 32, 24))
    assert [tuple(y.shape) for y in logits] == [(2, 1, 32, 24), (2, 1, 16, 12), (2, 1, 8, 6)]
    # Logits, not probabilities: a sigmoid head could never leave [0, 1].
    assert any(((y < 0) | (y > 1)).any() for y in logits)


def test_parameter_counts_at_the_specification_widths():
    spec_2d = count_parameters(EfficientUNet(filters=SPEC_FILTERS))
    light_2d = count_parameters(create_model("adl"))
    disc_2d = count_parameters(ADLDiscriminator())
    print(f"ADL 2D parameters: spec {spec_2d:,}, light {light_2d:,}, discriminator {disc_2d:,}")
    assert 5_000_000 < spec_2d < 10_000_000
    assert light_2d < spec_2d / 4


def test_feature_extractor_dilations():
    model = create_model("adl")
    branches = [branch[0] for branch in model.extractor.branches]
    assert [(b.kernel_size, b.dilation, b.padding) for b in branches] == [
        ((7, 7), (d, d), (3 * d, 3 * d)) for d in (1, 2, 4)
    ]


def test_quarter_scale_loss_reaches_the_feature_extractor():
    torch.manual_seed(0)
    model = EfficientUNet(filters=(8, 12, 16, 24)).train()  # narrow: the gradient path, not the width
    quarter = model(torch.rand(2, 1, 16, 16), all_scales=True)[2]
    quarter.mean().backward()
    for branch in model.extractor.branches:
        assert branch[0].weight.grad is not None and branch[0].weight.grad.abs().sum() > 0
    # The full-resolution head takes no part in the quarter-scale output.
    assert all(p.grad is None for p in model.heads[0].parameters())


def test_engine_pads_an_odd_image_and_crops_back():
    torch.manual_seed(0)
    model = create_model("adl")
    seen = []
    model.register_forward_pre_hook(lambda _module, args: seen.append(tuple(args[0].shape)))
    image = np.random.default_rng(0).random((37, 53), dtype=np.float32)
    out = Enhancer(model, device="cpu")(image)
    assert out.shape == image.shape and np.isfinite(out).all()
    assert seen == [(1, 1, 40, 56)]  # padded to multiples of 8, not resized
