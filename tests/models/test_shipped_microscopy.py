"""The shipped ``adl-microscopy`` on a real W2S pair it never trained on (field 049_0, one raw capture vs
the mean of 400; see tests/data/microscopy/LICENSE.md), scored by scikit-image's PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from enhancekit import create_model
from enhancekit.inference import Enhancer

FIXTURES = Path(__file__).parents[1] / "data" / "microscopy"
# Each estimates the noise level itself, as `enhance` runs it.
CLASSICAL = ("wavelet", "nlm", "bm3d")


def _gray(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / name), dtype=np.float64)[..., None] / 255.0


def _psnr(output: np.ndarray, clean: np.ndarray) -> float:
    return peak_signal_noise_ratio(clean, output.astype(np.float64), data_range=1.0)


def test_adl_microscopy_meets_the_issue_margins_on_a_held_out_w2s_pair():
    noisy, clean = _gray("w2s_049_0_noisy.png"), _gray("w2s_049_0_clean.png")
    scores = {
        name: _psnr(np.clip(Enhancer(create_model(name), device="cpu")(noisy), 0, 1), clean)
        for name in ("adl-microscopy", *CLASSICAL)
    }
    noisy_psnr = _psnr(noisy, clean)
    # Measured: noisy 17.4, NLM 22.0, wavelet 22.3, BM3D 23.2, adl-microscopy 27.8 dB. The issue asks for
    # +6 dB over the noisy capture and +1 dB over the best classical method; a wrong weight file or head
    # mix-up fails both.
    assert scores["adl-microscopy"] > noisy_psnr + 6, scores
    assert scores["adl-microscopy"] > max(scores[name] for name in CLASSICAL) + 1, scores
