"""VGG19 features: torchvision's layout and names, layer truncation, and finding/loading the checkpoint."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from enhancekit.errors import EnhanceKitError
from enhancekit.models.vgg import VGG19_LAYERS, VGG19Features
from enhancekit.pretrained import (
    VGG19_ENV,
    VGG19_FILE,
    VGG19_URL,
    find_vgg19_weights,
    load_vgg19_features,
    random_vgg19_features,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision-style checkpoint (random features plus classifier entries) named like the real one."""
    torch.manual_seed(0)
    state = dict(VGG19Features().state_dict())
    state["classifier.0.weight"] = torch.zeros(8, 4)
    state["classifier.0.bias"] = torch.zeros(8)
    path = tmp_path_factory.mktemp("weights") / VGG19_FILE
    torch.save(state, path)
    return path, state


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> Path:
    """Nothing to find: the env var unset and torch hub's cache an empty folder."""
    monkeypatch.delenv(VGG19_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints" / VGG19_FILE


def assert_loaded(module: VGG19Features, state: dict[str, torch.Tensor]) -> None:
    assert not module.training
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert all(not p.requires_grad for p in module.parameters())


def test_layout_matches_torchvision():
    full = VGG19Features()
    assert sum(p.numel() for p in full.parameters()) == 20_024_384  # torchvision's vgg19().features
    assert len(full.features) == 36  # torchvision's 37 layers less the final max-pool, unused by relu5_4
    assert {"features.0.weight", "features.34.bias"} <= set(full.state_dict())
    # The usual perceptual-loss layers sit at torchvision's indices.
    indices = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35, "conv5_4": 34}
    assert {name: VGG19_LAYERS[name] for name in indices} == indices


def test_truncation_and_inputs():
    net = VGG19Features("relu2_2")
    assert len(net.features) == 9
    gray = torch.rand(2, 1, 16, 20)
    out = net(gray)
    assert out.shape == (2, 128, 8, 10)
    assert out.min() >= 0  # it ends on a ReLU
    torch.testing.assert_close(out, net(gray.repeat(1, 3, 1, 1)))
    raw = VGG19Features("relu2_2", normalize_input=False)
    raw.load_state_dict(net.state_dict())
    rgb = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net(rgb), raw((rgb - mean) / std))
    with pytest.raises(EnhanceKitError, match="channels"):
        net(torch.rand(1, 2, 8, 8))
    with pytest.raises(EnhanceKitError, match="unknown VGG layer"):
        VGG19Features("relu6_1")


def test_loads_from_explicit_path_env_and_hub(checkpoint, no_weights, monkeypatch):
    path, state = checkpoint
    assert find_vgg19_weights(path) == path
    assert_loaded(load_vgg19_features("relu5_4", path), state)

    monkeypatch.setenv(VGG19_ENV, str(path))
    assert find_vgg19_weights() == path
    assert_loaded(load_vgg19_features("relu3_4"), state)

    monkeypatch.delenv(VGG19_ENV)
    no_weights.parent.mkdir(parents=True)
    no_weights.symlink_to(path)
    assert find_vgg19_weights() == no_weights
    assert_loaded(load_vgg19_features("relu2_2"), state)


def test_missing_weights_is_one_line_error(no_weights, tmp_path):
    with pytest.raises(EnhanceKitError) as info:
        find_vgg19_weights()
    message = str(info.value)
    assert "\n" not in message
    assert VGG19_FILE in message and VGG19_ENV in message and str(no_weights) in message
    assert "download: true" in message
    with pytest.raises(EnhanceKitError, match="not found"):
        load_vgg19_features(path=tmp_path / "elsewhere.pth")


def test_download_failure_and_success(checkpoint, no_weights, monkeypatch):
    def unreachable(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    with pytest.raises(EnhanceKitError, match="cannot download") as info:
        load_vgg19_features("relu2_2", download=True)
    assert "\n" not in str(info.value) and str(no_weights) in str(info.value)

    calls = []

    def fetched(url, **kwargs):
        calls.append((url, kwargs))
        return checkpoint[1]

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fetched)
    assert_loaded(load_vgg19_features("relu2_2", download=True), checkpoint[1])
    assert calls[0][0] == VGG19_URL and calls[0][1]["check_hash"] is True


def test_bad_files_are_user_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(EnhanceKitError, match="cannot read"):
        load_vgg19_features(path=corrupt)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(EnhanceKitError, match="not a VGG19 checkpoint"):
        load_vgg19_features("relu1_2", path=other)


def test_random_stand_in_is_fixed_and_frozen():
    before = torch.random.get_rng_state()
    first, second = random_vgg19_features("relu2_2"), random_vgg19_features("relu2_2")
    torch.testing.assert_close(torch.random.get_rng_state(), before)  # the global stream is untouched
    assert_loaded(first, second.state_dict())
