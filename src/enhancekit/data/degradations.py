"""Synthetic degradations for making (degraded, target) pairs: MATLAB-exact bicubic resizing and AWGN.

Conventions: numpy images are H x W or H x W x C float arrays in [0, 1]; torch tensors are (..., H, W).

:func:`imresize` reproduces MATLAB's ``imresize`` with its default ``'bicubic'`` method (Keys cubic kernel
with a = -0.5, R. Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP 1981;
antialiasing when shrinking; MATLAB's coordinate mapping and symmetric boundary handling). The low-resolution
inputs of the standard super-resolution benchmarks (Set5, Set14, ...) were made with it, so it is what makes
synthetic LR images comparable with published numbers.

Degradations are named by a spec string (``bicubic:4``, ``awgn:25``), see :func:`parse_degradation`.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F

from enhancekit.errors import EnhanceKitError

# MATLAB's bicubic kernel spans [-2, 2] before it is stretched for antialiasing.
_CUBIC_WIDTH = 4.0


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5, as MATLAB's ``cubic`` helper in ``imresize.m``."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


@functools.lru_cache(maxsize=128)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The (out_len, in_len) float64 matrix that resizes one dimension like MATLAB's ``contributions``.

    MATLAB gathers, for each output pixel, ``ceil(width) + 2`` input taps whose out-of-range indices are
    mirrored (symmetric padding, edge sample repeated); summing the weights of taps that land on the same
    input pixel gives a dense matrix with exactly the same result.
    """
    antialias = scale < 1
    width = _CUBIC_WIDTH / scale if antialias else _CUBIC_WIDTH
    # 1-based output coordinates mapped into 1-based input coordinates, as in MATLAB.
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    dist = u[:, None] - indices
    # Antialiasing stretches the kernel by 1/scale; the leading factor scale cancels in the normalisation
    # but is kept so the weights match MATLAB's before it.
    weights = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    rows = np.broadcast_to(np.arange(out_len)[:, None], cols.shape)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (rows, cols), weights)
    matrix.setflags(write=False)
    return matrix


def _plan(
    in_shape: tuple[int, int], scale: float | None, output_shape: tuple[int, int] | None
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Per-dimension (scales, output sizes) following MATLAB's rules for a scale xor an output size."""
    if (scale is None) == (output_shape is None):
        raise EnhanceKitError("imresize needs exactly one of scale or output_shape")
    if scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise EnhanceKitError(f"imresize scale must be a positive number, got {scale}")
        out = (math.ceil(in_shape[0] * scale), math.ceil(in_shape[1] * scale))
        return (scale, scale), out
    assert output_shape is not None
    if len(output_shape) != 2 or min(output_shape) < 1:
        raise EnhanceKitError(f"imresize output_shape must be two positive sizes (H, W), got {output_shape}")
    out = (int(output_shape[0]), int(output_shape[1]))
    return (out[0] / in_shape[0], out[1] / in_shape[1]), out


@functools.lru_cache(maxsize=16)
def _phase_taps(factor: int) -> tuple[np.ndarray, int]:
    """Per-output-phase taps of MATLAB bicubic upscaling by an integer ``factor``, and the left padding.

    Upscaling by an integer is shift-invariant per phase: output ``k * factor + p`` is a fixed weighted sum
    of inputs ``k - pad ... k - pad + K - 1``. The taps are read off an interior block of the dense matrix,
    so they are MATLAB's weights by construction.
    """
    length = 16
    matrix = _resize_matrix(length, length * factor, float(factor))
    block = length // 2
    rows = matrix[block * factor : (block + 1) * factor]
    used = np.flatnonzero(np.any(rows != 0.0, axis=0))
    return np.ascontiguousarray(rows[:, used[0] : used[-1] + 1]), block - int(used[0])


def _upscale_last_axis(x: torch.Tensor, factor: int) -> torch.Tensor:
    taps, left = _phase_taps(factor)
    right = taps.shape[1] - 1 - left
    weight = torch.tensor(taps, dtype=x.dtype, device=x.device)[:, None, :]
    lead = x.shape[:-1]
    line = x.reshape(-1, 1, x.shape[-1])
    # Mirror padding with the edge sample repeated, as MATLAB's index mirroring does.
    padded = torch.cat(
        [line[..., :left].flip(-1), line, line[..., line.shape[-1] - right :].flip(-1)], dim=-1
    )
    phases = F.conv1d(padded, weight)  # (lines, factor, W): phase p of every input position
    return phases.transpose(1, 2).reshape(*lead, x.shape[-1] * factor)


def _upscale_by_convolution(x: torch.Tensor, factor: int) -> torch.Tensor:
    """MATLAB bicubic upscaling by an integer factor written with convolutions instead of size-dependent
    matrices, so that a graph traced with symbolic sizes (ONNX export with dynamic height and width) stays
    valid for every size. Equal to the matrix path up to float rounding for sides of at least 3 pixels.
    """
    x = _upscale_last_axis(x.transpose(-1, -2), factor).transpose(-1, -2)
    return _upscale_last_axis(x, factor)


def _imresize_torch(
    x: torch.Tensor, scale: float | None, output_shape: tuple[int, int] | None
) -> torch.Tensor:
    if x.ndim < 2:
        raise EnhanceKitError(f"imresize needs a tensor of shape (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    symbolic = not all(isinstance(side, int) for side in x.shape[-2:])
    if symbolic:
        if output_shape is not None or scale is None or scale != int(scale) or scale < 2:
            raise EnhanceKitError("imresize with symbolic sizes (export) supports integer upscaling only")
        return _upscale_by_convolution(x, int(scale))
    in_shape = (x.shape[-2], x.shape[-1])
    scales, out = _plan(in_shape, scale, output_shape)
    # MATLAB resizes the dimension with the smallest scale first (ties: rows first), which keeps the
    # intermediate image small when shrinking; the order changes the result only by rounding.
    for dim in sorted((0, 1), key=lambda d: scales[d]):
        m = torch.tensor(_resize_matrix(in_shape[dim], out[dim], scales[dim]), dtype=x.dtype, device=x.device)
        x = torch.matmul(m, x) if dim == 0 else torch.matmul(x, m.T)
    return x


@overload
def imresize(
    image: torch.Tensor, scale: float | None = None, output_shape: tuple[int, int] | None = None
) -> torch.Tensor: ...


@overload
def imresize(
    image: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None
) -> np.ndarray: ...


def imresize(
    image: torch.Tensor | np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> torch.Tensor | np.ndarray:
    """Resize like MATLAB's ``imresize(image, scale)`` / ``imresize(image, [H W])`` with method 'bicubic'.

    Give exactly one of ``scale`` (output size ``ceil(size * scale)``, the kernel uses ``scale`` itself)
    or ``output_shape`` ``(H, W)`` (the kernel uses ``out / in`` per dimension). Shrinking antialiases
    (kernel stretched by 1/scale), borders are handled by mirroring, and nothing is clipped or rounded
    (MATLAB does neither for floating-point input).

    ``image`` is a torch tensor (..., H, W) (any batch shape and device; differentiable; integer tensors are
    converted to float32) or a numpy array H x W or H x W x C (returned in the same layout, float64 if it
    was float64 and float32 otherwise; values are not rescaled).
    """
    if isinstance(image, torch.Tensor):
        return _imresize_torch(image, scale, output_shape)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise EnhanceKitError(f"imresize needs a numpy image H x W or H x W x C, got shape {arr.shape}")
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    # H x W x C -> C x H x W so the channels ride along as batch dimensions of the torch core.
    chw = arr if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    out = _imresize_torch(torch.from_numpy(np.ascontiguousarray(chw)), scale, output_shape).numpy()
    return out if arr.ndim == 2 else np.ascontiguousarray(np.moveaxis(out, 0, -1))


def crop_to_multiple(image: np.ndarray, k: int) -> np.ndarray:
    """The top-left part of an H x W[...] image whose height and width are multiples of ``k``.

    This is the usual super-resolution protocol: the HR image is cropped before downscaling by ``k`` so that
    the HR target and the upscaled output have the same size.
    """
    if k < 1:
        raise EnhanceKitError(f"crop multiple must be >= 1, got {k}")
    h, w = image.shape[0] - image.shape[0] % k, image.shape[1] - image.shape[1] % k
    if h == 0 or w == 0:
        raise EnhanceKitError(
            f"image of size {image.shape[0]}x{image.shape[1]} is smaller than the factor {k}"
        )
    return image[:h, :w]


def add_gaussian_noise(
    image: np.ndarray,
    sigma_255: float,
    seed: int = 0,
    *,
    clip: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``image`` plus white Gaussian noise of standard deviation ``sigma_255 / 255`` (float32).

    ``sigma_255`` is on the 0-255 scale as in the denoising literature (e.g. sigma 15/25/50 on BSD68). The
    noise comes from ``numpy.random.default_rng(seed)`` so the same seed gives the same noisy image, or from
    ``rng`` when given (training draws fresh noise per sample). The result is not clipped unless
    ``clip=True`` (benchmarks usually keep the unclipped values).
    """
    if not (math.isfinite(sigma_255) and sigma_255 >= 0):
        raise EnhanceKitError(f"noise sigma must be a non-negative number, got {sigma_255}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma_255 / 255.0, size=np.shape(image))
    noisy = (np.asarray(image, dtype=np.float64) + noise).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


class Degradation(ABC):
    """A degradation applied to an H x W x C float image in [0, 1]; ``scale`` is the resolution factor."""

    #: the spec name, e.g. ``"bicubic"``
    name: str
    #: HR size / degraded size (1 for degradations that keep the size)
    scale: int
    #: whether ``eval`` hands models the degraded image as a saved file would hold it (clipped to [0, 1] and
    #: rounded to the target's bit depth), rather than as floats
    saved_as_image: bool = True

    @classmethod
    @abstractmethod
    def from_arg(cls, arg: str) -> Degradation:
        """Build from the part of the spec after ``name:``; raise ``ValueError`` if it is malformed."""

    @abstractmethod
    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The degraded image (float32); random degradations draw from ``rng`` if given, else a fixed seed."""

    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        """The clean image that ``self(image)`` corresponds to (the image itself unless overridden)."""
        return image


class BicubicDownscale(Degradation):
    """MATLAB bicubic downscaling by an integer factor, after cropping to a multiple of it.

    The result is clipped to [0, 1] (MATLAB's uint8 output saturates the same way) but not quantised.
    """

    name = "bicubic"

    def __init__(self, factor: int) -> None:
        if factor < 2:
            raise EnhanceKitError(f"bicubic factor must be an integer >= 2, got {factor}")
        self.scale = factor

    @classmethod
    def from_arg(cls, arg: str) -> BicubicDownscale:
        return cls(int(arg))

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        hr = self.prepare_target(image)
        # Passing the output size gives the kernel the exact scale 1/k (out/in is the correctly rounded
        # 1/k) and avoids ceil(size * (1/k)) landing one pixel too large through rounding.
        lr = imresize(hr, output_shape=(hr.shape[0] // self.scale, hr.shape[1] // self.scale))
        return np.clip(lr, 0.0, 1.0).astype(np.float32, copy=False)

    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        return crop_to_multiple(image, self.scale)

    def __repr__(self) -> str:
        return f"BicubicDownscale(factor={self.scale})"


class GaussianNoise(Degradation):
    """Additive white Gaussian noise with sigma on the 0-255 scale and a fixed seed, neither clipped nor
    rounded: the protocol of the published gray-denoising tables (BM3D, DnCNN, ADL on BSD68 / Set12) and of
    KAIR's test scripts, so that ``eval --degrade awgn:S`` is comparable with them.

    With ``sigma_max`` the noise is blind: each image gets a sigma drawn uniformly from
    ``[sigma_255, sigma_max]`` (``awgn:0-55`` trains a blind denoiser, as DnCNN-B and ADL do).
    """

    name = "awgn"
    scale = 1
    saved_as_image = False

    def __init__(self, sigma_255: float, seed: int = 0, sigma_max: float | None = None) -> None:
        low_ok = math.isfinite(sigma_255) and (sigma_255 >= 0 if sigma_max is not None else sigma_255 > 0)
        if not low_ok:
            raise EnhanceKitError(f"awgn sigma must be a positive number, got {sigma_255}")
        if sigma_max is not None and not (math.isfinite(sigma_max) and sigma_max > sigma_255):
            raise EnhanceKitError(f"awgn sigma range {sigma_255}-{sigma_max} must increase")
        self.sigma_255 = sigma_255
        self.sigma_max = sigma_max
        self.seed = seed

    @property
    def blind(self) -> bool:
        return self.sigma_max is not None

    @classmethod
    def from_arg(cls, arg: str) -> GaussianNoise:
        low, dash, high = arg.partition("-")
        return cls(float(low), sigma_max=float(high) if dash else None)

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        sigma = (
            self.sigma_255 if self.sigma_max is None else float(rng.uniform(self.sigma_255, self.sigma_max))
        )
        return add_gaussian_noise(image, sigma, rng=rng)

    def __repr__(self) -> str:
        sigma = self.sigma_255 if self.sigma_max is None else f"{self.sigma_255}-{self.sigma_max}"
        return f"GaussianNoise(sigma_255={sigma}, seed={self.seed})"


class SavedGaussianNoise(GaussianNoise):
    """:class:`GaussianNoise` whose noisy image ``eval`` hands models as a saved noisy file holds it: clipped
    at black and white and rounded to the clean image's bit depth. At 8 bits and high sigma the clipping makes
    the noise far from Gaussian near black and white, which costs methods that assume Gaussian noise some PSNR
    (BM3D 0.26 dB on BSD68 at sigma 25) and favours models trained on such inputs."""

    name = "awgn-saved"
    saved_as_image = True

    def __repr__(self) -> str:
        return "Saved" + super().__repr__()


class PoorQuality(Degradation):
    """A poorer exposure of the same scene, for unpaired enhancement recipes that have only good images
    (e.g. dental X-rays): a random gamma in [1.3, 2.2] (darker mid-tones), contrast scaled by [0.6, 0.85]
    about the image mean, and Gaussian noise of sigma uniform in [0, ``sigma_255``] (0-255 scale)."""

    name = "lowquality"
    scale = 1

    def __init__(self, sigma_255: float, seed: int = 0) -> None:
        if not (math.isfinite(sigma_255) and sigma_255 >= 0):
            raise EnhanceKitError(f"lowquality noise sigma must be >= 0, got {sigma_255}")
        self.sigma_255 = sigma_255
        self.seed = seed

    @classmethod
    def from_arg(cls, arg: str) -> PoorQuality:
        return cls(float(arg))

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        toned = np.clip(image, 0.0, 1.0) ** rng.uniform(1.3, 2.2)
        mean = toned.mean()
        flat = mean + (toned - mean) * rng.uniform(0.6, 0.85)
        noisy = add_gaussian_noise(flat, float(rng.uniform(0.0, self.sigma_255)), rng=rng)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"PoorQuality(sigma_255={self.sigma_255}, seed={self.seed})"


def refuse_saved_noise(degradation: Degradation | None, where: str) -> None:
    """Refuse ``awgn-saved`` where no saved file's depth applies (training data, volumes), with the way to say
    what is meant there."""
    if isinstance(degradation, SavedGaussianNoise):
        recipe_hint = ", with input_bits: 8 or 16 to train on noisy inputs as a saved file holds them"
        hint = recipe_hint if where.startswith("data.") else ""
        raise EnhanceKitError(f"{where}: awgn-saved:S is for evaluating images; use awgn:S here{hint}")


def known_noise_sigma(degradation: Degradation | None) -> float | None:
    """The noise sigma (0-255) a degradation adds when it is one fixed level, for methods that can take it
    instead of estimating it; None otherwise (no noise, or blind noise of a random level)."""
    if isinstance(degradation, GaussianNoise) and not degradation.blind:
        return degradation.sigma_255
    return None


#: spec name -> degradation class; add a class here to make a new ``name:arg`` spec available.
DEGRADATIONS: dict[str, type[Degradation]] = {
    cls.name: cls for cls in (BicubicDownscale, GaussianNoise, SavedGaussianNoise, PoorQuality)
}

_ACCEPTED = (
    "bicubic:K (integer factor K >= 2), awgn:S (noise sigma S > 0 on the 0-255 scale, unclipped floats as "
    "in published tables), awgn:A-B (blind: sigma drawn from A..B per image), awgn-saved:S (the noisy image "
    "as a saved file holds it: clipped and rounded) or lowquality:S (darker, flatter, noise up to S)"
)


def parse_degradation(spec: str) -> Degradation:
    """The degradation named by ``spec``: ``bicubic:K`` (MATLAB bicubic downscale by K) or ``awgn:S``.

    Unknown or malformed specs raise :class:`EnhanceKitError` listing the accepted forms.
    """
    name, sep, arg = spec.strip().partition(":")
    cls = DEGRADATIONS.get(name.strip().lower())
    if cls is None or not sep:
        raise EnhanceKitError(f"unknown degradation {spec!r}; use {_ACCEPTED}")
    try:
        return cls.from_arg(arg.strip())
    except (ValueError, OverflowError) as err:
        raise EnhanceKitError(f"malformed degradation {spec!r}; use {_ACCEPTED}") from err
    except EnhanceKitError as err:
        raise EnhanceKitError(f"invalid degradation {spec!r} ({err}); use {_ACCEPTED}") from err
