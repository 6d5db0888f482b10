"""Tiled forward: equal to the untiled forward for local models (images, volumes, upscalers); ramp blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from enhancekit import create_model
from enhancekit.errors import EnhanceKitError
from enhancekit.inference import Enhancer, tiled_forward
from enhancekit.inference.tiling import BLENDS


def _pixel_shuffle_x2() -> nn.Module:
    """x2 upscaler; radius in input pixels: 1 + 1 before the shuffle, 1 output pixel (< 1 input) after."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.PixelShuffle(2),
        nn.Conv2d(3, 3, 3, padding=1),
    ).eval()


def _nearest_x2() -> nn.Module:
    """x2 upscaler; radius in input pixels: 1 before the upsampling, 2 + 2 output pixels (2 input) after."""
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
    ).eval()


@pytest.mark.parametrize(
    ("tile", "overlap", "batch_tiles"),
    [(16, 8, 1), (20, 9, 1), (24, 12, 3), (17, 8, 4), (40, 8, 1), (64, 8, 1)],
)
@torch.inference_mode()
def test_tiled_equals_untiled(tile: int, overlap: int, batch_tiles: int, local_net) -> None:
    net = local_net(out_ch=5)  # output channel count differs from the input's
    x = torch.rand(2, 3, 37, 53)
    tiled = tiled_forward(net, x, tile=tile, overlap=overlap, batch_tiles=batch_tiles)
    assert tiled.shape == (2, 5, 37, 53)
    torch.testing.assert_close(tiled, net(x), rtol=0, atol=1e-5)


@torch.inference_mode()
def test_overlap_below_receptive_field_is_not_exact(local_net) -> None:
    """Guards the test above against passing trivially: radius 4 needs overlap >= 8."""
    net = local_net()
    x = torch.rand(1, 3, 37, 53)
    assert (tiled_forward(net, x, tile=16, overlap=2) - net(x)).abs().max() > 1e-3


@pytest.mark.parametrize("make_net", [_pixel_shuffle_x2, _nearest_x2])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 8), (13, 6)])
@torch.inference_mode()
def test_tiled_upscaler_equals_untiled(make_net, tile: int, overlap: int) -> None:
    net = make_net()
    x = torch.rand(1, 3, 29, 35)
    tiled = tiled_forward(net, x, tile=tile, overlap=overlap, scale=2)
    assert tiled.shape == (1, 3, 58, 70)
    torch.testing.assert_close(tiled, net(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("tile", "overlap", "batch_tiles"), [(8, 4, 1), (10, 5, 3)])
@torch.inference_mode()
def test_tiled_volume_equals_untiled(tile: int, overlap: int, batch_tiles: int) -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 2, 3, padding=1)).eval()
    x = torch.rand(1, 1, 13, 17, 19)
    tiled = tiled_forward(net, x, tile=tile, overlap=overlap, spatial_dims=3, batch_tiles=batch_tiles)
    torch.testing.assert_close(tiled, net(x), rtol=0, atol=1e-5)


def test_tiles_are_full_size_and_batched() -> None:
    shapes: list[tuple[int, ...]] = []

    def record(t: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(t.shape))
        return t

    x = torch.rand(1, 2, 30, 12)
    out = tiled_forward(record, x, tile=16, overlap=4, batch_tiles=2)
    # Rows: starts 0, 12, 14 (last aligned to the end); columns: one tile clamped to 12.
    assert shapes == [(2, 2, 16, 12), (1, 2, 16, 12)]
    assert torch.equal(out, x)


def test_tile_not_larger_than_overlap_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="larger than the tile overlap"):
        tiled_forward(lambda t: t, torch.rand(1, 1, 8, 8), tile=8, overlap=8)


def test_wrong_scale_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="scale"):
        tiled_forward(lambda t: t, torch.rand(1, 1, 8, 8), tile=4, overlap=2, scale=2)


def test_wrong_spatial_dims_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="spatial dims"):
        tiled_forward(lambda t: t, torch.rand(1, 1, 8, 8), tile=4, overlap=2, spatial_dims=3)


def test_progress_reports_every_call_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    x = torch.rand(1, 1, 50, 70)
    tiled_forward(
        lambda t: t, x, tile=20, overlap=4, batch_tiles=2, on_progress=lambda d, n: calls.append((d, n))
    )
    total = calls[-1][1]
    # Step 16: rows start at 0, 16, 30 (end-aligned); columns at 0, 16, 32, 48, 50.
    assert total == 3 * 5
    # Two tiles per call; the last call carries the odd one.
    assert [d for d, _ in calls] == [*range(2, total, 2), total] and all(n == total for _, n in calls)


def _upsample_x2(t: torch.Tensor) -> torch.Tensor:
    """Nearest x2 upscaling: a pointwise map in output pixels, so any blend must reproduce it exactly."""
    return t.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)


def _plus_tile_mean(t: torch.Tensor) -> torch.Tensor:
    """A model with a global component: every tile is shifted by its own mean, so tiles disagree."""
    return t + t.mean(dim=(-2, -1), keepdim=True)


def _max_jump(error: torch.Tensor) -> float:
    """Largest step of ``error`` between neighbouring pixels along either axis: how sharp a seam is."""
    return max(error.diff(dim=-1).abs().max().item(), error.diff(dim=-2).abs().max().item())


# (33, 16, 8): rows start at 0, 8, 16, 17 (end-aligned), so up to three tiles cover one pixel.
@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "batch_tiles"), [(33, 47, 16, 8, 1), (40, 29, 12, 5, 3)]
)
@torch.inference_mode()
def test_ramp_reproduces_identity(h: int, w: int, tile: int, overlap: int, batch_tiles: int) -> None:
    x = torch.rand(2, 3, h, w)
    out = tiled_forward(lambda t: t, x, tile=tile, overlap=overlap, batch_tiles=batch_tiles, blend="ramp")
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


@torch.inference_mode()
def test_ramp_reproduces_constant_output_and_upscaler() -> None:
    x = torch.rand(1, 3, 37, 53)
    constant = tiled_forward(lambda t: torch.full_like(t, 0.3), x, tile=16, overlap=6, blend="ramp")
    torch.testing.assert_close(constant, torch.full_like(x, 0.3), rtol=0, atol=1e-6)
    upscaled = tiled_forward(_upsample_x2, x, tile=16, overlap=6, scale=2, blend="ramp")
    torch.testing.assert_close(upscaled, _upsample_x2(x), rtol=0, atol=1e-6)


@torch.inference_mode()
def test_ramp_reproduces_identity_volume() -> None:
    x = torch.rand(1, 2, 13, 17, 19)
    out = tiled_forward(lambda t: t, x, tile=8, overlap=4, spatial_dims=3, blend="ramp")
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


@torch.inference_mode()
def test_ramp_on_local_net_is_close_to_untiled(local_net) -> None:
    net = local_net()
    x = torch.rand(1, 3, 64, 80)
    error = (tiled_forward(net, x, tile=24, overlap=12, blend="ramp") - net(x)).abs()
    # Not exact: pixels within the receptive-field radius of a tile edge keep a small weight.
    assert error.max() < 0.05 and error.mean() < 2e-3


@torch.inference_mode()
def test_ramp_softens_seams_of_a_global_model() -> None:
    # Brightness grows across the image, so the tiles' means differ and cut tiles meet with a step.
    x = torch.rand(1, 3, 48, 96) * torch.linspace(0.1, 1.0, 96)
    whole = _plus_tile_mean(x)
    cut = tiled_forward(_plus_tile_mean, x, tile=32, overlap=16, blend="cut") - whole
    ramp = tiled_forward(_plus_tile_mean, x, tile=32, overlap=16, blend="ramp") - whole
    assert _max_jump(ramp) < _max_jump(cut) / 4


def test_unknown_blend_is_an_error() -> None:
    with pytest.raises(EnhanceKitError, match="unknown tile blend"):
        tiled_forward(lambda t: t, torch.rand(1, 1, 8, 8), tile=4, overlap=2, blend="linear")


def test_enhancer_takes_the_models_tile_blend_unless_told() -> None:
    class Feathered(nn.Identity):
        tile_blend = "ramp"

    assert Enhancer(nn.Identity(), device="cpu", tile=64).tile_blend == "cut"
    assert Enhancer(Feathered(), device="cpu", tile=64).tile_blend == "ramp"
    assert Enhancer(Feathered(), device="cpu", tile=64, tile_blend="cut").tile_blend == "cut"
    assert Enhancer(create_model("lowlight-unet-spec", base_width=4), device="cpu").tile_blend == "ramp"
    with pytest.raises(EnhanceKitError, match="unknown tile blend"):
        Enhancer(nn.Identity(), device="cpu", tile_blend="linear")


@torch.inference_mode()
def test_enhancer_passes_the_blend_to_tiling() -> None:
    image = torch.rand(40, 56, 3).numpy() * np.linspace(0.1, 1.0, 56, dtype=np.float32)[:, None]

    class PlusMean(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return _plus_tile_mean(t)

    outputs = {
        blend: Enhancer(PlusMean(), device="cpu", tile=24, tile_overlap=12, tile_blend=blend)(image)
        for blend in ("cut", "ramp")
    }
    x = torch.from_numpy(image).movedim(-1, 0)[None]
    for blend, out in outputs.items():
        expected = tiled_forward(_plus_tile_mean, x, tile=24, overlap=12, blend=blend)[0].movedim(0, -1)
        np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-6)


@torch.inference_mode()
def test_ramp_equals_cut_outside_the_bands() -> None:
    x = torch.rand(1, 3, 48, 96) * torch.linspace(0.1, 1.0, 96)
    cut = tiled_forward(_plus_tile_mean, x, tile=40, overlap=8, blend="cut")
    ramp = tiled_forward(_plus_tile_mean, x, tile=40, overlap=8, blend="ramp")
    # Rows start at 0, 8: cut at 24. Columns start at 0, 32, 56: cuts at 36 and 64. Bands are +-4 around them.
    outside = torch.ones(48, 96, dtype=torch.bool)
    outside[20:28] = False
    outside[:, 32:40] = outside[:, 60:68] = False
    torch.testing.assert_close(ramp[..., outside], cut[..., outside], rtol=0, atol=1e-6)
    assert not torch.allclose(ramp, cut)
    # With no overlap the band is one pixel wide: the hard cut itself.
    no_overlap = {
        blend: tiled_forward(_plus_tile_mean, x, tile=40, overlap=0, blend=blend) for blend in BLENDS
    }
    torch.testing.assert_close(no_overlap["ramp"], no_overlap["cut"], rtol=0, atol=1e-6)
