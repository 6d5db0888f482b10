"""DICOM through the commands: a 12-bit X-ray enhanced, evaluated and stacked, the results derived DICOMs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from enhancekit.cli.app import app

GRAY = Path(__file__).parents[1] / "data" / "gray" / "test_001.png"
# Not a training image of the shipped denoisers (Set5).
BUTTERFLY = Path(__file__).parents[1] / "data" / "sr" / "butterfly.png"


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _clean_12bit(path: Path = GRAY) -> np.ndarray:
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return (gray / 255 * 4095).round().astype(np.uint16)


def _noisy(clean: np.ndarray, count: int, sigma: float = 200.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(clean + rng.normal(0, sigma, (count, *clean.shape)), 0, 4095).round().astype(np.uint16)


def test_enhance_denoises_a_12bit_xray_into_a_derived_dicom(tmp_path, make_dicom):
    clean = _clean_12bit(BUTTERFLY)
    (tmp_path / "in").mkdir()
    source = make_dicom(tmp_path / "in" / "xray.dcm", _noisy(clean, 1)[0])
    before = source.read_bytes()
    result = CliRunner().invoke(app, ["enhance", str(source), "-o", str(tmp_path / "out"), "-m", "adl-gray"])
    assert result.exit_code == 0, result.output
    written, original = _read(tmp_path / "out" / "xray.dcm"), _read(source)
    assert source.read_bytes() == before
    assert written.PatientID == original.PatientID and written.BitsStored == 12
    assert "adl-gray" in written.DerivationDescription
    noisy_psnr = peak_signal_noise_ratio(clean, original.pixel_array, data_range=4095)
    denoised_psnr = peak_signal_noise_ratio(clean, written.pixel_array, data_range=4095)
    # Measured: 26.2 -> 31.9 dB (sigma 200 of 4095, about 12 on the 0-255 scale).
    assert denoised_psnr > noisy_psnr + 4, (noisy_psnr, denoised_psnr)


def test_stack_of_a_multi_frame_dicom_is_a_single_frame_dicom(tmp_path, make_dicom):
    clean = _clean_12bit()
    frames = _noisy(clean, 16)
    source = make_dicom(tmp_path / "exposures.dcm", frames, photometric="MONOCHROME1")
    out = tmp_path / "reference.dcm"
    result = CliRunner().invoke(app, ["stack", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = _read(out)
    assert written.PhotometricInterpretation == "MONOCHROME1" and int(written.get("NumberOfFrames", 1)) == 1
    # The nearest stored value to the mean (a tie may round either way).
    assert np.abs(written.pixel_array - frames.mean(axis=0)).max() <= 0.5 + 1e-3


def test_eval_saves_derived_dicoms_and_a_png_stack_cannot_become_dicom(tmp_path, make_dicom):
    (tmp_path / "clean").mkdir()
    make_dicom(tmp_path / "clean" / "xray.dcm", _clean_12bit())
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "-m",
            "wavelet",
            "--target",
            str(tmp_path / "clean"),
            "--degrade",
            "awgn:25",
            "--save",
            str(tmp_path / "saved"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert _read(tmp_path / "saved" / "xray.dcm").BitsStored == 12
    Image.open(GRAY).save(tmp_path / "a.png")
    Image.open(GRAY).save(tmp_path / "b.png")
    result = CliRunner().invoke(
        app, ["stack", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "ref.dcm")]
    )
    assert result.exit_code == 1 and "derived from a DICOM input" in result.output


def test_stack_of_a_colour_multi_frame_dicom_is_one_rgb_frame(tmp_path):
    source = Path(__file__).parents[1] / "data" / "dicom" / "SC_rgb_rle_16bit_2frame.dcm"
    out = tmp_path / "mean.dcm"
    result = CliRunner().invoke(app, ["stack", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    frames = _read(source).pixel_array.astype(np.float64)
    written = _read(out)
    assert written.PhotometricInterpretation == "RGB" and int(written.NumberOfFrames) == 1
    assert np.abs(written.pixel_array - frames.mean(axis=0)).max() <= 0.5 + 1e-3


def test_an_unreadable_file_in_a_folder_is_reported_and_the_others_are_enhanced(tmp_path, make_dicom):
    folder = tmp_path / "in"
    folder.mkdir()
    make_dicom(folder / "good.dcm", _clean_12bit())
    (folder / "broken.dcm").write_bytes(b"not a dicom file at all" * 10)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["enhance", str(folder), "-o", str(out), "-m", "wavelet"])
    assert result.exit_code == 1
    assert "broken.dcm: not a DICOM file" in result.output and "1 of 2 image(s) written" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["good.dcm"]


def test_an_unreadable_file_named_on_the_command_line_is_reported_and_the_others_are_enhanced(
    tmp_path, make_dicom
):
    good = make_dicom(tmp_path / "good.dcm", _clean_12bit())
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom file at all" * 10)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["enhance", str(broken), str(good), "-o", str(out), "-m", "wavelet"])
    assert result.exit_code == 1
    assert "broken.dcm: not a DICOM file" in result.output and "1 of 2 image(s) written" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["good.dcm"]


def test_an_unreadable_file_does_not_turn_a_volume_folder_into_an_image_folder(tmp_path, make_dicom):
    folder = tmp_path / "in"
    folder.mkdir()
    make_dicom(folder / "frames.dcm", np.stack([_clean_12bit()[:64, :64]] * 3))
    (folder / "broken.dcm").write_bytes(b"not a dicom file at all" * 10)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["enhance", str(folder), "-o", str(out), "-m", "wavelet"])
    assert result.exit_code == 1, result.output
    assert "broken.dcm: not a DICOM file" in result.output
    assert int(_read(out / "frames.dcm").NumberOfFrames) == 3


def test_window_lets_a_denoiser_work_on_a_ct_slice_and_keeps_what_lies_outside(tmp_path, make_ct_dicom):
    # Soft tissue (-100..200 HU, a real photo's texture) with 20 HU of noise, air above it and bone beside it.
    tissue = np.asarray(Image.open(BUTTERFLY).convert("L"), dtype=np.float64) / 255 * 300 - 100
    noisy = tissue + np.random.default_rng(0).normal(0, 20, tissue.shape)
    noisy[:24], noisy[24:, :24] = -1000, 1500
    (tmp_path / "in").mkdir()
    source = make_ct_dicom(tmp_path / "in" / "ct.dcm", np.rint(noisy + 1024), center=40, width=400)
    region = (slice(24, None), slice(24, None))

    def tissue_psnr(path: Path) -> float:
        hu = _read(path).pixel_array.astype(np.float64) - 1024
        return peak_signal_noise_ratio(tissue[region], hu[region], data_range=400)

    results = {}
    for name, extra in (("plain", []), ("windowed", ["--window", "auto"])):
        out = tmp_path / name
        args = ["enhance", str(source.parent), "-o", str(out), "-m", "adl-gray", *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert ("--window auto" in result.output) == (name == "plain")  # the plain run suggests the window
        results[name] = tissue_psnr(out / "ct.dcm")
    before = tissue_psnr(source)
    # In the full signed range the tissue spans 0.5% of it: the denoiser shifts and smears it (measured:
    # 26.0 -> 17.0 dB). In the window the noise is 5% of the range, as in the photos the model learned on.
    assert results["plain"] < before
    assert results["windowed"] > before + 3
    windowed = _read(tmp_path / "windowed" / "ct.dcm")
    assert "--window auto" in windowed.DerivationDescription
    outside = np.zeros(tissue.shape, bool)
    outside[:24], outside[24:, :24] = True, True
    assert np.array_equal(windowed.pixel_array[outside], _read(source).pixel_array[outside])


def test_eval_window_scores_ct_within_its_window_as_scikit_image_does(tmp_path, make_ct_dicom):
    tissue = np.asarray(Image.open(BUTTERFLY).convert("L"), dtype=np.float64) / 255 * 300 - 100
    noisy = tissue + np.random.default_rng(1).normal(0, 20, tissue.shape)
    for folder, hu in (("clean", tissue), ("noisy", noisy)):
        (tmp_path / folder).mkdir()
        make_ct_dicom(tmp_path / folder / "ct.dcm", np.rint(hu + 1024), center=40, width=400)
    report = tmp_path / "scores.json"
    args = ["eval", "-m", "adl-gray", "--target", str(tmp_path / "clean"), "--input", str(tmp_path / "noisy")]
    args += ["--window", "-160,240", "--json", str(report), "--save", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scored = json.loads(report.read_text())["images"][0]["psnr"]

    def windowed_hu(path: Path) -> np.ndarray:
        return np.clip(_read(path).pixel_array.astype(np.float64) - 1024, -160, 240)

    reference = windowed_hu(tmp_path / "clean" / "ct.dcm")
    expected = peak_signal_noise_ratio(reference, windowed_hu(tmp_path / "out" / "ct.dcm"), data_range=400)
    assert scored == pytest.approx(expected, abs=0.01)
    before = peak_signal_noise_ratio(reference, windowed_hu(tmp_path / "noisy" / "ct.dcm"), data_range=400)
    assert scored > before + 3


def test_a_window_that_misses_the_data_leaves_the_file_unchanged_and_says_so(tmp_path, make_ct_dicom):
    (tmp_path / "in").mkdir()
    stored = np.rint(np.random.default_rng(2).normal(1064, 20, (32, 32)))
    source = make_ct_dicom(tmp_path / "in" / "ct.dcm", stored, center=40, width=400)
    args = ["enhance", str(source), "-o", str(tmp_path / "out"), "-m", "adl-gray", "--window", "3000,4000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "hold no value inside the window" in result.output
    assert np.array_equal(_read(tmp_path / "out" / "ct.dcm").pixel_array, _read(source).pixel_array)


def test_eval_window_lets_classical_denoisers_estimate_the_stretched_noise(tmp_path):
    report = tmp_path / "scores.json"
    args = [
        "eval",
        "-m",
        "wavelet",
        "--target",
        str(GRAY.parent),
        "--degrade",
        "awgn:25",
        "--window",
        "64,192",
    ]
    result = CliRunner().invoke(app, [*args, "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["settings"]["noise_sigma_given"] is None


def test_window_refusals_are_one_line(tmp_path):
    out = str(tmp_path / "out")
    for args, message in (
        (["enhance", str(GRAY), "-o", out, "-m", "srcnn-x3", "--window", "auto"], "keeps the image size"),
        (["enhance", str(GRAY), "-o", out, "-m", "wavelet", "--window", "0,inf"], "finite numbers"),
        (["eval", "-m", "srcnn-x3", "--target", str(GRAY.parent), "--window", "0,9"], "keeps the image size"),
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and message in result.output, result.output


def test_enhance_takes_a_dicom_series_as_one_volume_for_a_3d_model(tmp_path, ct_series):
    from scipy.ndimage import gaussian_filter

    before = {p.name: p.read_bytes() for p in ct_series.folder.iterdir()}
    args = ["enhance", str(ct_series.folder), "-o", str(tmp_path / "out"), "-m", "gaussian-filter-3d"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 volume(s) written" in result.output
    assert {p.name: p.read_bytes() for p in ct_series.folder.iterdir()} == before
    # scipy's 3D Gaussian (mirror = torch's reflect) over the slices in position order: a wrong order (by
    # file name or by number) mixes distant slices and misses this by far.
    expected = np.rint(gaussian_filter(ct_series.stored.astype(np.float64), 1.0, mode="mirror", truncate=3.0))
    written = [_read(tmp_path / "out" / name) for name in ct_series.names]
    assert np.abs(np.stack([w.pixel_array for w in written]) - expected).max() <= 1
    source_series = _read(ct_series.folder / ct_series.names[0]).SeriesInstanceUID
    assert {w.SeriesInstanceUID for w in written} != {source_series}


def test_enhance_and_eval_note_a_series_with_a_missing_slice(tmp_path, make_ct_series, ct_head_slices):
    paths = make_ct_series(
        tmp_path / "ct", ct_head_slices[:5], [f"s{k}.dcm" for k in range(5)], [1, 2, 3, 4, 5]
    )
    paths[3].unlink()
    args = ["enhance", str(tmp_path / "ct"), "-o", str(tmp_path / "out"), "-m", "gaussian-filter-3d"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "unevenly spaced" in result.output and "s2.dcm and s4.dcm" in result.output, result.output
    assert len(list((tmp_path / "out").iterdir())) == 4
    args = [
        "eval",
        "-m",
        "identity-3d",
        "--target",
        str(tmp_path / "ct"),
        "--degrade",
        "awgn:10",
        "--metrics",
        "psnr",
        "--json",
        str(tmp_path / "scores.json"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "s2.dcm and s4.dcm" in result.output, result.output
    (entry,) = json.loads((tmp_path / "scores.json").read_text())["images"]
    assert "s2.dcm and s4.dcm" in entry["uneven_spacing"] and np.isfinite(entry["psnr"])


def test_eval_scores_a_dicom_series_in_3d(tmp_path, ct_series):
    psnr = {}
    for model in ("identity-3d", "gaussian-filter-3d"):
        report, saved = tmp_path / f"{model}.json", tmp_path / model
        args = [
            "eval",
            "-m",
            model,
            "--target",
            str(ct_series.folder),
            "--degrade",
            "awgn:25",
            "--metrics",
            "psnr",
        ]
        result = CliRunner().invoke(app, [*args, "--json", str(report), "--save", str(saved)])
        assert result.exit_code == 0, result.output
        (entry,) = json.loads(report.read_text())["images"]
        assert entry["name"] == "ct/IM0004.dcm..IM0003.dcm (6 slices)" and "uneven_spacing" not in entry
        psnr[model] = entry["psnr"]
        written = [_read(saved / name) for name in ct_series.names]
        assert all(model in w.DerivationDescription and "25" in w.DerivationDescription for w in written)
    assert psnr["gaussian-filter-3d"] > psnr["identity-3d"] + 0.5, psnr
    # The noise is 25/255 of the data's range (as for NIfTI volumes), not of the signed 16-bit range the
    # CT declares (which would be about 6400 HU): the saved noisy input shows it.
    clean = ct_series.stored.astype(np.float64)
    noisy = np.stack([_read(tmp_path / "identity-3d" / name).pixel_array for name in ct_series.names])
    expected = 25 / 255 * (clean.max() - clean.min())
    assert 0.8 * expected < (noisy - clean).std() < 1.05 * expected, ((noisy - clean).std(), expected)


def test_dicom_files_named_without_extension_are_read_and_written_as_dicom(
    tmp_path, make_ct_series, ct_head_slices
):
    # As PACS exports name them: by UID (whose last part reads as an extension) or IMnnnn, beside a DICOMDIR.
    names = ["1.2.826.0.1.3680043.8.498.10", "1.2.826.0.1.3680043.8.498.11", "IM0003"]
    make_ct_series(tmp_path / "ct", ct_head_slices[:3], names, [1, 2, 3])
    (tmp_path / "ct" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    (tmp_path / "ct" / "notes.txt").write_text("not an image")
    for model, written_count in (
        ("gaussian-filter-3d", "1 of 1 volume(s)"),
        ("gaussian-filter", "3 of 3 image(s)"),
    ):
        out = tmp_path / model
        result = CliRunner().invoke(app, ["enhance", str(tmp_path / "ct"), "-o", str(out), "-m", model])
        assert result.exit_code == 0, result.output
        assert f"{written_count} written" in result.output
        assert sorted(p.name for p in out.iterdir()) == sorted(names)
        for name in names:
            assert "gaussian-filter" in _read(out / name).DerivationDescription
