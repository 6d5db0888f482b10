"""NIMA: the score distribution, its mean/std, weight loading from a user's file, the EMD loss, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import wasserstein_distance
from typer.testing import CliRunner

from enhancekit import EnhanceKitError
from enhancekit.cli.app import app
from enhancekit.losses.emd import emd
from enhancekit.models.nima import NIMA, nima_mean_std
from enhancekit.pretrained import NIMA_ENV, load_nima


def test_mean_and_std_of_a_rating_distribution():
    distribution = torch.tensor([[0, 0, 0, 0.5, 0, 0.5, 0, 0, 0, 0]], dtype=torch.float64)
    mean, std = nima_mean_std(distribution)
    assert mean.item() == pytest.approx(5.0) and std.item() == pytest.approx(1.0)


def test_emd_r1_is_the_wasserstein_distance_over_buckets():
    rng = np.random.default_rng(0)
    p, q = rng.random((4, 10)), rng.random((4, 10))
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    ratings = np.arange(1, 11)
    expected = np.mean([wasserstein_distance(ratings, ratings, a, b) for a, b in zip(p, q, strict=True)])
    # EMD_1 averages |CDF gap| over the 10 buckets; scipy sums it (bucket spacing 1).
    assert emd(torch.from_numpy(p), torch.from_numpy(q), r=1).item() == pytest.approx(expected / 10)
    assert emd(torch.from_numpy(p), torch.from_numpy(p)).item() == pytest.approx(0.0, abs=1e-12)


def _fake_checkpoint(tmp_path: Path) -> tuple[Path, NIMA]:
    torch.manual_seed(0)
    model = NIMA().eval()
    # A DataParallel-saved file, as published checkpoints often are.
    path = tmp_path / "nima_vgg16.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    return path, model


def test_loads_a_user_checkpoint_and_scores(tmp_path):
    path, reference = _fake_checkpoint(tmp_path)
    model = load_nima(path)
    x = torch.rand(2, 3, 100, 150)
    with torch.inference_mode():
        distribution = model(x)
        torch.testing.assert_close(distribution, reference(x))
    assert distribution.shape == (2, 10)
    torch.testing.assert_close(distribution.sum(1), torch.ones(2))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(EnhanceKitError, match="not a VGG16 NIMA checkpoint"):
        load_nima(tmp_path / "wrong.pth")


def test_score_nima_explains_missing_weights_and_uses_given_ones(tmp_path, monkeypatch):
    # Recorded first so that the variable the command sets is removed after the test.
    monkeypatch.setenv(NIMA_ENV, "unset")
    monkeypatch.delenv(NIMA_ENV)
    image = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((128, 160, 3)) * 255).astype(np.uint8)).save(image)
    runner = CliRunner()
    result = runner.invoke(app, ["score", "--input", str(image), "--metrics", "nima"])
    assert result.exit_code == 1 and "--nima-weights" in result.output and "Traceback" not in result.output
    path, _ = _fake_checkpoint(tmp_path)
    json_path = tmp_path / "s.json"
    args = ["score", "--input", str(image), "--metrics", "nima,niqe", "--nima-weights", str(path)]
    result = runner.invoke(app, [*args, "--json", str(json_path)])
    assert result.exit_code == 0, result.output
    score = json.loads(json_path.read_text())["images"][0]["nima"]
    assert 1.0 <= score <= 10.0
