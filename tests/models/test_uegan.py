"""UEGAN generator (global attention, CBAM local enhancement), its discriminator, and CycleGAN's networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from enhancekit import create_model
from enhancekit.inference import Enhancer
from enhancekit.models.uegan import (
    ChannelAttention,
    GlobalAttentionModule,
    LocalFeatureEnhancement,
    SpatialAttention,
    UEGANGenerator,
)
from enhancekit.registry import count_parameters


def test_channel_attention_scales_whole_channels():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 9, 11) + 0.1
    ratio = ChannelAttention(16)(x) / x
    # One weight per (image, channel), in (0, 1): constant over the spatial positions.
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()


def test_spatial_attention_scales_whole_positions():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 9, 11) + 0.1
    ratio = SpatialAttention()(x) / x
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()


def test_global_attention_is_residual_and_sees_the_whole_image():
    torch.manual_seed(0)
    module = GlobalAttentionModule(8)
    x = torch.rand(1, 8, 16, 16)
    torch.nn.init.zeros_(module.fuse[0].weight)
    torch.nn.init.zeros_(module.fuse[0].bias)
    torch.testing.assert_close(module(x), x)  # with the branch silenced, the module is the identity
    # The channel statistics gate: a change far away (one corner) changes the output at the other corner.
    module = GlobalAttentionModule(8)
    y = x.clone()
    y[..., :2, :2] += 1.0
    assert not torch.allclose(module(x)[..., -1, -1], module(y)[..., -1, -1])


def test_generator_any_size_and_lfe_ablation():
    torch.manual_seed(0)
    full, ablated = create_model("uegan"), create_model("uegan-no-lfe")
    assert any(isinstance(m, LocalFeatureEnhancement) for m in full.modules())
    assert not any(isinstance(m, (ChannelAttention, SpatialAttention)) for m in ablated.modules())
    assert count_parameters(ablated) < count_parameters(full)
    image = np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)
    out = Enhancer(full.eval(), device="cpu")(image)
    assert out.shape == image.shape and np.isfinite(out).all()
    with pytest.raises(ValueError, match="norm"):
        UEGANGenerator(norm="group")


def test_untrained_generator_is_the_identity_and_learns_a_residual():
    model = UEGANGenerator(base_width=8, depth=2, global_blocks=1)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model(x), x)
    # The zero head still passes gradient to itself, so training leaves the identity at the first step.
    model(x).mean().backward()
    assert model.head.weight.grad.abs().sum() > 0


def test_multiscale_discriminator_heads_and_spectral_norm():
    model = create_model("uegan-discriminator", pretrained=False)
    logits = model(torch.rand(2, 3, 128, 96))
    assert [tuple(t.shape[-2:]) for t in logits] == [(16, 12), (8, 6), (4, 3)]
    assert any(name.endswith("weight_orig") for name, _ in model.named_parameters())


def test_cyclegan_networks():
    torch.manual_seed(0)
    generator = create_model("cyclegan", pretrained=False)
    y = generator(torch.rand(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64) and y.min() >= 0 and y.max() <= 1
    patches = create_model("cyclegan-discriminator", pretrained=False)(torch.rand(1, 3, 128, 128))
    assert patches.shape == (1, 1, 14, 14)  # 70x70 PatchGAN on a 128 crop


@pytest.mark.parametrize("image", ["butterfly", "baby"])
def test_shipped_uegan_fivek_brightens_a_dimmed_photo_towards_the_original(image, request):
    # Set5 photos it never saw, dimmed by 30%; scored by scikit-image's PSNR against the undimmed photo.
    original = request.getfixturevalue(image)
    dimmed = original * 0.7
    enhanced = np.clip(Enhancer(create_model("uegan-fivek"), device="cpu")(dimmed.astype(np.float32)), 0, 1)
    # Measured: +1.2 dB (butterfly) and +1.8 dB (baby). The untrained generator is the identity (+0 dB).
    assert enhanced.mean() > dimmed.mean() + 0.01
    gain = peak_signal_noise_ratio(original, enhanced.astype(np.float64), data_range=1.0) - (
        peak_signal_noise_ratio(original, dimmed, data_range=1.0)
    )
    assert gain > 0.5


@pytest.mark.parametrize("side", [1, 5, 8])
def test_shipped_uegan_gives_finite_output_on_tiny_images(side):
    # Its deepest feature maps are 1x1 here: a sample standard deviation there would be NaN.
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    out = Enhancer(create_model("uegan-fivek"), device="cpu")(image)
    assert out.shape == image.shape and np.isfinite(out).all()
