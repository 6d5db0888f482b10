"""Classical low-light baselines (gamma, CLAHE, LIME) on real LOL training pairs, checked against scikit-image
and against the properties the papers state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import exposure
from skimage.metrics import peak_signal_noise_ratio

from enhancekit import create_model, list_models
from enhancekit.inference import Enhancer

DATA = Path(__file__).parents[1] / "data"
LOWLIGHT = DATA / "lowlight"
PAIRS = ("141", "575")
NAMES = ("gamma", "clahe", "lime")


def _read(path: Path) -> np.ndarray:
    """An 8-bit PNG as float64 in [0, 1] (H x W [x C]), read with Pillow alone."""
    return np.asarray(Image.open(path), dtype=np.float64) / 255.0


def _tensor(image: np.ndarray) -> torch.Tensor:
    """H x W [x C] float array -> (1, C, H, W) float32 tensor."""
    array = image if image.ndim == 3 else image[..., None]
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None]


def _total_variation(t: torch.Tensor) -> float:
    return float(t.diff(dim=-1).abs().sum() + t.diff(dim=-2).abs().sum())


@pytest.fixture(scope="module")
def low_crop() -> torch.Tensor:
    """A 96x128 crop of a real low-light image (small, so that LIME's solve is quick)."""
    return _tensor(_read(LOWLIGHT / "low" / "575.png"))[..., 150:246, 200:328]


def test_registered_as_lowlight_and_not_tileable():
    assert set(NAMES) <= set(list_models("lowlight"))
    for name in NAMES:
        model = create_model(name)
        assert model.scale == 1 and model.in_channels is None and model.tileable is False
    assert create_model("gamma", gamma=0.5).tileable is True  # a fixed exponent is pointwise


@pytest.mark.parametrize("stem", PAIRS)
@pytest.mark.parametrize("name", NAMES)
def test_brightens_and_improves_psnr_on_real_lol_pair(name, stem):
    low = _read(LOWLIGHT / "low" / f"{stem}.png")
    high = _read(LOWLIGHT / "high" / f"{stem}.png")
    output = create_model(name)(_tensor(low))[0].permute(1, 2, 0).double().numpy()
    assert output.shape == low.shape
    assert output.mean() > low.mean() + 0.01
    psnr_out = peak_signal_noise_ratio(high, output, data_range=1.0)
    psnr_in = peak_signal_noise_ratio(high, low, data_range=1.0)
    assert psnr_out > psnr_in + 0.5


def test_fixed_gamma_is_a_power(low_crop):
    torch.testing.assert_close(create_model("gamma", gamma=0.45)(low_crop), low_crop**0.45)


def test_adaptive_gamma_maps_the_mean_luminance_to_the_target():
    # A flat image's mean luminance is its value, so it must land exactly on the target.
    flat = torch.full((2, 3, 8, 8), 0.05)
    flat[1] = 0.6
    output = create_model("gamma", target_mean=0.3)(flat)
    torch.testing.assert_close(output, torch.full_like(flat, 0.3))
    # A black frame hits the clamp instead of a division by log(0), and stays black.
    black = torch.zeros(1, 1, 4, 4)
    model = create_model("gamma")
    assert model.adaptive_gamma(black).item() == pytest.approx(0.1)
    assert torch.equal(model(black), black)


def test_clahe_of_a_gray_image_is_equalize_adapthist():
    gray = _read(DATA / "gray" / "test_001.png")
    expected = exposure.equalize_adapthist(gray, clip_limit=0.02, kernel_size=32)
    output = create_model("clahe", clip_limit=0.02, kernel_size=32)(_tensor(gray))[0, 0].numpy()
    np.testing.assert_allclose(output, expected, atol=1e-6)


def test_clahe_of_rgb_keeps_hue_like_skimage_hsv_path(low_crop):
    # scikit-image equalises RGB through an HSV round trip; scaling the channels by V'/V must agree with it.
    rgb = low_crop[0].permute(1, 2, 0).double().numpy()
    expected = exposure.equalize_adapthist(rgb)
    output = create_model("clahe")(low_crop)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_lime_refined_illumination_is_a_smooth_average_of_the_max_channel(low_crop):
    model = create_model("lime")
    initial = low_crop.double().amax(dim=1, keepdim=True)
    refined = model.illumination(low_crop)
    assert refined.shape == initial.shape
    # The system matrix is an M-matrix with unit row sums: each refined value averages initial ones.
    assert initial.min() - 1e-9 <= refined.min() and refined.max() <= initial.max() + 1e-9
    assert refined.mean().item() == pytest.approx(initial.mean().item(), rel=1e-9)
    assert _total_variation(refined) < 0.5 * _total_variation(initial)
    # Retinex enhancement with the gamma-corrected map.
    expected = (low_crop.double() / refined.pow(0.8).clamp_min(1e-3)).clamp(0, 1).float()
    torch.testing.assert_close(model(low_crop), expected)


def test_lime_reduced_resolution_solve_stays_close(low_crop):
    exact = create_model("lime").illumination(low_crop)
    reduced = create_model("lime", max_solve_pixels=low_crop.shape[-1] * low_crop.shape[-2] // 4)
    approx = reduced.illumination(low_crop)
    assert approx.shape == exact.shape
    assert (approx - exact).abs().mean() < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_gray_batches_and_engine(name, low_crop):
    model = create_model(name)
    batch = torch.cat([low_crop, low_crop.flip(-1) * 0.5])
    output = model(batch)
    assert output.shape == batch.shape and output.dtype == batch.dtype
    assert output.min() >= 0 and output.max() <= 1
    # Images of a batch are independent (adaptive statistics are per image), and runs are deterministic.
    torch.testing.assert_close(output[1:], model(batch[1:]))
    torch.testing.assert_close(output, model(batch), rtol=0, atol=0)
    gray = batch[:, :1].double()
    gray_output = model(gray)
    assert gray_output.shape == gray.shape and gray_output.dtype == torch.float64
    # Through the engine on an H x W array (gray, channels-last CPU path).
    image = gray[0, 0].numpy()
    np.testing.assert_allclose(Enhancer(model, device="cpu")(image), gray_output[0, 0].numpy(), atol=1e-6)


def test_lime_on_a_one_pixel_wide_strip_equals_the_transposed_row(low_crop):
    # Width 1 puts a pixel's lower neighbour on the diagonal of its right one; the solve is symmetric in
    # the two axes, so the column must come out as the transposed row does.
    column = low_crop[..., :40, :1].contiguous()
    row = column.transpose(-1, -2).contiguous()
    lime = create_model("lime")
    torch.testing.assert_close(lime(column), lime(row).transpose(-1, -2), atol=1e-5, rtol=0)
