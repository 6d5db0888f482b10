"""Two-process data-parallel training on the CPU (DDP with the gloo backend), launched from the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

GRAY = Path(__file__).parents[1] / "data" / "gray"


def test_two_process_ddp_training(tmp_path, train_cli):
    recipe = {
        "name": "ddp",
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "dncnn", "args": {"depth": 3, "width": 8}},
        "data": {
            "train": {"target": str(GRAY), "degrade": "awgn:25", "patch_size": 32, "repeat": 4},
            "val": {"target": str(GRAY), "degrade": "awgn:25", "split": [0.5, 1.0]},
            "batch_size": 4,
        },
        "optimizer": {"lr": 1e-3},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 2,
            "strategy": "ddp",
            "enable_model_summary": False,
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = train_cli(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "run"
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    # 24 patches / (2 processes x batch 4) = 3 optimiser steps per epoch: the data really was sharded.
    steps = [int(r["step"]) for r in rows if r.get("val/psnr")]
    assert steps == [2, 5]
    assert (out / "model.safetensors").is_file()
