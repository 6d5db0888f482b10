"""MATLAB-compatible bicubic resizing (checked against MATLAB-made Set5 LR files), AWGN, degradation specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from enhancekit.data.degradations import (
    BicubicDownscale,
    GaussianNoise,
    add_gaussian_noise,
    crop_to_multiple,
    imresize,
    parse_degradation,
)
from enhancekit.errors import EnhanceKitError

SR = Path(__file__).parent / "sr"
CASES = [(name, scale) for name in ("baby", "butterfly") for scale in (2, 3, 4)]


def _uint8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _hr_lr(name: str, scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr = crop_to_multiple(_uint8(SR / f"{name}.png"), scale)
    return hr, _uint8(SR / f"{name}x{scale}.png").astype(np.int64)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's conversion to uint8: round halves away from zero, saturate.
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.int64)


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_float_path_matches_matlab_lr_files(name: str, scale: int) -> None:
    hr, lr = _hr_lr(name, scale)
    out = imresize(hr.astype(np.float64) / 255.0, scale=1 / scale)
    assert out.shape == lr.shape
    diff = _to_uint8(out * 255.0) - lr
    assert np.mean(np.abs(diff) <= 1) >= 0.999
    assert abs(diff.mean()) < 0.05


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_uint8_pipeline_is_bit_exact(name: str, scale: int) -> None:
    # MATLAB resizes uint8 input one dimension at a time (rows first for equal scales) and stores each pass
    # as uint8; replaying that with our weights must give the distributed LR files exactly.
    hr, lr = _hr_lr(name, scale)
    h, w = lr.shape[:2]
    rows = _to_uint8(imresize(hr.astype(np.float64), output_shape=(h, hr.shape[1])))
    out = _to_uint8(imresize(rows.astype(np.float64), output_shape=(h, w)))
    np.testing.assert_array_equal(out, lr)


def test_output_size_is_ceil_and_constant_is_preserved() -> None:
    const = np.full((7, 9, 2), 0.3, dtype=np.float32)
    up = imresize(const, scale=2.5)
    assert up.shape == (18, 23, 2) and up.dtype == np.float32
    np.testing.assert_allclose(up, 0.3, atol=1e-6)
    down = imresize(const, scale=1 / 3)
    assert down.shape == (3, 3, 2)
    np.testing.assert_allclose(down, 0.3, atol=1e-6)


def test_torch_and_numpy_paths_agree() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((21, 17, 3))
    out_np = imresize(img, output_shape=(10, 40))
    out_t = imresize(torch.from_numpy(img).permute(2, 0, 1)[None], output_shape=(10, 40))
    assert out_np.dtype == np.float64 and out_t.shape == (1, 3, 10, 40)
    np.testing.assert_allclose(out_t[0].permute(1, 2, 0).numpy(), out_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(imresize(img[..., 0], scale=0.5), imresize(img, scale=0.5)[..., 0], atol=1e-12)


def test_torch_path_is_differentiable() -> None:
    x = torch.rand(2, 1, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))
    y = torch.rand(1, 3, 6, 6, requires_grad=True)
    imresize(y, scale=2.0).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_imresize_rejects_bad_arguments() -> None:
    img = np.zeros((8, 8))
    for kwargs in ({}, {"scale": 0.5, "output_shape": (4, 4)}, {"scale": -1.0}, {"output_shape": (0, 4)}):
        with pytest.raises(EnhanceKitError):
            imresize(img, **kwargs)
    with pytest.raises(EnhanceKitError):
        imresize(np.zeros((2, 2, 2, 2)), scale=0.5)


def test_awgn_is_reproducible_and_has_the_requested_std() -> None:
    clean = np.full((128, 128, 3), 0.5, dtype=np.float32)
    a = add_gaussian_noise(clean, 25, seed=3)
    np.testing.assert_array_equal(a, add_gaussian_noise(clean, 25, seed=3))
    assert not np.array_equal(a, add_gaussian_noise(clean, 25, seed=4))
    assert a.dtype == np.float32 and a.shape == clean.shape
    noise = a.astype(np.float64) - clean
    assert abs(noise.std() - 25 / 255) < 0.02 * 25 / 255
    assert abs(noise.mean()) < 0.01 * 25 / 255
    bright = np.full((32, 32), 0.98, dtype=np.float32)
    assert add_gaussian_noise(bright, 25).max() > 1  # unclipped by default
    clipped = add_gaussian_noise(bright, 25, clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_parse_bicubic(butterfly: np.ndarray) -> None:
    deg = parse_degradation("bicubic:3")
    assert isinstance(deg, BicubicDownscale) and deg.scale == 3
    target = deg.prepare_target(butterfly)
    assert target.shape == (255, 255, 3)
    lr = deg(butterfly)
    assert lr.shape == (85, 85, 3) and lr.dtype == np.float32
    np.testing.assert_allclose(lr, np.clip(imresize(target, scale=1 / 3), 0, 1), atol=1e-6)


def test_parse_awgn(butterfly: np.ndarray) -> None:
    deg = parse_degradation(" awgn:15 ")
    assert isinstance(deg, GaussianNoise) and deg.scale == 1
    assert deg.prepare_target(butterfly) is butterfly
    np.testing.assert_array_equal(deg(butterfly), add_gaussian_noise(butterfly, 15, seed=0))


def test_blind_awgn_draws_a_sigma_per_image_from_the_range() -> None:
    deg = parse_degradation("awgn:0-55")
    assert isinstance(deg, GaussianNoise) and deg.blind
    flat = np.full((64, 64, 1), 0.5, np.float32)
    stds = [float((deg(flat, rng=np.random.default_rng(i)) - flat).std() * 255) for i in range(200)]
    # Uniform on [0, 55]: spread over the whole range, mean near 27.5.
    assert min(stds) < 5 and max(stds) > 50 and 24 < np.mean(stds) < 31
    # Without an rng the draw is the degradation's seed: reproducible, as evaluation needs.
    np.testing.assert_array_equal(deg(flat), deg(flat))


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "bicubic",
        "bicubic:",
        "bicubic:x",
        "bicubic:2.5",
        "bicubic:1",
        "awgn:-5",
        "awgn:nan",
        "blur:2",
        "awgn:0",
        "awgn:30-10",
        "awgn:5-inf",
    ],
)
def test_parse_rejects_junk(spec: str) -> None:
    with pytest.raises(EnhanceKitError, match="bicubic:K"):
        parse_degradation(spec)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_convolutional_upscaling_equals_the_matrix_path(factor):
    from enhancekit.data.degradations import _upscale_by_convolution

    x = torch.rand(2, 3, 13, 22, dtype=torch.float64)
    torch.testing.assert_close(
        _upscale_by_convolution(x, factor), imresize(x, scale=factor), atol=1e-12, rtol=0
    )


def test_eval_inputs_of_awgn_are_floats_and_of_awgn_saved_saved_images(tmp_path) -> None:
    from enhancekit.data.degradations import SavedGaussianNoise, known_noise_sigma
    from enhancekit.evaluation import degraded_pairs

    gray = Path(__file__).parent / "gray" / "test_001.png"
    clean = np.asarray(Image.open(gray), np.float64) / 255
    saved_noise = parse_degradation("awgn-saved:25")
    assert isinstance(saved_noise, SavedGaussianNoise) and known_noise_sigma(saved_noise) == 25
    assert repr(saved_noise) == "SavedGaussianNoise(sigma_255=25.0, seed=0)"
    (_, unrounded, target), (_, saved, _) = (
        next(degraded_pairs([gray], parse_degradation(spec))) for spec in ("awgn:25", "awgn-saved:25")
    )
    np.testing.assert_allclose(target[..., 0], clean, atol=1e-7)
    # The same noise: as floats (beyond black and white, off the 8-bit grid), or as an 8-bit file holds it.
    expected = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)
    assert np.abs(unrounded.pixels[..., 0] - expected).max() < 1e-5
    assert unrounded.pixels.min() < 0 or unrounded.pixels.max() > 1
    np.testing.assert_array_equal(saved.pixels[..., 0] * 255, np.rint(np.clip(expected, 0, 1) * 255))
