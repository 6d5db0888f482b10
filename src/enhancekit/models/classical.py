"""Classical (non-learned) baselines, registered as models so every command can compare against them."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, sparse
from scipy.sparse import linalg
from skimage import exposure
from torch import nn

from enhancekit.data.degradations import imresize
from enhancekit.registry import register_model


class Bicubic(nn.Module):
    """MATLAB-compatible bicubic interpolation (Keys 1981, a = -0.5) by an integer factor ``scale``.

    The standard SR baseline: with MATLAB's ``imresize`` semantics its scores match the published bicubic
    rows of SR papers (e.g. Set5 x3 Y-PSNR 30.39 dB).
    """

    in_channels = None

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = int(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)


register_model(
    "bicubic",
    Bicubic,
    task="sr",
    scale=2,
    description="MATLAB-compatible bicubic upscaling (baseline; scale from --degrade/--scale)",
)


class Identity(nn.Module):
    """The input unchanged: the "do nothing" row of any evaluation (e.g. the noisy input's own PSNR, scored
    through exactly the pipeline the models go through)."""

    in_channels = None
    scale = 1

    def __init__(self, spatial_dims: int = 2) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


register_model("identity", Identity, task="enhance", description="the input unchanged (baseline row)")
register_model(
    "identity-3d", Identity, task="denoise", spatial_dims=3, description="the volume unchanged (baseline row)"
)

# BT.601 luma weights: the usual definition of an RGB image's luminance for exposure statistics.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# A mean luminance near 0 or 1 sends log(target) / log(mean) towards 0 or infinity; one decade either way
# covers real under- and over-exposure without turning a black or white frame into noise.
_GAMMA_RANGE = (0.1, 10.0)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luminance of ``(N, C, H, W)``: BT.601 luma for RGB, the channel mean otherwise."""
    if x.shape[1] == 3:
        weights = x.new_tensor(_LUMA_WEIGHTS).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    """A float64 CPU copy of ``x`` clamped to [0, 1], for the numpy/scipy baselines."""
    return x.detach().to("cpu", torch.float64).clamp(0, 1).numpy()


class GammaCorrection(nn.Module):
    """Power-law (gamma) correction ``y = x ** gamma`` per channel, the classic global low-light baseline.

    With a fixed ``gamma`` it is pointwise. With ``gamma=None`` it is adaptive: each image gets
    ``gamma = log(target_mean) / log(mean luminance)``, the exponent that maps a pixel at the image's mean
    luminance (BT.601 luma for RGB, channel mean otherwise) to ``target_mean``; it is clamped to [0.1, 10].
    Since ``x ** gamma`` is concave for ``gamma < 1``, the output's mean luminance typically ends up below
    ``target_mean`` (Jensen's inequality). The default 0.4 is close to the median mean luma of the LOL
    training references (0.42 on the 40-pair our485 subset).

    Tiling: the adaptive exponent is a statistic of the whole image, and per-tile exponents would give each
    tile its own brightness, so the adaptive module sets ``tileable = False``; the fixed one is tileable.
    """

    in_channels = None
    scale = 1

    def __init__(self, gamma: float | None = None, target_mean: float = 0.4) -> None:
        super().__init__()
        if gamma is not None and gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if not 0 < target_mean < 1:
            raise ValueError(f"target_mean must be in (0, 1), got {target_mean}")
        self.gamma = gamma
        self.target_mean = float(target_mean)
        self.tileable = gamma is not None

    def adaptive_gamma(self, x: torch.Tensor) -> torch.Tensor:
        """The per-image exponent ``(N,)`` that maps each image's mean luminance to ``target_mean``."""
        mean = _luminance(x.clamp(0, 1)).flatten(1).mean(dim=1).double()
        # Away from 0 and 1 so that the logarithm stays finite and non-zero; the clamp below bounds the rest.
        mean = mean.clamp(1e-6, 1 - 1e-6)
        gamma = math.log(self.target_mean) / torch.log(mean)
        return gamma.clamp(*_GAMMA_RANGE).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Negative inputs would give NaN under a fractional power.
        x = x.clamp(0, 1)
        if self.gamma is None:
            return x.pow(self.adaptive_gamma(x).view(-1, *([1] * (x.ndim - 1))))
        return x.pow(self.gamma)


class CLAHE(nn.Module):
    """Contrast-limited adaptive histogram equalisation (Zuiderveld, "Contrast Limited Adaptive Histogram
    Equalization", Graphics Gems IV, 1994) of the luminance, by scikit-image's ``equalize_adapthist``.

    The equalised channel is the HSV value ``V = max over channels``; every channel is then scaled by
    ``V' / V``. That is exactly the HSV round trip with hue and saturation kept, and it never leaves the
    gamut (the largest channel becomes ``V' <= 1``), whereas equalising Lab's ``L`` pushes saturated colours
    out of gamut and clipping them back shifts their hue. A gray image is equalised directly (``V`` is the
    image), and any other channel count is handled the same way. Black pixels (``V = 0``) have no hue and
    become gray at ``V'``. Note that ``equalize_adapthist`` stretches ``V`` to the full range before and after
    equalising.

    ``kernel_size`` is the side of CLAHE's contextual regions in pixels (``None``: 1/8 of each side);
    ``clip_limit`` in (0, 1] limits the histogram peaks, i.e. the contrast gain (1 = plain AHE).

    Runs in numpy on the CPU, one image at a time, and returns on the input's device and dtype.
    ``tileable = False``: CLAHE's contextual regions and full-range stretch are defined on the whole image;
    tiling it would add seams and per-tile brightness.
    """

    in_channels = None
    scale = 1
    tileable = False

    def __init__(self, clip_limit: float = 0.01, kernel_size: int | None = None) -> None:
        super().__init__()
        if not 0 < clip_limit <= 1:
            raise ValueError(f"clip_limit must be in (0, 1], got {clip_limit}")
        if kernel_size is not None and kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.clip_limit = float(clip_limit)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = _to_numpy(x)
        value = pixels.max(axis=1)
        out = np.empty_like(pixels)
        for n in range(len(pixels)):
            equalized = exposure.equalize_adapthist(
                value[n], kernel_size=self.kernel_size, clip_limit=self.clip_limit
            )
            lit = value[n] > 0
            gain = np.divide(equalized, value[n], out=np.zeros_like(equalized), where=lit)
            out[n] = np.where(lit, pixels[n] * gain, equalized)
        return torch.from_numpy(out).clamp(0, 1).to(device=x.device, dtype=x.dtype)


class LIME(nn.Module):
    """LIME low-light enhancement (Guo, Li, Ling, "LIME: Low-Light Image Enhancement via Illumination Map
    Estimation", IEEE TIP 2017), without its optional BM3D denoising.

    The initial illumination is the maximum over channels, ``T̂ = max_c x_c``. It is refined by the paper's
    sped-up solver: ``T`` minimises ``||T - T̂||² + alpha * sum_d sum_p A_d(p) (∂_d T(p))²`` with
    ``A_d = W_d / (|∂_d T̂| + eps)`` and the paper's weighting strategy III,
    ``W_d = 1 / (|G_sigma * ∂_d T̂| + eps)`` (Gaussian-smoothed gradients; ``sigma=0`` gives strategy II),
    which is the linear system ``(I + alpha * sum_d D_d^T diag(A_d) D_d) t = t̂``, solved exactly by a sparse
    LU factorisation. The enhanced image is ``x / max(T ** gamma, eps)``, clipped to [0, 1].

    Defaults are the paper's: ``alpha=0.15`` (the authors' setting for the sped-up solver with strategy III),
    ``sigma=2``, ``gamma=0.8``, ``eps=1e-3``. The system matrix is an M-matrix whose rows sum to one, so the
    refined map is a weighted average of the initial one: it stays within its range and keeps its mean.

    Large images: the factorisation costs about 2 s for 600x400 on one core and grows faster than the pixel
    count, so above ``max_solve_pixels`` (``None``: never) the initial map is area-downsampled to that many
    pixels, refined there and bilinearly upsampled. The illumination is smooth away from edges, so this
    mostly softens the map at strong edges (slight halos). The default keeps LOL (600x400) and DICM (640x480)
    exact.

    ``tileable = False``: the refinement is a global solve, and per-tile solves would disagree at the seams.
    """

    in_channels = None
    scale = 1
    tileable = False

    def __init__(
        self,
        alpha: float = 0.15,
        gamma: float = 0.8,
        sigma: float = 2.0,
        eps: float = 1e-3,
        max_solve_pixels: int | None = 320_000,
    ) -> None:
        super().__init__()
        if alpha < 0 or sigma < 0:
            raise ValueError(f"alpha and sigma must be >= 0, got {alpha} and {sigma}")
        if gamma <= 0 or eps <= 0:
            raise ValueError(f"gamma and eps must be > 0, got {gamma} and {eps}")
        if max_solve_pixels is not None and max_solve_pixels < 1:
            raise ValueError(f"max_solve_pixels must be >= 1, got {max_solve_pixels}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.sigma = float(sigma)
        self.eps = float(eps)
        self.max_solve_pixels = max_solve_pixels

    def illumination(self, x: torch.Tensor) -> torch.Tensor:
        """The refined illumination map ``T`` (before gamma) of ``(N, C, H, W)``: ``(N, 1, H, W)`` float64 on
        the CPU."""
        initial = torch.from_numpy(_to_numpy(x).max(axis=1, keepdims=True))
        height, width = initial.shape[2:]
        size = (height, width)
        if self.max_solve_pixels is not None and height * width > self.max_solve_pixels:
            factor = math.sqrt(self.max_solve_pixels / (height * width))
            size = (max(1, int(height * factor)), max(1, int(width * factor)))
            initial = F.interpolate(initial, size=size, mode="area")
        refined = torch.from_numpy(np.stack([self._refine(t) for t in initial[:, 0].numpy()]))[:, None]
        if size != (height, width):
            refined = F.interpolate(refined, size=(height, width), mode="bilinear", align_corners=False)
        return refined

    def _refine(self, initial: np.ndarray) -> np.ndarray:
        """Solve the sped-up LIME problem for one ``(H, W)`` initial map."""
        height, width = initial.shape
        weights = []
        for axis in (1, 0):
            # Forward differences; the appended edge makes the difference past the last pixel zero.
            grad = np.diff(initial, axis=axis, append=np.take(initial, [-1], axis=axis))
            smoothed = ndimage.gaussian_filter(grad, self.sigma, mode="nearest")
            weights.append(self.alpha / ((np.abs(smoothed) + self.eps) * (np.abs(grad) + self.eps)))
        wx, wy = weights
        # No edge leaves the last column (or row): those pixels have no right (or lower) neighbour.
        wx[:, -1] = 0
        wy[-1, :] = 0
        wx, wy = wx.ravel(), wy.ravel()
        # I + sum_d D_d^T diag(w_d) D_d as five diagonals: each edge (p, q) adds its weight on the diagonal at
        # both ends and its negative at (p, q) and (q, p).
        diagonal = 1 + wx + wy
        diagonal[1:] += wx[:-1]
        diagonal[width:] += wy[:-width]
        bands = [(0, diagonal), (1, -wx[:-1]), (-1, -wx[:-1]), (width, -wy[:-width]), (-width, -wy[:-width])]
        # A one-pixel-wide image puts the row and column neighbours on the same diagonal: add them up.
        merged: dict[int, np.ndarray] = {}
        for offset, band in bands:
            if band.size:
                merged[offset] = merged[offset] + band if offset in merged else band
        n = height * width
        matrix = sparse.diags(list(merged.values()), list(merged), shape=(n, n), format="csc")
        # The matrix is symmetric positive definite: no pivoting is needed, and a symmetric minimum-degree
        # ordering keeps the fill-in lowest (about 2.5x faster than spsolve's default on 600x400).
        lu = linalg.splu(
            matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        return lu.solve(initial.ravel()).reshape(height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        transmission = self.illumination(x).pow(self.gamma).clamp_min(self.eps)
        enhanced = torch.from_numpy(_to_numpy(x)) / transmission
        return enhanced.clamp(0, 1).to(device=x.device, dtype=x.dtype)


register_model(
    "gamma",
    GammaCorrection,
    task="lowlight",
    description="Gamma correction, per-image adaptive to a target mean luminance (classical baseline)",
)
register_model(
    "clahe",
    CLAHE,
    task="lowlight",
    description="CLAHE of the HSV value, hue and saturation kept (Zuiderveld 1994; classical baseline)",
)
register_model(
    "lime",
    LIME,
    task="lowlight",
    description="LIME illumination-map Retinex enhancement (Guo et al., TIP 2017; classical baseline)",
)
