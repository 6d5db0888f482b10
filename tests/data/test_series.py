"""DICOM series as volumes: grouping, slice order, stacking checks and writing back slice by slice."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from enhancekit.data.series import (
    DicomSeries,
    files_of,
    list_volume_sources,
    read_volume_source,
    write_volume_source,
)
from enhancekit.errors import EnhanceKitError


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def test_slices_are_ordered_by_position_not_name_or_number(ct_series):
    (source,) = list_volume_sources([ct_series.folder])
    assert [p.name for p in source.files] == ct_series.names
    volume = read_volume_source(source)
    np.testing.assert_array_equal(volume.voxels, ct_series.stored.astype(np.float32))
    assert volume.value_range == (-32768.0, 32767.0) and volume.metadata["axes"] == "IYX"


def test_without_positions_instance_numbers_order_the_slices(tmp_path, make_ct_series, ct_head_slices):
    names, numbers = ["c.dcm", "a.dcm", "b.dcm"], [2, 3, 1]
    make_ct_series(tmp_path / "ct", ct_head_slices[:3], names, numbers, positions=False)
    (source,) = list_volume_sources([tmp_path / "ct"])
    assert [p.name for p in source.files] == ["b.dcm", "c.dcm", "a.dcm"]


def test_written_slices_are_derived_dicoms_of_their_sources(tmp_path, ct_series):
    (source,) = list_volume_sources([ct_series.folder])
    volume = read_volume_source(source)
    volume.metadata["derivation"] = "test processing"
    write_volume_source(tmp_path / "out", source, volume.from_normalized(volume.normalized() + 7 / 65535))
    originals = [_read(ct_series.folder / name) for name in ct_series.names]
    written = [_read(tmp_path / "out" / name) for name in ct_series.names]
    for stored, before, after in zip(ct_series.stored, originals, written, strict=True):
        np.testing.assert_array_equal(after.pixel_array, stored.astype(np.int32) + 7)
        assert after.ImagePositionPatient == before.ImagePositionPatient
        assert after.InstanceNumber == before.InstanceNumber and after.PatientID == before.PatientID
        assert (
            after.SOPInstanceUID != before.SOPInstanceUID and "test processing" in after.DerivationDescription
        )
    new_series = {w.SeriesInstanceUID for w in written}
    assert len(new_series) == 1 and new_series != {originals[0].SeriesInstanceUID}
    assert len({w.SOPInstanceUID for w in written}) == len(written)


def test_series_are_split_by_uid_and_lone_slices_left_out(tmp_path, make_ct_series, ct_head_slices):
    make_ct_series(tmp_path / "ct", ct_head_slices[:3], ["a1.dcm", "a2.dcm", "a3.dcm"], [1, 2, 3])
    make_ct_series(tmp_path / "ct", ct_head_slices[3:5], ["b1.dcm", "b2.dcm"], [1, 2])
    (scout,) = make_ct_series(tmp_path / "ct", ct_head_slices[5:], ["scout.dcm"], [1])
    sources = list_volume_sources([tmp_path / "ct"])
    assert sorted(len(s.files) for s in sources) == [2, 3]
    assert scout not in files_of(sources)
    # Named directly, a lone slice takes part, and is refused when read.
    (lone,) = list_volume_sources([scout])
    assert isinstance(lone, DicomSeries)
    with pytest.raises(EnhanceKitError, match="single DICOM slice, not a volume"):
        read_volume_source(lone)


def test_a_folder_without_volumes_or_series_is_refused(tmp_path, make_ct_series, ct_head_slices):
    make_ct_series(tmp_path / "ct", ct_head_slices[:1], ["only.dcm"], [1])
    with pytest.raises(EnhanceKitError, match="no volume files or DICOM series found"):
        list_volume_sources([tmp_path / "ct"])


def test_slices_with_different_rescales_are_not_stacked(tmp_path, make_ct_series, ct_head_slices):
    paths = make_ct_series(tmp_path / "ct", ct_head_slices[:3], ["s1.dcm", "s2.dcm", "s3.dcm"], [1, 2, 3])
    dataset = _read(paths[1])
    dataset.RescaleSlope = 2
    dataset.save_as(paths[1])
    (source,) = list_volume_sources([tmp_path / "ct"])
    with pytest.raises(EnhanceKitError, match=r"s2.dcm differs from s1.dcm in Rescale Slope/Intercept"):
        read_volume_source(source)
