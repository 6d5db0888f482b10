"""Intensity windows: parsing, the unit mapping per format, and the windowed run."""

from __future__ import annotations

import numpy as np
import pytest

from enhancekit import EnhanceKitError
from enhancekit.data.io import ImageData, VolumeData, read_image
from enhancekit.data.window import filled_share, parse_window, run_windowed, window_for


def test_parse_window():
    assert parse_window("auto") is None and parse_window(" AUTO ") is None
    assert parse_window("-160,240") == (-160.0, 240.0)
    for bad in ("240,-160", "5,5", "1", "a,b", "1,2,3", "-inf,inf", "0,nan"):
        with pytest.raises(EnhanceKitError, match="--window"):
            parse_window(bad)


def test_run_windowed_stretches_the_window_and_keeps_the_rest():
    values = np.linspace(0.0, 1.0, 101, dtype=np.float32).reshape(1, 101, 1)
    low, high = 0.2, 0.6
    seen = []

    def invert(stretched: np.ndarray) -> np.ndarray:
        seen.append(stretched.copy())
        return 1.0 - stretched

    output = run_windowed(invert, values, (low, high))
    assert seen[0].min() == 0.0 and seen[0].max() == 1.0  # the model saw the window as its whole range
    inside = (values >= low) & (values <= high)
    np.testing.assert_allclose(output[inside], (low + high) - values[inside], atol=1e-6)
    assert np.array_equal(output[~inside], values[~inside])


def test_window_for_maps_file_values_per_format():
    pixels = np.full((4, 4, 1), 0.5, np.float32)
    png16 = ImageData(pixels, None, 16, "L", {})
    assert window_for(png16, pixels, (0.0, 4095.0)) == pytest.approx((0.0, 4095 / 65535))
    png8 = ImageData(pixels, None, 8, "L", {})
    assert window_for(png8, pixels, (51.0, 204.0)) == pytest.approx((0.2, 0.8))
    volume = VolumeData(np.zeros((2, 4, 4), np.float32), np.dtype("int16"), (-1000.0, 3000.0))
    assert window_for(volume, pixels, (-200.0, 200.0)) == pytest.approx((0.2, 0.3))
    ramp = np.linspace(0, 1, 1001, dtype=np.float32)
    assert window_for(png16, ramp, None) == pytest.approx((0.005, 0.995), abs=1e-4)
    assert window_for(png16, pixels, None) is None  # no spread (a blank slice): no window


def test_window_for_a_ct_slice_uses_its_rescale_and_its_own_window(tmp_path, make_ct_dicom):
    path = make_ct_dicom(tmp_path / "ct.dcm", np.zeros((8, 8), np.int16), center=40, width=400)
    image = read_image(path)
    # Stored = HU + 1024 (intercept -1024), signed 16-bit: [0, 1] spans -32768..32767.
    expected = [(hu + 1024 + 32768) / 65535 for hu in (-160, 240)]
    assert window_for(image, image.pixels, None) == pytest.approx(expected)
    assert window_for(image, image.pixels, (-160.0, 240.0)) == pytest.approx(expected)


def test_filled_share_is_measured_only_where_the_format_sets_the_range():
    twelve_bit = np.linspace(0, 4095 / 65535, 10_000, dtype=np.float32).reshape(100, 100, 1)
    assert filled_share(ImageData(twelve_bit, None, 16, "L", {}), twelve_bit) == pytest.approx(
        0.0619, abs=1e-3
    )
    # A dark 8-bit photo may be dark on purpose (low light).
    assert filled_share(ImageData(twelve_bit, None, 8, "L", {}), twelve_bit) is None


def test_window_for_an_enhanced_ct_reads_its_functional_groups():
    from pydicom.dataset import Dataset

    header = Dataset()
    header.BitsAllocated, header.BitsStored, header.PixelRepresentation = 16, 16, 1
    header.PhotometricInterpretation = "MONOCHROME2"
    transform, voi, groups = Dataset(), Dataset(), Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 1, -1024
    voi.WindowCenter, voi.WindowWidth = [40, 300], [400, 1500]
    groups.PixelValueTransformationSequence, groups.FrameVOILUTSequence = [transform], [voi]
    header.SharedFunctionalGroupsSequence = [groups]
    volume = VolumeData(
        np.zeros((2, 4, 4), np.float32), np.dtype("int16"), (-32768.0, 32767.0), metadata={"dicom": header}
    )
    expected = [(hu + 1024 + 32768) / 65535 for hu in (-160, 240)]
    assert window_for(volume, volume.voxels, None) == pytest.approx(expected)
    assert window_for(volume, volume.voxels, (-160.0, 240.0)) == pytest.approx(expected)
