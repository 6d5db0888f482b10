"""The command line as a user runs it: real images in, files and JSON out, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from enhancekit import create_model, registry
from enhancekit.cli.app import app

SR = Path(__file__).parents[1] / "data" / "sr"
GRAY = Path(__file__).parents[1] / "data" / "gray"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    for name in ("baby.png", "butterfly.png"):
        shutil.copy(SR / name, folder / name)
    (folder / "README.md").write_text("not an image, skipped")
    return folder


def test_help_lists_exactly_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("models", "enhance", "eval", "score", "train", "export"):
        assert command in result.output


def test_help_text_wraps_at_the_terminal_not_at_the_docstring(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke("enhance", "--help")
    assert result.exit_code == 0, result.output
    # One line in a wide terminal: the docstring has a line break after "header.".
    assert "with its source's header. Volumes (NIfTI, TIFF stacks" in result.output
    summary = "Enhance images or volumes with a model into a folder, each result under its input's name."
    assert summary in invoke("--help").output


def test_models_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # as in a wide terminal; 80 columns fold the scores
    result = invoke("models")
    assert result.exit_code == 0, result.output
    assert "bicubic" in result.output and "dncnn" in result.output
    # Shipped weights show their measured scores from the model card.
    assert "srcnn-x3" in result.output and "Set5 x3 Y-PSNR" in result.output
    assert "measured scores" in result.output  # the table's header
    result = invoke("models", "--task", "colorize")
    assert result.exit_code == 1 and "unknown task 'colorize'" in result.output


def test_models_in_a_narrow_terminal_list_one_block_per_model(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # a six-column table would fold every word
    result = invoke("models", "--task", "sr")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("srcnn-x3 · sr · ") and "shipped weights" in line for line in lines), lines
    assert any(line.strip().startswith("Set5 x3 Y-PSNR: ") for line in lines), lines
    assert any(line.startswith("bicubic · sr") and "parameters" not in line for line in lines), lines


def test_eval_degrade_and_json(hr_dir, tmp_path):
    out = tmp_path / "scores.json"
    result = invoke(
        "eval",
        "--model",
        "bicubic",
        "--target",
        hr_dir,
        "--degrade",
        "bicubic:3",
        "--metrics",
        "psnr,ssim,mse,niqe",
        "--json",
        out,
        "--save",
        tmp_path / "saved",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["model"] == "bicubic"
    assert [r["name"] for r in report["images"]] == ["baby.png", "butterfly.png"]
    assert set(report["metrics"]) == {"psnr", "ssim", "mse", "niqe"}
    assert report["settings"]["color"] == "y" and report["settings"]["crop"] == 3
    psnrs = [r["psnr"] for r in report["images"]]
    assert report["metrics"]["psnr"]["mean"] == pytest.approx(np.mean(psnrs))
    assert report["metrics"]["psnr"]["min"] == min(psnrs)
    saved = Image.open(tmp_path / "saved" / "baby.png")
    assert saved.size == (510, 510) and saved.mode == "RGB"  # 512 cropped to a multiple of 3


def test_eval_with_matlab_lr_input_agrees_with_own_degradation(hr_dir, tmp_path):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name in ("babyx3.png", "butterflyx3.png"):
        shutil.copy(SR / name, lr_dir / name)
    own, matlab = tmp_path / "own.json", tmp_path / "matlab.json"
    assert (
        invoke(
            "eval", "--model", "bicubic", "--target", hr_dir, "--degrade", "bicubic:3", "--json", own
        ).exit_code
        == 0
    )
    # No --scale: the free-scale bicubic takes it from the input/target size ratio.
    result = invoke("eval", "--model", "bicubic", "--target", hr_dir, "--input", lr_dir, "--json", matlab)
    assert result.exit_code == 0, result.output
    a, b = json.loads(own.read_text()), json.loads(matlab.read_text())
    assert a["metrics"]["psnr"]["mean"] == pytest.approx(b["metrics"]["psnr"]["mean"], abs=0.05)
    assert b["settings"]["scale"] == 3


def test_score_without_and_with_target(hr_dir, tmp_path):
    result = invoke("score", "--input", hr_dir, "--json", tmp_path / "niqe.json")
    assert result.exit_code == 0, result.output
    assert set(json.loads((tmp_path / "niqe.json").read_text())["metrics"]) == {"niqe"}
    result = invoke(
        "score",
        "--input",
        hr_dir,
        "--target",
        hr_dir,
        "--metrics",
        "psnr,ssim",
        "--json",
        tmp_path / "self.json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "self.json").read_text())
    assert report["metrics"]["ssim"]["mean"] == pytest.approx(1.0)
    assert invoke("score", "--input", hr_dir, "--metrics", "psnr").exit_code == 1


def test_enhance_writes_outputs_and_keeps_format(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 256, (20, 30, 3))
    rgba[..., 3] = np.arange(30, dtype=np.uint8)[None] * 8
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    shutil.copy(GRAY / "test_001.png", src / "gray.png")
    out = tmp_path / "out"
    result = invoke(
        "enhance", src, "-o", out, "--model", "bicubic", "--scale", "2", "--tile", "16", "--tile-overlap", "8"
    )
    assert result.exit_code == 0, result.output
    rgba_out = Image.open(out / "rgba.png")
    assert rgba_out.mode == "RGBA" and rgba_out.size == (60, 40)
    gray_out = Image.open(out / "gray.png")
    assert gray_out.mode == "L" and gray_out.size == (360, 360)


def test_enhance_refuses_to_write_over_inputs(tmp_path):
    shutil.copy(GRAY / "test_001.png", tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    result = invoke("enhance", tmp_path / "a.png", "-o", tmp_path, "--model", "bicubic")
    assert result.exit_code == 1
    assert "holds the input" in result.output
    assert (tmp_path / "a.png").read_bytes() == before


def test_enhance_reports_corrupt_file_and_continues(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(GRAY / "test_001.png", src / "good.png")
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = invoke("enhance", src, "-o", tmp_path / "out", "--model", "bicubic")
    assert result.exit_code == 1
    assert "bad.png" in result.output
    assert (tmp_path / "out" / "good.png").is_file() and not (tmp_path / "out" / "bad.png").exists()


def test_eval_size_mismatch_is_one_line_error(hr_dir, tmp_path):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    Image.open(SR / "babyx3.png").crop((0, 0, 100, 100)).save(lr_dir / "baby.png")
    Image.open(SR / "butterflyx3.png").save(lr_dir / "butterfly.png")
    result = invoke("eval", "--model", "bicubic", "--target", hr_dir, "--input", lr_dir, "--scale", "3")
    assert result.exit_code == 1
    assert "does not match" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["enhance", "{gray}", "-o", "{tmp}/o", "--model", "nope"], "unknown model 'nope'"),
        (
            [
                "enhance",
                "{gray}",
                "-o",
                "{tmp}/o",
                "--model",
                "dncnn",
                "--weights",
                "{tmp}/missing.safetensors",
            ],
            "weights file not found",
        ),
        (["enhance", "{tmp}/missing.png", "-o", "{tmp}/o", "--model", "bicubic"], "missing.png"),
        (["eval", "--model", "bicubic", "--target", "{gray}", "--degrade", "blur:3"], "unknown degradation"),
        (["enhance", "{gray}", "-o", "{tmp}/o", "--model", "adl-discriminator"], "for GAN training"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, message):
    args = [a.format(gray=GRAY, tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "enhancekit", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_eval_gives_classical_denoisers_the_known_noise_level(tmp_path):
    out = tmp_path / "wavelet.json"
    result = invoke("eval", "--model", "wavelet", "--target", GRAY, "--degrade", "awgn:25", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["settings"]["noise_sigma_given"] == 25.0
    # Sigma-25 noise leaves about 20.2 dB; the wavelet baseline must clearly denoise.
    assert report["metrics"]["psnr"]["mean"] > 24.0


def test_eval_save_with_paired_folders(hr_dir, tmp_path):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name in ("baby.png", "butterfly.png"):  # same names as the targets, as paired folders often are
        Image.open(SR / name.replace(".png", "x3.png")).save(lr_dir / name)
    result = invoke(
        "eval", "--model", "bicubic", "--target", hr_dir, "--input", lr_dir, "--save", tmp_path / "s"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "baby.png").is_file()


def test_bad_values_are_user_errors(tmp_path):
    import tifffile

    bad = np.full((8, 8), np.nan, dtype=np.float32)
    tifffile.imwrite(tmp_path / "nan.tif", bad)
    result = invoke("enhance", tmp_path / "nan.tif", "-o", tmp_path / "out", "--model", "bicubic")
    assert result.exit_code == 1 and "NaN" in result.output
    result = invoke(
        "enhance", GRAY / "test_001.png", "-o", tmp_path / "out", "--model", "bicubic", "--scale", "0"
    )
    assert result.exit_code == 2  # rejected by the option's range


def test_trained_free_scale_weights_run_at_their_scale(hr_dir, tmp_path):
    # A run of `configs/srcnn_x2.yaml` trains model `srcnn` (registered at x3) with scale 2: eval and compare
    # must score it at x2, the scale its card records, not at the registry's x3.
    run = tmp_path / "run"
    run.mkdir()
    args = {"scale": 2, "widths": [8, 4]}
    save_file(create_model("srcnn", pretrained=False, **args).state_dict(), run / "model.safetensors")
    (run / "model.json").write_text(json.dumps({"model": "srcnn", "args": args}))
    weights = run / "model.safetensors"
    result = invoke(
        "eval", "-m", "srcnn", "--weights", weights, "--target", hr_dir, "--json", tmp_path / "e.json"
    )
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "e.json").read_text())["settings"]
    assert settings["scale"] == 2 and "2" in settings["degrade"] and settings["crop"] == 2
    result = invoke("eval", "-m", "srcnn", "--weights", weights, "--target", hr_dir, "--degrade", "bicubic:3")
    assert result.exit_code == 1 and "upscales by 2" in result.output
    result = invoke(
        "compare",
        "-m",
        "bicubic",
        "-m",
        "srcnn",
        "--weights",
        "-",
        "--weights",
        weights,
        "--target",
        hr_dir / "baby.png",
        "-o",
        tmp_path / "c.png",
    )
    assert result.exit_code == 0, result.output


class _FailsOnWideImages(torch.nn.Module):
    """Stands in for a model that raises on some inputs (e.g. too small for its kernels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 300:
            raise RuntimeError("Padding size should be less than the corresponding input dimension")
        return x


def test_a_model_failing_on_one_file_does_not_stop_the_batch(hr_dir, tmp_path, monkeypatch):
    entry = registry.ModelEntry("x-fails-wide", _FailsOnWideImages, "denoise")
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    small = Image.open(SR / "babyx3.png")
    small.save(hr_dir / "small.png")
    result = invoke("enhance", hr_dir, "-o", tmp_path / "out", "-m", "x-fails-wide")
    assert result.exit_code == 1
    assert "the model failed on this input: RuntimeError: Padding size" in result.output
    assert "Traceback" not in result.output
    # baby (512 px) fails; butterfly (256 px) and the small one, after it, are still written.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["butterfly.png", "small.png"]


def test_enhance_on_an_empty_folder_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("enhance", tmp_path / "empty", "-o", tmp_path / "out", "-m", "bicubic")
    assert result.exit_code == 1 and "no image or volume files found" in result.output


def test_weights_of_another_model_are_named_in_a_note(tmp_path):
    shipped = registry.get_model_entry("srcnn-x3").weights_path()
    source = GRAY / "test_001.png"
    result = invoke("enhance", source, "-o", tmp_path / "a", "-m", "srcnn-x2", "--weights", shipped)
    assert result.exit_code == 0, result.output
    assert "holds weights of 'srcnn-x3', not 'srcnn-x2'" in result.output
    result = invoke("enhance", source, "-o", tmp_path / "b", "-m", "srcnn-x3", "--weights", shipped)
    assert result.exit_code == 0 and "note:" not in result.output
