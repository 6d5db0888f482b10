"""Every shipped recipe in configs/ builds its training task offline and its network runs: a recipe edited
into a typo'd argument or a wrong model name fails here, not hours into a GPU run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from enhancekit.errors import EnhanceKitError
from enhancekit.training.config import load_config
from enhancekit.training.runner import build_task
from enhancekit.training.tasks import forward_padded

RECIPES = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
# Recipes whose loss needs ImageNet weights that a fresh clone does not have.
NEEDS_VGG = {"srcnn_x3_spec.yaml"}


def test_every_recipe_is_covered():
    assert len(RECIPES) >= 16


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_builds_and_its_network_runs(recipe, monkeypatch, tmp_path):
    monkeypatch.setenv("ENHANCEKIT_VGG19_WEIGHTS", str(tmp_path / "absent.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    config = load_config(recipe)
    if recipe.name in NEEDS_VGG:
        with pytest.raises(EnhanceKitError, match="VGG19"):
            build_task(config)
        return
    task, _ = build_task(config)
    model = task.model.eval()
    spatial = (12, 12, 12) if getattr(model, "spatial_dims", 2) == 3 else (20, 28)
    x = torch.rand(1, model.in_channels, *spatial)
    with torch.no_grad():
        y = forward_padded(model, x)
    scale = int(getattr(model, "scale", 1))
    assert y.shape == (1, model.in_channels, *(n * scale for n in spatial))
    assert torch.isfinite(y).all()
