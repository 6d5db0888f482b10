"""Full-reference metrics (PSNR, SSIM, MSE) and the colour/crop conventions they are computed under.

Conventions, explicit in every signature:

- Images are float arrays in [0, 1], H x W x C (C = 1 or 3) or H x W; the data range is 1.
- ``color="y"``: luma of ITU-R BT.601 YCbCr with MATLAB ``rgb2ycbcr``'s studio range,
  ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` (not rounded), the convention of the SR literature
  (SRCNN, EDSR, BasicSR ``test_y_channel``). A gray image is its own luma.
  ``color="rgb"``: all channels (gray stays gray).
- ``crop``: pixels removed from every border before measuring (SR convention: ``crop = scale``).
- SSIM follows Wang et al. 2004 as in their MATLAB ``ssim_index.m``: 11 x 11 Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, population (biased) variances, only positions where the window fits (``valid``);
  colour SSIM is the mean over channels. This equals scikit-image's ``structural_similarity`` with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1`` (checked in the tests).
- PSNR = 10 log10(1 / MSE), MSE over all pixels and channels measured.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

from enhancekit.errors import EnhanceKitError

_YCBCR_Y = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in MATLAB ``rgb2ycbcr`` studio range ([16, 235] / 255) of an H x W x 3 image in [0, 1]."""
    return (image[..., :3] @ _YCBCR_Y + 16.0 / 255.0).astype(np.float64)


def prepare(image: np.ndarray, *, color: str = "rgb", crop: int = 0) -> np.ndarray:
    """Bring an image to the measured form: float64, H x W x C, converted by ``color``, ``crop`` removed.

    Integer images (uint8, uint16) are scaled to [0, 1] by their type's maximum; float ones are taken as
    already in [0, 1]."""
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.uint16):
        image = image / np.iinfo(image.dtype).max
    elif image.dtype.kind in "iu":
        raise EnhanceKitError(f"integer images must be uint8 or uint16, got {image.dtype}")
    image = image.astype(np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if color == "y":
        image = rgb_to_y(image)[..., None] if image.shape[-1] >= 3 else image[..., :1]
    elif color != "rgb":
        raise EnhanceKitError(f"unknown colour convention {color!r}; use 'y' or 'rgb'")
    if crop > 0:
        if min(image.shape[:2]) <= 2 * crop:
            raise EnhanceKitError(f"image of size {image.shape[:2]} is too small for a border crop of {crop}")
        image = image[crop:-crop, crop:-crop]
    return image


def _check_pair(output: np.ndarray, target: np.ndarray) -> None:
    if output.shape != target.shape:
        raise EnhanceKitError(f"output shape {output.shape} does not match target shape {target.shape}")


def mse(output: np.ndarray, target: np.ndarray, *, color: str = "rgb", crop: int = 0) -> float:
    """Mean squared error on the [0, 1] scale."""
    a, b = prepare(output, color=color, crop=crop), prepare(target, color=color, crop=crop)
    _check_pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(output: np.ndarray, target: np.ndarray, *, color: str = "rgb", crop: int = 0) -> float:
    """Peak signal-to-noise ratio in dB for data range 1 (``inf`` for identical images)."""
    error = mse(output, target, color=color, crop=crop)
    return float("inf") if error == 0 else float(10.0 * np.log10(1.0 / error))


def gaussian_window_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1D Gaussian; its outer product is the 2D SSIM window (the window is separable)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2
    window = np.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray, axes: int = 2) -> np.ndarray:
    """The separable window applied along the first ``axes`` axes, kept where it fits entirely."""
    pad = (len(window) - 1) // 2
    for axis in range(axes):
        image = correlate1d(image, window, axis=axis, mode="constant")
    return image[(slice(pad, -pad),) * axes]


def _ssim_mean(x: np.ndarray, y: np.ndarray, axes: int) -> float:
    window = gaussian_window_1d()
    if min(x.shape[:axes]) < len(window):
        raise EnhanceKitError(f"data of size {x.shape[:axes]} is smaller than the 11-wide SSIM window")
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _filter_valid(x, window, axes), _filter_valid(y, window, axes)
    var_x = _filter_valid(x * x, window, axes) - mu_x**2
    var_y = _filter_valid(y * y, window, axes) - mu_y**2
    cov = _filter_valid(x * y, window, axes) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def ssim(output: np.ndarray, target: np.ndarray, *, color: str = "rgb", crop: int = 0) -> float:
    """Structural similarity (Wang et al. 2004), mean over valid window positions and channels."""
    a, b = prepare(output, color=color, crop=crop), prepare(target, color=color, crop=crop)
    _check_pair(a, b)
    return float(np.mean([_ssim_mean(a[..., ch], b[..., ch], 2) for ch in range(a.shape[-1])]))


def ssim_volume(output: np.ndarray, target: np.ndarray) -> float:
    """3D SSIM of two D x H x W volumes in [0, 1]: the 11-tap Gaussian window along all three axes (an
    11 x 11 x 11 window), valid positions only; scikit-image's ``structural_similarity`` on 3D arrays."""
    a, b = np.asarray(output, np.float64), np.asarray(target, np.float64)
    _check_pair(a, b)
    if a.ndim != 3:
        raise EnhanceKitError(f"3D SSIM needs D x H x W volumes, got shape {a.shape}")
    return _ssim_mean(a, b, 3)
