"""Volumes through ``enhance`` and ``eval``: 3D models in windows, 2D models slice by slice, NIfTI kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from enhancekit.cli.app import app
from enhancekit.registry import WEIGHTS_ARGS_KEY, WEIGHTS_MODEL_KEY, create_model

CT = Path(__file__).parents[1] / "data" / "volumes" / "CT_pitch.nii.gz"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def ct_dir(tmp_path: Path) -> Path:
    """A crop of the real head CT, written as NIfTI with the source's affine and dtype."""
    source = nib.load(CT)
    data = np.asarray(source.dataobj)[40:88, 60:124, 10:30]
    folder = tmp_path / "ct"
    folder.mkdir()
    nib.save(nib.Nifti1Image(data, source.affine, source.header), folder / "head.nii.gz")
    return folder


@pytest.mark.parametrize(
    ("model", "extra"),
    [("gaussian-filter-3d", ["--tile", "16", "--tile-overlap", "8"]), ("gaussian-filter", [])],
)
def test_enhance_keeps_shape_affine_and_dtype(ct_dir, tmp_path, model, extra):
    out = tmp_path / "out"
    result = invoke("enhance", ct_dir, "-o", out, "--model", model, *extra)
    assert result.exit_code == 0, result.output
    source, written = nib.load(ct_dir / "head.nii.gz"), nib.load(out / "head.nii.gz")
    assert written.shape == source.shape
    np.testing.assert_array_equal(written.affine, source.affine)
    assert written.get_data_dtype() == source.get_data_dtype()
    before = np.asarray(source.dataobj, np.float64)
    after = np.asarray(written.dataobj, np.float64)
    # Smoothed, not replaced: close to the input, with less voxel-to-voxel variation.
    assert np.abs(after - before).mean() < 0.1 * before.std()
    assert np.abs(np.diff(after, axis=1)).mean() < np.abs(np.diff(before, axis=1)).mean()


def test_a_3d_adl_keeps_nifti_and_npy_volumes_whole(ct_dir, tmp_path):
    # The learned 3D path end to end: weights file in, the network in overlapping blended windows, and the
    # volume back in its own format (NIfTI: shape, affine, dtype; .npy: shape and dtype).
    weights = tmp_path / "adl3d.safetensors"
    metadata = {WEIGHTS_MODEL_KEY: "adl-3d", WEIGHTS_ARGS_KEY: json.dumps({"filters": [4, 4, 6, 8]})}
    save_file(create_model("adl-3d", filters=[4, 4, 6, 8]).state_dict(), weights, metadata=metadata)
    source = nib.load(ct_dir / "head.nii.gz")
    np.save(ct_dir / "stack.npy", np.asarray(source.dataobj, np.float32)[:, :, :12] / 255)
    out = tmp_path / "out"
    result = invoke(
        "enhance",
        ct_dir,
        "-o",
        out,
        "-m",
        "adl-3d",
        "--weights",
        weights,
        "--tile",
        "16",
        "--tile-overlap",
        "4",
    )
    assert result.exit_code == 0, result.output
    written = nib.load(out / "head.nii.gz")
    assert written.shape == source.shape
    np.testing.assert_array_equal(written.affine, source.affine)
    assert written.get_data_dtype() == source.get_data_dtype()
    stack = np.load(out / "stack.npy")
    assert stack.shape == (48, 64, 12) and stack.dtype == np.float32
    assert np.isfinite(stack).all()


def test_tiled_3d_enhance_equals_untiled(ct_dir, tmp_path):
    # Gaussian taps reach 3 voxels: an 8-voxel overlap makes the windows exact.
    for name, extra in (("whole", []), ("tiled", ["--tile", "16", "--tile-overlap", "8"])):
        assert (
            invoke("enhance", ct_dir, "-o", tmp_path / name, "-m", "gaussian-filter-3d", *extra).exit_code
            == 0
        )
    whole = np.asarray(nib.load(tmp_path / "whole" / "head.nii.gz").dataobj)
    tiled = np.asarray(nib.load(tmp_path / "tiled" / "head.nii.gz").dataobj)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1  # integer rounding only


def test_eval_scores_volumes_in_3d(ct_dir, tmp_path):
    reports = {}
    for model in ("identity-3d", "gaussian-filter-3d", "gaussian-filter"):
        path = tmp_path / f"{model}.json"
        result = invoke(
            "eval",
            "-m",
            model,
            "--target",
            ct_dir,
            "--degrade",
            "awgn:25",
            "--metrics",
            "psnr,ssim",
            "--json",
            path,
            "--save",
            tmp_path / f"saved_{model}",
        )
        assert result.exit_code == 0, result.output
        reports[model] = json.loads(path.read_text())
    # Noisy input at sigma 25 on the [0, 1] scale is ~20.2 dB; smoothing must gain clearly on a CT, in 3D
    # windows and slice by slice alike (the 3D one less: this CT's slices are thick, so z-smoothing blurs).
    noisy = reports.pop("identity-3d")["metrics"]["psnr"]["mean"]
    assert 19 < noisy < 23  # sigma 25/255 is 20.2 dB before clipping to [0, 1]
    for report in reports.values():
        assert report["settings"]["volumes"] is True
        assert report["metrics"]["psnr"]["mean"] > noisy + 3
        assert 0 < report["metrics"]["ssim"]["mean"] < 1
    assert (tmp_path / "saved_gaussian-filter-3d" / "head.nii.gz").is_file()


def test_volume_errors_are_one_line(ct_dir, tmp_path):
    result = invoke("eval", "-m", "gaussian-filter-3d", "--target", ct_dir)
    assert result.exit_code == 1 and "--degrade awgn:S" in result.output
    result = invoke(
        "eval", "-m", "gaussian-filter-3d", "--target", ct_dir, "--degrade", "awgn:5", "--metrics", "niqe"
    )
    assert result.exit_code == 1 and "unknown volume metric" in result.output
    # Volumes have no saved depth to round a noisy input to: awgn-saved is refused, not silently floats.
    result = invoke("eval", "-m", "gaussian-filter-3d", "--target", ct_dir, "--degrade", "awgn-saved:5")
    assert result.exit_code == 1 and "awgn-saved:S is for evaluating images; use awgn:S" in result.output
    assert "Traceback" not in result.output
    shutil.copy(ct_dir / "head.nii.gz", tmp_path / "copy.nii.gz")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.nii.gz").write_bytes(b"not a volume")
    result = invoke("enhance", tmp_path / "broken", "-o", tmp_path / "o", "-m", "gaussian-filter-3d")
    assert result.exit_code == 1 and "bad.nii.gz" in result.output and "Traceback" not in result.output


def test_eval_on_a_4d_series_averages_its_volumes(ct_dir, tmp_path):
    """A 4D file (a series of 3D volumes) is scored volume by volume and saved back as 4D."""
    source = nib.load(ct_dir / "head.nii.gz")
    volume = np.asarray(source.dataobj)
    series_dir = tmp_path / "series"
    series_dir.mkdir()
    nib.save(nib.Nifti1Image(np.stack([volume, volume], -1), source.affine), series_dir / "series.nii.gz")
    scores = {}
    for folder in (ct_dir, series_dir):
        path = tmp_path / f"{folder.name}.json"
        args = ["--metrics", "psnr,ssim", "--json", path, "--save", tmp_path / f"saved_{folder.name}"]
        result = invoke("eval", "-m", "gaussian-filter-3d", "--target", folder, "--degrade", "awgn:25", *args)
        assert result.exit_code == 0, result.output
        scores[folder.name] = json.loads(path.read_text())["metrics"]
    # Two copies of the same volume under independent noise score like the single volume.
    for metric, tolerance in (("psnr", 0.3), ("ssim", 0.02)):
        assert abs(scores["series"][metric]["mean"] - scores["ct"][metric]["mean"]) < tolerance
    assert nib.load(tmp_path / "saved_series" / "series.nii.gz").shape == (*volume.shape, 2)
