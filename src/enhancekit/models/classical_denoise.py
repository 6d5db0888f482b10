"""Classical (non-learned) Gaussian denoising baselines: BM3D, non-local means and wavelet shrinkage.

Each needs the noise standard deviation. Given as ``sigma`` (0-255 scale, as in the denoising literature) it
is used as is; with ``sigma=None`` it is estimated per image, blindly, by scikit-image's ``estimate_sigma``:
the median absolute deviation of the finest diagonal wavelet coefficients divided by 0.6745 (Donoho &
Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 1994), averaged over the channels.
Fine texture also lands in those coefficients and can push the estimate up (on Set12 at sigma 25 it gives
24.4-26.1, the highest on Barbara).

The models register ``sigma=None`` as a default, so ``"sigma" in entry.defaults`` marks a model that can take
the true noise level (e.g. from ``--degrade awgn:S``).

Inputs are not clamped before denoising: noise added in Python (``add_gaussian_noise``) is unclipped by
default, and clamping it would bias the noise (and the sigma estimate) in dark and bright regions. Outputs are
clipped to [0, 1].
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import torch
from skimage.restoration import denoise_nl_means, denoise_wavelet, estimate_sigma
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.registry import register_model


class _ClassicalDenoiser(nn.Module):
    """Shared plumbing: numpy on the CPU one ``H x W x C`` image at a time, with a given or estimated sigma.

    ``tileable = False``: the sigma estimate is a whole-image statistic (per-tile estimates would denoise
    tiles unevenly), and BM3D's and NLM's searches for similar patches would stop at the tile borders.
    """

    in_channels = None
    scale = 1
    tileable = False

    def __init__(self, sigma: float | None = None) -> None:
        super().__init__()
        if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number (0-255 scale) or None, got {sigma}")
        self.sigma = None if sigma is None else float(sigma)

    def noise_sigma(self, image: np.ndarray) -> float:
        """The noise standard deviation of one ``H x W x C`` image on the [0, 1] scale: the given ``sigma``
        / 255, or the blind wavelet estimate."""
        if self.sigma is not None:
            return self.sigma / 255.0
        return float(estimate_sigma(image, average_sigmas=True, channel_axis=-1))

    def denoise(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """Denoise one float64 ``H x W x C`` image with noise ``sigma`` (on the [0, 1] scale)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        out = np.stack([self.denoise(image, self.noise_sigma(image)) for image in images])
        out = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
        return out.clamp(0, 1).to(device=x.device, dtype=x.dtype)


def _import_bm3d() -> ModuleType:
    # Optional: the bm3d package is free for non-commercial use only, unlike the rest of the toolkit.
    try:
        import bm3d
    except ImportError:
        raise EnhanceKitError(
            "model bm3d needs the bm3d package (free for non-commercial use only): pip install bm3d"
        ) from None
    return bm3d


class BM3D(_ClassicalDenoiser):
    """BM3D (Dabov, Foi, Katkovnik, Egiazarian, "Image Denoising by Sparse 3-D Transform-Domain Collaborative
    Filtering", IEEE TIP 2007) by the authors' ``bm3d`` package (Mäkinen, Azzari, Foi, IEEE TIP 2020).

    Gray images go through ``bm3d``; RGB through ``bm3d_rgb``, which matches blocks on the luminance of the
    opponent colour transform (CBM3D, Dabov et al., ICIP 2007); other channel counts through multichannel
    ``bm3d``, which matches blocks on the first channel. ``profile`` is the package's parameter set
    (``"np"``: its normal profile). ``sigma``: see the module docstring.

    Needs ``pip install bm3d``, whose licence allows non-commercial use only.
    """

    #: the package refuses images smaller than its 8 x 8 blocks and crashes the process (segmentation fault,
    #: bm3d 4.0) on exactly 8 x 8; the engine pads smaller images (16 and up were checked)
    min_size = 16

    def __init__(self, sigma: float | None = None, profile: str = "np") -> None:
        super().__init__(sigma)
        self.profile = profile

    def denoise(self, image: np.ndarray, sigma: float) -> np.ndarray:
        bm3d = _import_bm3d()
        if image.shape[-1] == 3:
            return bm3d.bm3d_rgb(image, sigma, profile=self.profile)
        return bm3d.bm3d(image, sigma, profile=self.profile).reshape(image.shape)


class NonLocalMeans(_ClassicalDenoiser):
    """Non-local means (Buades, Coll, Morel, "A non-local algorithm for image denoising", CVPR 2005) by
    scikit-image's ``denoise_nl_means`` in its fast mode (Darbon et al., ISBI 2008: patch distances from
    integral images, every patch pixel weighted equally).

    The noise variance is subtracted from the patch distances and the filtering parameter is
    ``h = h_factor * sigma``, with scikit-image's recommended 0.8 for the fast mode. ``patch_size`` and
    ``patch_distance`` default to scikit-image's denoising example (5 and 6: 5x5 patches searched in a 13x13
    window). Colour patches compare all channels together. ``sigma``: see the module docstring.
    """

    def __init__(
        self, sigma: float | None = None, h_factor: float = 0.8, patch_size: int = 5, patch_distance: int = 6
    ) -> None:
        super().__init__(sigma)
        if h_factor <= 0:
            raise ValueError(f"h_factor must be > 0, got {h_factor}")
        if patch_size < 1 or patch_distance < 1:
            raise ValueError(
                f"patch_size and patch_distance must be >= 1, got {patch_size}, {patch_distance}"
            )
        self.h_factor = float(h_factor)
        self.patch_size = int(patch_size)
        self.patch_distance = int(patch_distance)

    def denoise(self, image: np.ndarray, sigma: float) -> np.ndarray:
        out = denoise_nl_means(
            image,
            h=self.h_factor * sigma,
            sigma=sigma,
            patch_size=self.patch_size,
            patch_distance=self.patch_distance,
            fast_mode=True,
            channel_axis=-1,
        )
        return out.reshape(image.shape)


class WaveletShrinkage(_ClassicalDenoiser):
    """Wavelet soft thresholding with BayesShrink's per-subband thresholds (Chang, Yu, Vetterli, "Adaptive
    wavelet thresholding for image denoising and compression", IEEE TIP 2000) by scikit-image's
    ``denoise_wavelet`` (which needs PyWavelets).

    RGB images are thresholded in YCbCr, as scikit-image recommends for colour, with the noise sigma carried
    into that colour space. ``wavelet`` is a PyWavelets name; ``levels=None`` is scikit-image's default depth.
    ``sigma``: see the module docstring.
    """

    def __init__(self, sigma: float | None = None, wavelet: str = "db1", levels: int | None = None) -> None:
        super().__init__(sigma)
        if levels is not None and levels < 1:
            raise ValueError(f"levels must be >= 1 or None, got {levels}")
        self.wavelet = wavelet
        self.levels = levels

    def denoise(self, image: np.ndarray, sigma: float) -> np.ndarray:
        out = denoise_wavelet(
            image,
            sigma=sigma,
            wavelet=self.wavelet,
            mode="soft",
            wavelet_levels=self.levels,
            convert2ycbcr=image.shape[-1] == 3,
            method="BayesShrink",
            rescale_sigma=True,
            channel_axis=-1,
        )
        return out.reshape(image.shape)


register_model(
    "bm3d",
    BM3D,
    task="denoise",
    sigma=None,
    description="BM3D / CBM3D (Dabov et al., TIP 2007; classical baseline; needs pip install bm3d)",
)
register_model(
    "nlm",
    NonLocalMeans,
    task="denoise",
    sigma=None,
    description="Non-local means, fast mode (Buades et al., CVPR 2005; classical baseline)",
)
register_model(
    "wavelet",
    WaveletShrinkage,
    task="denoise",
    sigma=None,
    description="BayesShrink wavelet soft thresholding (Chang et al., TIP 2000; classical baseline)",
)


class GaussianFilter(nn.Module):
    """Gaussian smoothing of standard deviation ``sigma_pixels`` pixels (voxels), 2D or 3D: the simplest
    denoising baseline, and a 3D one that needs no BM4D. Separable, with reflected borders; channels are
    filtered independently."""

    in_channels = None
    scale = 1

    def __init__(self, sigma_pixels: float = 1.0, spatial_dims: int = 2) -> None:
        super().__init__()
        sigma = sigma_pixels
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma_pixels must be a positive number, got {sigma}")
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.sigma_pixels = float(sigma)
        self.spatial_dims = spatial_dims
        radius = max(1, math.ceil(3 * sigma))
        taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
        self.register_buffer("taps", (taps / taps.sum()).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels, radius = x.shape[1], len(self.taps) // 2
        conv = nn.functional.conv2d if self.spatial_dims == 2 else nn.functional.conv3d
        y = x
        for axis in range(self.spatial_dims):
            shape = [1] * self.spatial_dims
            shape[axis] = len(self.taps)
            weight = self.taps.to(x.dtype).view(1, 1, *shape).repeat(channels, 1, *[1] * self.spatial_dims)
            # Pads only the filtered axis: F.pad lists the last axis first.
            padding = [0, 0] * self.spatial_dims
            padding[2 * (self.spatial_dims - 1 - axis) : 2 * (self.spatial_dims - axis)] = [radius, radius]
            # Reflection needs the axis longer than the radius; a thin volume's short axis repeats its edge.
            mode = "reflect" if y.shape[2 + axis] > radius else "replicate"
            y = conv(nn.functional.pad(y, padding, mode=mode), weight, groups=channels)
        return y


register_model(
    "gaussian-filter",
    GaussianFilter,
    task="denoise",
    description="Gaussian smoothing, sigma_pixels wide (baseline; spatial_dims=3 filters volumes)",
)
register_model(
    "gaussian-filter-3d",
    GaussianFilter,
    task="denoise",
    spatial_dims=3,
    description="Gaussian smoothing of volumes, sigma_pixels wide (3D baseline without BM4D)",
)
