"""Two-process data-parallel training on the CPU (DDP with the gloo backend), launched from the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import yaml

GRAY = Path(__file__).parents[1] / "data" / "gray"
LOWLIGHT = Path(__file__).parents[1] / "data" / "lowlight"


def _train_cli(recipe: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "enhancekit", "train", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )


def test_two_process_ddp_training(tmp_path):
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
    result = _train_cli(recipe, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "run"
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    # 24 patches / (2 processes x batch 4) = 3 optimiser steps per epoch: the data really was sharded.
    steps = [int(r["step"]) for r in rows if r.get("val/psnr")]
    assert steps == [2, 5]
    assert (out / "model.safetensors").is_file()


def test_two_process_ddp_gan_training(tmp_path):
    # Each GAN backward reaches one network only; plain DDP would stop at "parameters that were not used".
    recipe = {
        "name": "ddp_gan",
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "uegan", "args": {"base_width": 8, "depth": 2, "global_blocks": 1}},
        "data": {
            "train": {
                "low": str(LOWLIGHT / "low"),
                "high": str(LOWLIGHT / "high"),
                "patch_size": 64,
                "repeat": 4,
            },
            "val": {"input": str(LOWLIGHT / "low"), "target": str(LOWLIGHT / "high"), "resize": [96, 128]},
            "batch_size": 2,
        },
        "unpaired": {
            "kind": "uegan",
            "discriminator": {
                "name": "uegan-discriminator",
                "args": {"base_width": 8, "stages": 4, "scales": 2},
            },
            "loss": "relativistic_hinge",
            "pool_size": 3,
        },
        "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
        "scheduler": {"name": "linear_decay", "start_epoch": 1},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 2, "strategy": "ddp"},
    }
    result = _train_cli(recipe, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
