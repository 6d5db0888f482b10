"""Enhancer: channel adaptation, size_multiple padding, tiling, TTA, devices and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from enhancekit.errors import EnhanceKitError
from enhancekit.inference import Enhancer
from enhancekit.inference.tta import NUM_TRANSFORMS, augment, deaugment


class _Blur(nn.Module):
    """Depthwise blur with a kernel symmetric under flips (and, in 2D, rotations): equivariant to TTA."""

    def __init__(self, spatial_dims: int = 2) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        k1 = torch.tensor([1.0, 2.0, 1.0]) / 4
        kernel = k1[:, None] * k1 if spatial_dims == 2 else k1[:, None, None] * k1[:, None] * k1
        self.register_buffer("kernel", kernel)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        weight = self.kernel.expand(c, 1, *self.kernel.shape)
        conv = F.conv2d if self.spatial_dims == 2 else F.conv3d
        return conv(x, weight, padding=1, groups=c)


class _StrictUpsampler(nn.Module):
    """x2 nearest upsampling that, like a U-Net, only accepts sides that are multiples of 8."""

    scale = 2
    size_multiple = 8

    def forward(self, x: Tensor) -> Tensor:
        assert all(side % 8 == 0 for side in x.shape[2:]), x.shape
        return F.interpolate(x, scale_factor=2, mode="nearest")


class _ChannelGain(nn.Module):
    """Multiplies channel c by c + 1: makes channel handling visible in the output."""

    in_channels = 3

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)


def _image(h: int = 45, w: int = 61, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, c), dtype=np.float32)


def test_output_layout_and_model_state(local_net) -> None:
    net = local_net(out_ch=5)
    out = Enhancer(net, device="cpu")(_image())
    assert out.shape == (45, 61, 5)
    assert out.dtype == np.float32
    assert not net.training
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_tiled_equals_untiled(local_net) -> None:
    image = _image()
    whole = Enhancer(local_net(), device="cpu")(image)
    tiled = Enhancer(local_net(), device="cpu", tile=24, tile_overlap=8)(image)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_tiled_tta_equals_untiled_tta(local_net) -> None:
    image = _image(37, 29)
    whole = Enhancer(local_net(), device="cpu", tta=True)(image)
    tiled = Enhancer(local_net(), device="cpu", tta=True, tile=16, tile_overlap=8)(image)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_tiled_volume_equals_untiled() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 1, 3, padding=1))
    net.spatial_dims = 3
    volume = np.random.default_rng(0).random((11, 14, 17), dtype=np.float32)
    whole = Enhancer(net, device="cpu")(volume)
    tiled = Enhancer(net, device="cpu", tile=8, tile_overlap=4)(volume)
    assert whole.shape == volume.shape
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("index", range(NUM_TRANSFORMS))
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_tta_transforms_invert(index: int, spatial_dims: int) -> None:
    x = torch.rand(1, 2, *(3, 4, 5)[-spatial_dims:])
    assert torch.equal(deaugment(augment(x, index, spatial_dims), index, spatial_dims), x)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_tta_transforms_are_distinct(spatial_dims: int) -> None:
    x = torch.rand(1, 1, *[4] * spatial_dims)
    views = [augment(x, i, spatial_dims) for i in range(NUM_TRANSFORMS)]
    assert all(not torch.equal(views[i], views[j]) for i in range(8) for j in range(i))


def test_tta_of_identity_is_identity() -> None:
    image = _image(9, 14)
    np.testing.assert_allclose(Enhancer(nn.Identity(), device="cpu", tta=True)(image), image, atol=1e-7)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_tta_of_equivariant_op_equals_op(spatial_dims: int) -> None:
    shape = (6, 10, 13) if spatial_dims == 3 else (10, 13, 3)
    data = np.random.default_rng(1).random(shape, dtype=np.float32)
    plain = Enhancer(_Blur(spatial_dims), device="cpu")(data)
    np.testing.assert_allclose(Enhancer(_Blur(spatial_dims), device="cpu", tta=True)(data), plain, atol=1e-6)


def test_tta_changes_a_non_equivariant_model(local_net) -> None:
    image = _image(16, 20)
    plain = Enhancer(local_net(), device="cpu")(image)
    with_tta = Enhancer(local_net(), device="cpu", tta=True)(image)
    assert with_tta.shape == plain.shape
    assert np.abs(with_tta - plain).max() > 1e-3


def test_tta_with_upscaler_on_non_square_image() -> None:
    image = _image(13, 21)
    out = Enhancer(_StrictUpsampler(), device="cpu", tta=True)(image)
    np.testing.assert_allclose(out, image.repeat(2, axis=0).repeat(2, axis=1), atol=1e-6)


class _StridedCodec(nn.Module):
    """Stride-2 conv down, transposed conv up: its output depends on where the x2 grid starts."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 3, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(torch.relu(self.down(x)))


@pytest.mark.parametrize("overlap", [9, 16, 21])
def test_tiles_start_on_the_downsampling_grid(overlap: int) -> None:
    # An overlap that is not a multiple of size_multiple would start tiles off the model's x2 grid.
    image = _image()
    whole = Enhancer(_StridedCodec(), device="cpu")(image)
    tiled = Enhancer(_StridedCodec(), device="cpu", tile=24, tile_overlap=overlap)(image)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tile", [None, 10])
@pytest.mark.parametrize(("h", "w"), [(13, 21), (3, 5)])
def test_size_multiple_padding_is_cropped_back(tile: int | None, h: int, w: int) -> None:
    image = _image(h, w)
    out = Enhancer(_StrictUpsampler(), device="cpu", tile=tile, tile_overlap=4)(image)
    np.testing.assert_array_equal(out, image.repeat(2, axis=0).repeat(2, axis=1))


class _BlockModel(nn.Module):
    """Like BM3D's package: refuses inputs smaller than its 8 x 8 blocks; otherwise the identity."""

    min_size = 8

    def forward(self, x: Tensor) -> Tensor:
        assert min(x.shape[2:]) >= 8, x.shape
        return x


@pytest.mark.parametrize(("h", "w"), [(5, 3), (1, 12), (8, 8)])
def test_inputs_under_min_size_are_padded_and_cropped_back(h: int, w: int) -> None:
    image = _image(h, w)
    np.testing.assert_array_equal(Enhancer(_BlockModel(), device="cpu")(image), image)
    # Tiles smaller than the minimum grow to it.
    tiled = Enhancer(_BlockModel(), device="cpu", tile=4, tile_overlap=2)(_image(20, 20))
    np.testing.assert_array_equal(tiled, _image(20, 20))


def test_classical_and_cyclegan_models_take_tiny_images() -> None:
    from enhancekit.registry import create_model

    # bm3d 4.0 refuses sides under 8 and crashes the process on exactly 8 x 8.
    for h, w in ((5, 3), (8, 8)):
        tiny = _image(h, w)
        for name in ("bm3d", "cyclegan"):
            assert Enhancer(create_model(name), device="cpu")(tiny).shape == tiny.shape


def test_one_channel_model_runs_per_channel() -> None:
    torch.manual_seed(0)
    net = nn.Conv2d(1, 1, 3, padding=1)
    net.in_channels = 1
    image = _image(12, 15)
    out = Enhancer(net, device="cpu")(image)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], Enhancer(net, device="cpu")(image[..., c]), atol=1e-6)


def test_rgb_model_on_gray_image_returns_gray() -> None:
    gray = _image(12, 15, c=1)
    out = Enhancer(_ChannelGain(), device="cpu", channels_last=False)(gray)
    assert out.shape == (12, 15, 1)
    np.testing.assert_allclose(out, 2 * gray, atol=1e-6)  # mean of the gains 1, 2, 3
    assert Enhancer(_ChannelGain(), device="cpu")(gray[..., 0]).shape == (12, 15)


def test_channel_mismatch_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="3 channel"):
        Enhancer(_ChannelGain(), device="cpu")(_image(c=4))


def test_output_is_not_clipped() -> None:
    class Stretch(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return 3 * x - 1

    out = Enhancer(Stretch(), device="cpu")(_image())
    assert out.min() < 0 and out.max() > 1


def test_enhance_tensor_batch_matches_call(local_net) -> None:
    enhancer = Enhancer(local_net(), device="cpu", tile=24, tile_overlap=8)
    images = [_image(seed=s) for s in range(2)]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    out = enhancer.enhance_tensor(batch)
    assert out.shape == (2, 3, 45, 61) and out.dtype == torch.float32
    for i, image in enumerate(images):
        np.testing.assert_allclose(out[i].permute(1, 2, 0).numpy(), enhancer(image), atol=1e-6)


def test_tile_not_larger_than_overlap_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="larger than the tile overlap"):
        Enhancer(nn.Identity(), device="cpu", tile=32, tile_overlap=32)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="CUDA is not available"):
        Enhancer(nn.Identity(), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_tiled_matches_cpu(amp: bool, local_net) -> None:
    """Tiles travel from the CPU image to the GPU; fp16 autocast (and TF32 convolutions) cost ~1e-3."""
    image = _image()
    reference = Enhancer(local_net(), device="cpu")(image)
    enhancer = Enhancer(local_net(), device="cuda", tile=24, tile_overlap=8, amp=amp)
    assert enhancer.amp == amp and not enhancer.channels_last
    out = enhancer(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-2)


def test_auto_device_and_unknown_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert Enhancer(nn.Identity()).device.type == expected
    with pytest.raises(EnhanceKitError, match="unknown device"):
        Enhancer(nn.Identity(), device="warp-drive")


@pytest.mark.parametrize(
    ("array", "match"),
    [(np.zeros((4, 4, 3), dtype=np.uint8), "float image"), (np.zeros((1, 4, 4, 3), np.float32), "shape")],
)
def test_bad_input_is_an_error(array: np.ndarray, match: str) -> None:
    with pytest.raises(EnhanceKitError, match=match):
        Enhancer(nn.Identity(), device="cpu")(array)


def test_whole_image_models_are_never_tiled() -> None:
    class ImageMean(nn.Module):
        tileable = False

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x - x.mean(dim=(2, 3), keepdim=True)  # depends on the whole image

    model = ImageMean()
    image = np.random.default_rng(0).random((40, 50, 3), dtype=np.float32)
    out = Enhancer(model, device="cpu", tile=16, tile_overlap=4)(image)
    assert model.calls == 1
    np.testing.assert_allclose(out, image - image.mean(axis=(0, 1)), atol=1e-6)
