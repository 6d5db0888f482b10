"""Model registry: names, defaults, weight loading and its errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from enhancekit import EnhanceKitError, create_model, get_model_entry, list_models
from enhancekit.registry import register_model


def test_baselines_are_registered_with_tasks():
    assert {"bicubic", "dncnn"} <= set(list_models())
    assert get_model_entry("bicubic").task == "sr"
    assert "dncnn" in list_models("denoise") and "bicubic" not in list_models("denoise")


def test_defaults_and_overrides():
    assert create_model("bicubic").scale == 2
    assert create_model("bicubic", scale=4).scale == 4
    net = create_model("dncnn", depth=4, width=8)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 4


def test_unknown_name_lists_choices():
    with pytest.raises(EnhanceKitError, match="unknown model 'srcnnn'.*bicubic"):
        create_model("srcnnn")


def test_bad_arguments_are_user_errors():
    with pytest.raises(EnhanceKitError, match="bad arguments"):
        create_model("dncnn", colour=3)
    with pytest.raises(EnhanceKitError, match="whole number"):
        create_model("srcnn", scale=2.5)  # would have been truncated to x2
    with pytest.raises(EnhanceKitError, match="in_channels and width must be >= 1"):
        create_model("dncnn", in_channels=0)


def test_weights_round_trip_and_errors(tmp_path):
    source = create_model("dncnn", depth=3, width=8)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = create_model("dncnn", depth=3, width=8, weights=path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with pytest.raises(EnhanceKitError, match="weights file not found"):
        create_model("dncnn", weights=tmp_path / "missing.safetensors")
    with pytest.raises(EnhanceKitError, match="cannot load weights"):
        create_model("dncnn", depth=4, width=8, weights=path)  # shape mismatch
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(EnhanceKitError, match="cannot read weights"):
        create_model("dncnn", depth=3, width=8, weights=corrupt)


def test_duplicate_and_bad_task_registration():
    with pytest.raises(ValueError, match="already registered"):
        register_model("bicubic", torch.nn.Identity, task="sr")
    with pytest.raises(ValueError, match="unknown task"):
        register_model("x-identity", torch.nn.Identity, task="colorize")


@pytest.mark.parametrize("card_name", ["run.json", "run.model.json"])
def test_card_beside_the_weights_sets_arguments_that_change_no_shapes(tmp_path, card_name):
    # Residual and sigmoid ADL heads have the same tensors: only the card tells them apart, so the
    # training_logs/ layout (run.safetensors + run.model.json) must be read as well as run.json.
    import json

    trained = create_model("adl", filters=[8, 8, 12, 16], output_activation="residual", pretrained=False)
    path = tmp_path / "run.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    args = {"filters": [8, 8, 12, 16], "output_activation": "residual"}
    (tmp_path / card_name).write_text(json.dumps({"model": "adl", "args": args}))
    loaded = create_model("adl", weights=path)
    assert loaded.output_activation == "residual"
    x = torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(loaded.eval()(x)[0], trained.eval()(x)[0])
