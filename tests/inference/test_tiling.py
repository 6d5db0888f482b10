"""Tiled forward: equal to the untiled forward for local models, for images, volumes and upscalers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.inference import tiled_forward


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
