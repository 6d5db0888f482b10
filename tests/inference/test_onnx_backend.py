"""The ONNX Runtime backend: same output as torch, exported once and then served from the cache."""

from __future__ import annotations

import numpy as np
import pytest

from enhancekit import EnhanceKitError, create_model
from enhancekit.inference import Enhancer, onnx_backend


def test_onnxruntime_matches_torch_and_caches(tmp_path, monkeypatch, baby):
    monkeypatch.setenv("ENHANCEKIT_CACHE", str(tmp_path))
    image = baby[:70, :90].astype(np.float32)
    model = create_model("srcnn-x3")
    expected = Enhancer(model, device="cpu")(image)
    got = Enhancer(model, device="cpu", backend="onnxruntime")(image)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert len(list((tmp_path / "onnx").glob("srcnn-*.onnx"))) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(onnx_backend, "export_onnx", no_export)
    tiled = Enhancer(model, device="cpu", backend="onnxruntime", tile=32, tile_overlap=12)(image)
    np.testing.assert_allclose(tiled, expected, atol=1e-5)
    # Other weights are another model: a new fingerprint.
    assert onnx_backend.model_fingerprint(model) != onnx_backend.model_fingerprint(create_model("srcnn-x2"))


def test_unknown_backend_is_a_user_error():
    with pytest.raises(EnhanceKitError, match="unknown backend"):
        Enhancer(create_model("bicubic"), device="cpu", backend="tensorrt")
