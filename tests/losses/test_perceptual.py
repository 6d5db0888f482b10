"""The ``vgg`` loss term: fails at start-up without weights, trains only the output, stays out of state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from enhancekit.errors import EnhanceKitError
from enhancekit.losses import CompositeLoss
from enhancekit.losses.perceptual import PerceptualLoss
from enhancekit.models.vgg import VGG19Features
from enhancekit.pretrained import VGG19_ENV, VGG19_FILE, random_vgg19_features
from enhancekit.training.config import load_config
from enhancekit.training.runner import build_task

SPEC_RECIPE = Path(__file__).parents[2] / "configs" / "srcnn_x3_spec.yaml"


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(VGG19_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))


def composite() -> CompositeLoss:
    return CompositeLoss(
        [
            {"name": "vgg", "weights": "random", "layer": "relu2_2", "weight": 0.1, "squash": "sigmoid"},
            {"name": "mse"},
        ]
    )


def test_composite_trains_the_output_not_vgg():
    loss = composite()
    torch.manual_seed(0)
    output = torch.rand(2, 3, 24, 24, requires_grad=True)
    target = torch.rand(2, 3, 24, 24)
    total, parts = loss(output, target)
    assert torch.isfinite(total) and parts["vgg"] > 0
    expected = 0.1 * torch.sigmoid(parts["vgg"]) + F.mse_loss(output, target)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    extractor = loss.terms[0].extractor
    assert all(p.grad is None and not p.requires_grad for p in extractor.parameters())
    assert loss.state_dict() == {} and list(loss.parameters()) == []

    _, parts = loss(target, target.clone())
    assert parts["vgg"].item() == 0.0


def test_term_options_and_float32_features(tmp_path):
    state = random_vgg19_features("relu1_2").state_dict()
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    l1 = PerceptualLoss(layer="relu1_2", weights=str(path), criterion="l1")
    output = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    reference = VGG19Features("relu1_2")
    reference.load_state_dict(state)
    value = l1(output, target)
    torch.testing.assert_close(value, F.l1_loss(reference(output.float()), reference(target.float())))
    value.backward()
    assert output.grad.dtype == torch.float64 and l1.extractor.features[0].weight.dtype == torch.float32
    with pytest.raises(EnhanceKitError, match="criterion"):
        PerceptualLoss(weights="random", criterion="huber")


def test_missing_weights_fail_when_the_term_is_built(no_weights):
    with pytest.raises(EnhanceKitError, match=VGG19_FILE):
        CompositeLoss([{"name": "vgg"}])


def test_spec_recipe_stops_at_start_up_without_weights(no_weights, tmp_path):
    config = load_config(SPEC_RECIPE, [f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(EnhanceKitError, match=VGG19_FILE) as info:
        build_task(config)
    assert "\n" not in str(info.value)
