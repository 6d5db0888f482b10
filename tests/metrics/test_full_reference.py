"""PSNR / SSIM / MSE against scikit-image on real images, and the colour/crop conventions."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from enhancekit.errors import EnhanceKitError
from enhancekit.metrics import mse, parse_metrics, psnr, rgb_to_y, ssim


def _distorted(image: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, 0.04, image.shape), 0, 1)


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    kwargs = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    return structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, **kwargs)


@pytest.mark.parametrize("name", ["butterfly", "baby"])
def test_rgb_metrics_match_scikit_image(name, request):
    target = request.getfixturevalue(name)
    output = _distorted(target)
    assert psnr(output, target) == pytest.approx(
        peak_signal_noise_ratio(target, output, data_range=1.0), abs=1e-4
    )
    assert mse(output, target) == pytest.approx(mean_squared_error(target, output), abs=1e-10)
    assert ssim(output, target) == pytest.approx(_sk_ssim(output, target), abs=1e-4)


def test_y_channel_matches_scikit_image_ycbcr(butterfly):
    # skimage's rgb2ycbcr is the same ITU-R BT.601 studio-range transform as MATLAB's (Y in 16..235).
    expected = rgb2ycbcr(butterfly)[..., 0] / 255.0
    np.testing.assert_allclose(rgb_to_y(butterfly), expected, atol=1e-10)
    output = _distorted(butterfly)
    y_out, y_tgt = rgb2ycbcr(output)[..., 0] / 255.0, expected
    crop = 3
    cropped = (slice(crop, -crop), slice(crop, -crop))
    assert psnr(output, butterfly, color="y", crop=crop) == pytest.approx(
        peak_signal_noise_ratio(y_tgt[cropped], y_out[cropped], data_range=1.0), abs=1e-4
    )
    assert ssim(output, butterfly, color="y", crop=crop) == pytest.approx(
        _sk_ssim(y_out[cropped], y_tgt[cropped]), abs=1e-4
    )


def test_gray_images_and_identity(baby):
    gray = baby[..., 1]
    assert ssim(gray, gray) == pytest.approx(1.0)
    assert psnr(gray, gray) == float("inf")
    assert psnr(gray, gray, color="y") == float("inf")  # gray is its own luma


def test_errors_are_user_errors(baby):
    with pytest.raises(EnhanceKitError, match="does not match"):
        psnr(baby[:-1], baby)
    with pytest.raises(EnhanceKitError, match="colour convention"):
        psnr(baby, baby, color="lab")
    with pytest.raises(EnhanceKitError, match="too small"):
        ssim(baby[:8, :8], baby[:8, :8], crop=4)
    with pytest.raises(EnhanceKitError, match="unknown metric"):
        parse_metrics("psnr,lpips")


def test_volume_ssim_matches_scikit_image_in_3d():
    from skimage.metrics import structural_similarity

    from enhancekit.metrics import ssim_volume

    rng = np.random.default_rng(0)
    clean = rng.random((14, 24, 20))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    expected = structural_similarity(
        noisy, clean, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim_volume(noisy, clean) == pytest.approx(expected, abs=1e-6)
    assert ssim_volume(clean, clean) == pytest.approx(1.0)
    with pytest.raises(EnhanceKitError, match="11-wide"):
        ssim_volume(clean[:8], clean[:8])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_images_are_scaled_by_their_type(baby, dtype):
    peak = np.iinfo(dtype).max
    target = np.round(baby * peak).astype(dtype)
    output = np.round(_distorted(baby) * peak).astype(dtype)
    # scikit-image takes the integer type's range as the data range, as a saved image would be read.
    assert psnr(output, target) == pytest.approx(peak_signal_noise_ratio(target, output), abs=1e-4)
    assert ssim(output, target) == pytest.approx(_sk_ssim(output / peak, target / peak), abs=1e-4)
    with pytest.raises(EnhanceKitError, match="uint8 or uint16"):
        psnr(target.astype(np.int32), target.astype(np.int32))
