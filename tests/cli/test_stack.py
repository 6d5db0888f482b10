"""`enhancekit stack` on real frames: averaging N noisy captures removes noise as sqrt(N) predicts."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from enhancekit.cli.app import app

GRAY = Path(__file__).parents[1] / "data" / "gray" / "test_001.png"


def _noisy_frames(count: int) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(Image.open(GRAY), dtype=np.float64) / 255
    rng = np.random.default_rng(0)
    frames = np.clip(clean + rng.normal(0, 25 / 255, (count, *clean.shape)), 0, 1)
    return clean, np.round(frames * 255).astype(np.uint8)


def test_mean_of_frames_gains_ten_log_n_db(tmp_path):
    clean, frames = _noisy_frames(8)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i:02d}.png")
    out = tmp_path / "reference.png"
    result = CliRunner().invoke(app, ["stack", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    reference = np.asarray(Image.open(out), dtype=np.float64) / 255
    single = peak_signal_noise_ratio(clean, frames[0] / 255, data_range=1)
    averaged = peak_signal_noise_ratio(clean, reference, data_range=1)
    # Eight frames: about 10 log10(8) = 9 dB less noise (clipping at 0 and 1 costs a little).
    assert averaged - single > 7.5
    assert Image.open(out).mode == "L"


def test_multipage_tiff_and_median(tmp_path):
    _, frames = _noisy_frames(5)
    stack_path = tmp_path / "stack.tif"
    tifffile.imwrite(stack_path, (frames.astype(np.uint16) * 257))
    out = tmp_path / "median.tif"
    result = CliRunner().invoke(app, ["stack", str(stack_path), "-o", str(out), "--method", "median"])
    assert result.exit_code == 0, result.output
    written = tifffile.imread(out)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, np.median(frames.astype(np.uint16) * 257, axis=0).round())


def test_refuses_to_overwrite_a_frame(tmp_path):
    _, frames = _noisy_frames(2)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"f{i}.png")
    before = (tmp_path / "f0.png").read_bytes()
    result = CliRunner().invoke(app, ["stack", str(tmp_path), "-o", str(tmp_path / "f0.png")])
    assert result.exit_code == 1 and "one of the frames" in result.output
    assert (tmp_path / "f0.png").read_bytes() == before


def test_nifti_frames_lie_on_the_third_axis(tmp_path):
    _, frames = _noisy_frames(4)
    frames = frames[:, :40, :30].astype(np.uint16) * 257  # frame, y, x
    series = np.ascontiguousarray(np.moveaxis(frames, 0, -1))  # NIfTI: x-y plane, then repeats
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "repeats.nii.gz")
    out = tmp_path / "mean.tif"
    result = CliRunner().invoke(app, ["stack", str(tmp_path / "repeats.nii.gz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(tifffile.imread(out), frames.mean(axis=0), atol=0.5)
    nib.save(nib.Nifti1Image(series[..., None].repeat(2, -1), np.eye(4)), tmp_path / "4d.nii.gz")
    result = CliRunner().invoke(app, ["stack", str(tmp_path / "4d.nii.gz"), "-o", str(tmp_path / "x.tif")])
    assert result.exit_code == 1 and "frames of one 2D image" in result.output


def test_one_16_bit_frame_makes_a_16_bit_reference(tmp_path):
    _, frames = _noisy_frames(2)
    Image.fromarray(frames[0]).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", frames[1].astype(np.uint16) * 257 + 100)
    out = tmp_path / "ref.tif"
    result = CliRunner().invoke(app, ["stack", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert tifffile.imread(out).dtype == np.uint16 and "16-bit" in result.output
