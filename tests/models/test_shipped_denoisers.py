"""The shipped gray AWGN denoisers (``adl-gray``, ``adl-gray-8bit``, ``dncnn-gray``) on an image they never
saw: the luma of Set5's butterfly (not in Train400) with sigma 15/25/50 noise, as floats and as a saved 8-bit
file holds it, scored by scikit-image's PSNR."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio

from enhancekit import create_model
from enhancekit.data.degradations import add_gaussian_noise
from enhancekit.inference import Enhancer


@pytest.fixture
def butterfly_luma(butterfly) -> np.ndarray:
    return rgb2gray(butterfly)[..., None]


def _denoise(name: str, noisy: np.ndarray, **kwargs) -> np.ndarray:
    return np.clip(Enhancer(create_model(name, **kwargs), device="cpu")(noisy), 0, 1)


def _psnr(output: np.ndarray, clean: np.ndarray) -> float:
    return peak_signal_noise_ratio(clean, output.astype(np.float64), data_range=1.0)


SHIPPED = ("adl-gray", "adl-gray-8bit", "dncnn-gray")


@pytest.mark.parametrize("saved", [False, True], ids=["floats", "8-bit"])
@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_blind_models_beat_the_noisy_input_and_wavelets(butterfly_luma, sigma, saved):
    # Each model is trained for one of the two forms but must serve both; the wavelet baseline gets the truth.
    noisy = add_gaussian_noise(butterfly_luma, sigma, seed=1)
    if saved:
        noisy = np.round(np.clip(noisy, 0, 1) * 255) / 255
    scores = {name: _psnr(_denoise(name, noisy), butterfly_luma) for name in SHIPPED}
    wavelet = _psnr(_denoise("wavelet", noisy, sigma=float(sigma)), butterfly_luma)
    noisy_psnr = _psnr(noisy, butterfly_luma)
    for name, score in scores.items():
        # Trained denoisers gain 8-12 dB here; a broken weight file or a sigmoid/residual mix-up gains little.
        assert score > noisy_psnr + 6, (name, score, noisy_psnr)
        assert score > wavelet + 0.5, (name, score, wavelet)


def test_blind_models_keep_a_clean_image_nearly_unchanged(butterfly_luma):
    # Blind over sigma 0-55: a noise-free image must not be smoothed away.
    for name in SHIPPED:
        assert _psnr(_denoise(name, butterfly_luma.astype(np.float32)), butterfly_luma) > 38
