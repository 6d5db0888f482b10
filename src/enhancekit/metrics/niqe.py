"""NIQE, the "completely blind" natural image quality evaluator (lower is better).

Reference: A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'Completely Blind' Image Quality
Analyzer", IEEE Signal Processing Letters 20(3), 2013. This module reproduces the authors' MATLAB
``niqe.m``: the image (8-bit gray, 0-255) is cropped to whole blocks; at two scales (the second made with
MATLAB's antialiased bicubic ``imresize(img, 0.5)``) its MSCN coefficients (local mean and deviation from a
7x7 Gaussian window, replicate borders, C = 1) are cut into blocks; each block gives 18 features per scale
(AGGD fit of the MSCN values: shape and mean of the two scale parameters; AGGD fits of the products with
the horizontal, vertical and two diagonal neighbours, circularly within the block: shape, mean, left and
right scale parameter); a Gaussian fitted to all blocks' features is compared with the pristine model by
``sqrt(d^T ((cov_p + cov_d) / 2)^+ d)``. Blocks with undefined (NaN) features are dropped as MATLAB's
``nanmean``/``nancov`` do.

The pristine model ``niqe_pris_params.npz`` (``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``) is
a byte-exact copy of ``basicsr/metrics/niqe_pris_params.npz`` from XPixelGroup/BasicSR (commit
8d56e3a045f9, Apache-2.0), which converted the numbers of the authors' MATLAB ``modelparameters.mat``.

Calibration: with ``convert="y"`` this gives 5.7296 on Set14 ``baboon.png``, the value BasicSR documents for
the authors' code in MATLAB R2021a fed the rounded Y channel of ``rgb2ycbcr``.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from enhancekit.data.degradations import imresize
from enhancekit.errors import EnhanceKitError

# Coefficients of MATLAB's rgb2gray (first row of the inverse NTSC YIQ matrix; documented as
# 0.2989 R + 0.5870 G + 0.1140 B).
_RGB_TO_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
# Y row of MATLAB's rgb2ycbcr (ITU-R BT.601, studio range 16-235) for 0-255 input.
_RGB_TO_Y = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0

# Shape grid of the authors' estimateaggdparam (gam = 0.2:0.001:10) and the ratio it is matched on.
_SHAPES = np.arange(200, 10001) / 1000.0
_SHAPE_RATIOS = gamma(2.0 / _SHAPES) ** 2 / (gamma(1.0 / _SHAPES) * gamma(3.0 / _SHAPES))

# Neighbour offsets (rows, cols) of the four pairwise products, as circshift arguments in niqe.m.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
_NUM_SCALES = 2


@functools.lru_cache(maxsize=1)
def _pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu_pris (36,), cov_pris (36, 36), gaussian_window (7, 7)) from the package data file."""
    params = resources.files("enhancekit.metrics").joinpath("niqe_pris_params.npz")
    with params.open("rb") as f, np.load(f) as d:
        return d["mu_pris_param"].ravel(), d["cov_pris_param"], d["gaussian_window"]


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Round non-negative values like MATLAB's conversion to uint8 (halves away from zero, saturating)."""
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5)


def _to_gray_255(image: np.ndarray, convert: str) -> np.ndarray:
    """The 8-bit gray image (as float64 0-255) that MATLAB's NIQE would read for ``image``."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise EnhanceKitError(f"niqe needs an H x W or H x W x 3 image, got shape {image.shape}")
    # 8-bit input is used as is; float input in [0, 1] is quantised as if saved as an 8-bit image.
    img8 = image.astype(np.float64) if image.dtype == np.uint8 else _round_half_up(image * 255.0)
    if img8.ndim == 2:
        return img8
    if convert == "gray":
        return _round_half_up(img8 @ _RGB_TO_GRAY)
    return _round_half_up(img8 @ _RGB_TO_Y + _Y_OFFSET)


def _mscn(gray: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients as in niqe.m (imfilter 'replicate', C = 1)."""
    mu = correlate(gray, window, mode="nearest")
    var = correlate(gray * gray, window, mode="nearest") - mu * mu
    # abs() as in niqe.m: rounding can make the variance of flat regions slightly negative.
    return (gray - mu) / (np.sqrt(np.abs(var)) + 1.0)


def _aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise asymmetric generalised Gaussian fit of ``x`` (n, m): (shape, left scale, right scale).

    Moment matching on the authors' grid of shapes as in their ``estimateaggdparam``; a side without samples
    gives NaN scales and (like MATLAB's ``min`` over an all-NaN vector) the first shape of the grid.
    """
    sq = x * x
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        g = left / right
        r_hat = np.abs(x).mean(axis=1) ** 2 / sq.mean(axis=1)
        r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    # The ratio grows monotonically with the shape, so the grid point nearest in squared difference is one
    # of the two neighbours of the insertion point; ties go to the lower index like MATLAB's min.
    hi = np.clip(np.searchsorted(_SHAPE_RATIOS, r_norm), 1, len(_SHAPES) - 1)
    lo = hi - 1
    with np.errstate(invalid="ignore"):
        idx = np.where((_SHAPE_RATIOS[lo] - r_norm) ** 2 <= (_SHAPE_RATIOS[hi] - r_norm) ** 2, lo, hi)
    idx[np.isnan(r_norm)] = 0
    shape = _SHAPES[idx]
    factor = np.sqrt(gamma(1.0 / shape) / gamma(3.0 / shape))
    return shape, left * factor, right * factor


def _block_features(mscn: np.ndarray, block: int) -> np.ndarray:
    """The (blocks, 18) features of the non-overlapping ``block`` x ``block`` tiles of ``mscn``."""
    h, w = mscn.shape
    tiles = mscn.reshape(h // block, block, w // block, block).swapaxes(1, 2).reshape(-1, block, block)
    n = tiles.shape[0]
    shape, left, right = _aggd_fit(tiles.reshape(n, -1))
    feats = [shape, (left + right) / 2]
    for shift in _SHIFTS:
        pair = (tiles * np.roll(tiles, shift, axis=(1, 2))).reshape(n, -1)
        shape, left, right = _aggd_fit(pair)
        mean = (right - left) * gamma(2.0 / shape) / gamma(1.0 / shape)
        feats += [shape, mean, left, right]
    return np.stack(feats, axis=1)


def niqe(image: np.ndarray, *, block_size: int = 96, convert: str = "gray") -> float:
    """NIQE of an H x W or H x W x 3 image (float in [0, 1], or uint8); lower means more natural-looking.

    The image is quantised to 8 bits and, if colour, converted to gray like MATLAB: ``convert="gray"``
    uses ``rgb2gray`` (what MATLAB's ``niqe()`` does), ``convert="y"`` the Y channel of ``rgb2ycbcr``
    (BasicSR's convention, under which Set14 baboon scores 5.7296). ``block_size`` (even) is the block side
    at full scale; the image is cropped to whole blocks and needs at least one. Returns NaN when every block
    is featureless (e.g. a constant image), as the MATLAB code does.
    """
    if convert not in ("gray", "y"):
        raise EnhanceKitError(f"niqe convert must be 'gray' or 'y', got {convert!r}")
    if block_size < 2 or block_size % 2:
        raise EnhanceKitError(f"niqe block_size must be an even number >= 2, got {block_size}")
    gray = _to_gray_255(np.asarray(image), convert)
    rows, cols = gray.shape[0] // block_size, gray.shape[1] // block_size
    if rows == 0 or cols == 0:
        raise EnhanceKitError(
            f"niqe needs an image of at least {block_size}x{block_size}, got {gray.shape[0]}x{gray.shape[1]}"
        )
    mu_p, cov_p, window = _pristine_model()
    gray = gray[: rows * block_size, : cols * block_size]
    per_scale = [_block_features(_mscn(gray, window), block_size)]
    for scale in range(1, _NUM_SCALES):
        gray = imresize(gray, scale=0.5)
        per_scale.append(_block_features(_mscn(gray, window), block_size // 2**scale))
    feats = np.concatenate(per_scale, axis=1)

    # nanmean per feature, nancov over the blocks with no NaN feature (MATLAB's defaults).
    valid = ~np.isnan(feats)
    with np.errstate(invalid="ignore"):
        mu_d = np.where(valid, feats, 0.0).sum(axis=0) / valid.sum(axis=0)
    complete = feats[valid.all(axis=1)]
    if len(complete) == 0 or np.isnan(mu_d).any():
        return float("nan")
    # MATLAB's cov of a single observation is zero rather than undefined.
    cov_d = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros_like(cov_p)
    cov = (cov_p + cov_d) / 2
    # MATLAB pinv's tolerance: max(size) * norm * eps.
    inv = np.linalg.pinv(cov, rcond=max(cov.shape) * np.finfo(np.float64).eps)
    d = mu_p - mu_d
    return float(np.sqrt(d @ inv @ d))
