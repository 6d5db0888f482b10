"""DICOM through the image and volume readers and writers: stored values, their mapping to [0, 1], and derived
files that keep their source's header. Checked against pydicom's own decoding of real files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from enhancekit.data.io import is_volume_file, list_inputs, read_image, read_volume, write_image, write_volume
from enhancekit.errors import EnhanceKitError

DICOM = Path(__file__).parent / "dicom"
GRAY = Path(__file__).parent / "gray" / "test_001.png"


def _pydicom(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def _panoramic_12bit() -> np.ndarray:
    from PIL import Image

    return (np.asarray(Image.open(GRAY), dtype=np.uint16) * 4095 // 255).astype(np.uint16)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_jpeg.dcm"])
def test_real_files_round_trip_as_derived_dicoms(tmp_path, name):
    source = _pydicom(DICOM / name)
    image = read_image(DICOM / name)
    out = tmp_path / name
    write_image(
        out, image.pixels, bit_depth=image.bit_depth, metadata={**image.metadata, "derivation": "test"}
    )
    written = _pydicom(out)
    np.testing.assert_array_equal(written.pixel_array, source.pixel_array)
    assert written.PatientName == source.PatientName
    assert written.StudyInstanceUID == source.StudyInstanceUID
    assert written.SOPInstanceUID != source.SOPInstanceUID
    assert written.SeriesInstanceUID != source.SeriesInstanceUID
    assert written.file_meta.MediaStorageSOPInstanceUID == written.SOPInstanceUID
    assert list(written.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert written.DerivationDescription.startswith("test")
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert image.mode == ("RGB" if source.SamplesPerPixel == 3 else "L")


def test_signed_values_map_by_their_declared_range():
    stored = _pydicom(DICOM / "CT_small.dcm").pixel_array.astype(np.float64)  # int16, 16 bits stored
    pixels = read_image(DICOM / "CT_small.dcm").pixels[..., 0]
    np.testing.assert_allclose(pixels, (stored + 32768) / 65535, atol=1e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_12bit_xray_fills_the_unit_range_and_monochrome1_is_shown_white_high(
    tmp_path, make_dicom, photometric
):
    stored = _panoramic_12bit()
    path = make_dicom(tmp_path / "xray.dcm", stored, photometric=photometric, bits_stored=12)
    image = read_image(path)
    expected = stored / 4095.0
    np.testing.assert_allclose(
        image.pixels[..., 0], expected if photometric == "MONOCHROME2" else 1 - expected
    )
    assert image.bit_depth == 16
    out = tmp_path / "out" / "xray.dcm"
    write_image(out, image.pixels, metadata=image.metadata)
    written = _pydicom(out)
    np.testing.assert_array_equal(written.pixel_array, stored)
    assert written.PhotometricInterpretation == photometric
    assert (written.BitsStored, written.BitsAllocated) == (12, 16)


def test_a_larger_output_gets_finer_pixel_spacing(tmp_path, make_dicom):
    path = make_dicom(tmp_path / "xray.dcm", _panoramic_12bit())
    image = read_image(path)
    doubled = np.repeat(np.repeat(image.pixels, 2, axis=0), 2, axis=1)
    write_image(tmp_path / "out" / "xray.dcm", doubled, metadata=image.metadata)
    written = _pydicom(tmp_path / "out" / "xray.dcm")
    assert (written.Rows, written.Columns) == doubled.shape[:2]
    assert [float(v) for v in written.ImagerPixelSpacing] == [0.05, 0.05]


def test_multi_frame_files_are_volumes_and_round_trip(tmp_path):
    assert is_volume_file(DICOM / "rtdose.dcm") and not is_volume_file(DICOM / "CT_small.dcm")
    names = {p.name for p in list_inputs([DICOM], volumes=True)}
    assert names == {"rtdose.dcm", "SC_rgb_rle_16bit_2frame.dcm"}
    assert "CT_small.dcm" in {p.name for p in list_inputs([DICOM])}
    for name, colour in (("rtdose.dcm", False), ("SC_rgb_rle_16bit_2frame.dcm", True)):
        source = _pydicom(DICOM / name).pixel_array
        volume = read_volume(DICOM / name)
        assert volume.voxels.shape == source.shape and volume.colour_samples == colour
        write_volume(tmp_path / name, volume.from_normalized(volume.normalized()))
        written = _pydicom(tmp_path / name)
        np.testing.assert_array_equal(written.pixel_array, source)
        assert int(written.NumberOfFrames) == source.shape[0]


def test_bad_dicom_input_and_output_are_one_line_errors(tmp_path, make_dicom):
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(b"DICM" + bytes(range(256)) * 4)
    with pytest.raises(EnhanceKitError, match="cannot read image .*corrupt.dcm"):
        read_image(corrupt)
    no_pixels = tmp_path / "no_pixels.dcm"
    dataset = _pydicom(DICOM / "CT_small.dcm")
    del dataset.PixelData
    dataset.save_as(no_pixels)
    with pytest.raises(EnhanceKitError, match="holds no image"):
        read_image(no_pixels)
    with pytest.raises(EnhanceKitError, match="multi-frame DICOM"):
        read_image(DICOM / "rtdose.dcm")
    with pytest.raises(EnhanceKitError, match="derived from a DICOM input"):
        write_image(tmp_path / "from_png.dcm", np.zeros((4, 4)))
    assert not (tmp_path / "from_png.dcm").exists()


def test_header_values_that_describe_the_old_pixels_are_dropped(tmp_path):
    dataset = _pydicom(DICOM / "MR_small.dcm")
    dataset.LargestImagePixelValue = int(dataset.pixel_array.max())
    dataset.SmallestImagePixelValue = int(dataset.pixel_array.min())
    dataset.save_as(tmp_path / "mr.dcm")
    image = read_image(tmp_path / "mr.dcm")
    write_image(tmp_path / "out" / "mr.dcm", image.pixels * 0.5, metadata=image.metadata)
    written = _pydicom(tmp_path / "out" / "mr.dcm")
    assert "LargestImagePixelValue" not in written and "SmallestImagePixelValue" not in written
    assert written.WindowCenter == dataset.WindowCenter  # the display window still applies


def test_outputs_stay_in_the_declared_range_even_for_32_bit_and_overshooting_frames(tmp_path, make_dicom):
    frames = np.stack([_panoramic_12bit()] * 3)
    volume = read_volume(make_dicom(tmp_path / "frames.dcm", frames))
    write_volume(tmp_path / "out" / "frames.dcm", volume.from_normalized(volume.normalized() * 1.5))
    written = _pydicom(tmp_path / "out" / "frames.dcm").pixel_array
    # The nearest stored value (a tie may round either way), and no wrap past 12 bits for the overshoot.
    assert np.abs(written - np.minimum(frames * 1.5, 4095)).max() <= 0.5 + 1e-3
    dose = read_volume(DICOM / "rtdose.dcm")  # uint32: 1.0 maps to 2**32 - 1, beyond float32's precision
    write_volume(tmp_path / "out" / "rtdose.dcm", dose.from_normalized(np.ones_like(dose.voxels)))
    assert int(_pydicom(tmp_path / "out" / "rtdose.dcm").pixel_array.min()) == 2**32 - 1


def test_uids_differ_for_different_outputs_and_series_follow_the_command(tmp_path):
    image = read_image(DICOM / "MR_small.dcm")
    for name, scale, derivation in (("a", 0.5, "cmd 1"), ("b", 0.6, "cmd 1"), ("c", 0.5, "cmd 2")):
        write_image(
            tmp_path / name / "mr.dcm",
            image.pixels * scale,
            metadata={**image.metadata, "derivation": derivation},
        )
    a, b, c = (_pydicom(tmp_path / name / "mr.dcm") for name in "abc")
    assert len({a.SOPInstanceUID, b.SOPInstanceUID, c.SOPInstanceUID}) == 3
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != c.SeriesInstanceUID
    assert a.file_meta.ImplementationVersionName.startswith("ENHANCEKIT")


def test_enhanced_multi_frame_spacing_and_functional_groups_follow_the_output(tmp_path, make_dicom):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    path = make_dicom(tmp_path / "enhanced.dcm", np.stack([_panoramic_12bit()] * 2))
    dataset = _pydicom(path)
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    dataset.SharedFunctionalGroupsSequence = Sequence([shared])
    dataset.PerFrameFunctionalGroupsSequence = Sequence([Dataset(), Dataset()])
    dataset.save_as(path)
    volume = read_volume(path)
    doubled = np.repeat(np.repeat(volume.normalized(), 2, axis=1), 2, axis=2)
    write_volume(tmp_path / "out" / "x2.dcm", volume.from_normalized(doubled))
    written = _pydicom(tmp_path / "out" / "x2.dcm")
    assert [
        float(v) for v in written.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    ] == [
        0.25,
        0.25,
    ]
    write_image(tmp_path / "out" / "mean.dcm", volume.normalized().mean(axis=0), metadata=volume.metadata)
    mean = _pydicom(tmp_path / "out" / "mean.dcm")
    assert int(mean.NumberOfFrames) == 1 and len(mean.PerFrameFunctionalGroupsSequence) == 1


def test_unusual_sources_read_or_fail_in_one_line(tmp_path):
    from PIL import Image

    bare = _pydicom(DICOM / "MR_small.dcm")
    del bare.file_meta  # a raw dataset: no preamble, no file meta, so no transfer syntax
    bare.save_as(tmp_path / "bare.dcm", implicit_vr=True, little_endian=True)
    np.testing.assert_array_equal(
        read_image(tmp_path / "bare.dcm").pixels, read_image(DICOM / "MR_small.dcm").pixels
    )
    no_class = _pydicom(DICOM / "MR_small.dcm")
    del no_class.SOPClassUID
    no_class.save_as(tmp_path / "no_class.dcm")
    image = read_image(tmp_path / "no_class.dcm")
    write_image(tmp_path / "out" / "no_class.dcm", image.pixels, metadata=image.metadata)
    assert _pydicom(tmp_path / "out" / "no_class.dcm").SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    Image.open(GRAY).save(tmp_path / "photo.dcm", format="PNG")
    with pytest.raises(EnhanceKitError, match="photo.dcm: not a DICOM file"):
        read_image(tmp_path / "photo.dcm")
    with pytest.raises(EnhanceKitError, match="1-bit data"):
        read_image(DICOM / "liver_1frame.dcm")


def test_a_dicom_source_keeps_dicom_style_names_but_not_unknown_formats(tmp_path):
    image = read_image(DICOM / "CT_small.dcm")
    (tmp_path / "in").mkdir()
    uid_name = tmp_path / "in" / "1.2.840.113619.2.55.3.11"
    uid_name.write_bytes((DICOM / "CT_small.dcm").read_bytes())
    from_uid = read_image(uid_name)  # read as DICOM by its preamble
    np.testing.assert_array_equal(from_uid.pixels, image.pixels)
    write_image(tmp_path / "IM0001", image.pixels, metadata=image.metadata)
    assert pydicom.dcmread(tmp_path / "IM0001").Rows == 128
    # A format we do not write stays refused, DICOM source or not.
    with pytest.raises(EnhanceKitError, match="unsupported extension '.webp'"):
        write_image(tmp_path / "out.webp", image.pixels, metadata=image.metadata)
    assert not list(tmp_path.glob("out.webp*"))
