"""Classical denoising baselines (BM3D, non-local means, BayesShrink wavelets) on real 64x64 crops at
sigma 25: a Train400 gray image (DnCNN's training set) and Set5's colour ``baby``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from enhancekit import create_model, list_models
from enhancekit.data.degradations import add_gaussian_noise
from enhancekit.errors import EnhanceKitError
from enhancekit.inference import Enhancer
from enhancekit.registry import get_model_entry

DATA = Path(__file__).parents[1] / "data"
NAMES = ("bm3d", "nlm", "wavelet")
SIGMA = 25.0


def _read_crop(path: Path, top: int, left: int, size: int = 64) -> np.ndarray:
    """A ``size`` x ``size`` crop of an 8-bit PNG as float64 in [0, 1], H x W x C."""
    image = np.asarray(Image.open(path), dtype=np.float64) / 255.0
    image = image if image.ndim == 3 else image[..., None]
    return image[top : top + size, left : left + size]


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]


def _psnr(image: np.ndarray | torch.Tensor, clean: np.ndarray) -> float:
    if isinstance(image, torch.Tensor):
        image = image[0].permute(1, 2, 0).double().numpy()
    return peak_signal_noise_ratio(clean, np.asarray(image, dtype=np.float64), data_range=1.0)


@pytest.fixture(scope="module")
def gray() -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) 64x64 gray crop, noise sigma 25 with seed 0, unclipped as in benchmarks."""
    clean = _read_crop(DATA / "gray" / "test_001.png", 0, 0)
    return clean, add_gaussian_noise(clean, SIGMA, seed=0).astype(np.float64)


@pytest.fixture(scope="module")
def color() -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) 64x64 RGB crop of Set5 ``baby`` (its face), noise sigma 25 with seed 0."""
    clean = _read_crop(DATA / "sr" / "baby.png", 160, 224)
    return clean, add_gaussian_noise(clean, SIGMA, seed=0).astype(np.float64)


@pytest.fixture(scope="module")
def blind_gray_outputs(gray) -> dict[str, torch.Tensor]:
    """Each baseline's output on the gray crop with the estimated sigma (what ``enhancekit eval`` runs)."""
    _, noisy = gray
    return {name: create_model(name)(_tensor(noisy)) for name in NAMES}


def test_registered_as_whole_image_denoisers():
    assert set(NAMES) <= set(list_models("denoise"))
    for name in NAMES:
        model = create_model(name)
        assert model.scale == 1 and model.in_channels is None and model.tileable is False
        # The sigma=None default is what lets a caller see that the model takes the true noise level.
        assert model.sigma is None and get_model_entry(name).defaults == {"sigma": None}
        assert create_model(name, sigma=SIGMA).sigma == SIGMA


@pytest.mark.parametrize("name", NAMES)
def test_rejects_a_non_positive_sigma(name):
    # Bad constructor values reach the user as one-line errors through the registry.
    with pytest.raises(EnhanceKitError, match="sigma"):
        create_model(name, sigma=0)


def test_estimated_sigma_within_20_percent_of_the_truth(gray):
    _, noisy = gray
    estimate = create_model("wavelet").noise_sigma(noisy) * 255
    assert abs(estimate - SIGMA) < 0.2 * SIGMA
    assert create_model("wavelet", sigma=SIGMA).noise_sigma(noisy) == pytest.approx(SIGMA / 255)


@pytest.mark.parametrize("name", NAMES)
def test_improves_psnr_over_the_noisy_input_in_range(name, gray, blind_gray_outputs):
    clean, noisy = gray
    output = blind_gray_outputs[name]
    assert output.shape == (1, 1, 64, 64) and output.dtype == torch.float64
    assert output.min() >= 0 and output.max() <= 1
    # About 20.2 dB noisy; the baselines reach 27-29 dB, so a 5 dB margin catches a broken call.
    assert _psnr(output, clean) > _psnr(noisy, clean) + 5


def test_bm3d_beats_nlm_and_wavelet(gray, blind_gray_outputs):
    clean, _ = gray
    scores = {name: _psnr(output, clean) for name, output in blind_gray_outputs.items()}
    assert scores["bm3d"] > max(scores["nlm"], scores["wavelet"]) + 0.3


@pytest.mark.parametrize("name", NAMES)
def test_true_sigma_improves_psnr_and_is_deterministic(name, gray):
    clean, noisy = gray
    model = create_model(name, sigma=SIGMA)
    first = model(_tensor(noisy).float())
    assert first.dtype == torch.float32
    assert _psnr(first, clean) > _psnr(noisy, clean) + 5
    if name != "bm3d":  # BM3D's second run would double the slowest call here
        assert torch.equal(first, model(_tensor(noisy).float()))


@pytest.mark.parametrize("name", NAMES)
def test_colour_input(name, color):
    clean, noisy = color
    output = create_model(name)(_tensor(noisy))
    assert output.shape == (1, 3, 64, 64)
    assert output.min() >= 0 and output.max() <= 1
    assert _psnr(output, clean) > _psnr(noisy, clean) + 5


def test_runs_through_the_enhancer_on_a_batch_of_gray_pixels(gray):
    clean, noisy = gray
    output = Enhancer(create_model("wavelet"), device="cpu")(noisy[..., 0].astype(np.float32))
    assert output.shape == (64, 64)
    assert _psnr(output[..., None], clean) > _psnr(noisy, clean) + 5


def test_bm3d_without_the_package_names_the_install(monkeypatch, gray):
    # A None entry in sys.modules makes ``import bm3d`` raise ImportError.
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(EnhanceKitError, match="pip install bm3d"):
        create_model("bm3d")(_tensor(gray[1]))


def test_gaussian_filter_matches_scipy_and_takes_thin_volumes():
    rng = np.random.default_rng(0)
    image = rng.random((1, 1, 20, 17))
    smoothed = create_model("gaussian-filter", sigma_pixels=1.0)(torch.from_numpy(image).float())
    # torch's "reflect" padding is scipy's "mirror"; both truncate the kernel at 3 sigma here.
    expected = ndimage.gaussian_filter(image[0, 0], 1.0, mode="mirror", truncate=3.0)
    np.testing.assert_allclose(smoothed[0, 0].numpy(), expected, atol=1e-5)
    # Three slices are fewer than the kernel's radius of 3 along that axis: the edge repeats instead.
    volume = rng.random((1, 1, 3, 16, 16))
    out = create_model("gaussian-filter-3d", sigma_pixels=1.0)(torch.from_numpy(volume).float())
    assert out.shape == volume.shape
    expected = ndimage.gaussian_filter(volume[0, 0], 1.0, mode="nearest", truncate=3.0)
    np.testing.assert_allclose(out[0, 0, :, 3:-3, 3:-3].numpy(), expected[:, 3:-3, 3:-3], atol=1e-5)
