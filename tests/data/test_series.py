"""DICOM series as volumes: grouping, slice order, stacking checks and writing back slice by slice."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import enhancekit.data.series as series_module
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


def _edit(path: Path, **values) -> None:
    dataset = _read(path)
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    dataset.save_as(path)


def test_echoes_are_volumes_of_their_own_and_other_repeats_are_refused(
    tmp_path, make_ct_series, ct_head_slices
):
    # Two echoes of one series: the same three positions twice.
    names = [f"e{k}.dcm" for k in range(6)]
    paths = make_ct_series(tmp_path / "mr", ct_head_slices[:6], names, list(range(6)))
    for index, path in enumerate(paths):
        _edit(path, ImagePositionPatient=[-158.1, -179.0, 2.5 * (index % 3)], EchoNumbers=1 + index // 3)
    sources = list_volume_sources([tmp_path / "mr"])
    assert sorted([p.name for p in s.files] for s in sources) == [names[:3], names[3:]]
    for source in sources:
        first = names.index(source.files[0].name)
        np.testing.assert_array_equal(read_volume_source(source).voxels, ct_head_slices[first : first + 3])
    # Without an echo (or time point) to tell them apart, repeated positions cannot form one volume.
    for path in paths:
        dataset = _read(path)
        del dataset.EchoNumbers
        dataset.save_as(path)
    (source,) = list_volume_sources([tmp_path / "mr"])
    with pytest.raises(EnhanceKitError, match="several of its slices share one position"):
        read_volume_source(source)


def test_slices_in_different_planes_are_refused(tmp_path, make_ct_series, ct_head_slices):
    paths = make_ct_series(tmp_path / "loc", ct_head_slices[:3], ["ax.dcm", "sag.dcm", "cor.dcm"], [1, 2, 3])
    _edit(paths[1], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    (source,) = list_volume_sources([tmp_path / "loc"])
    with pytest.raises(EnhanceKitError, match="lie in different planes"):
        read_volume_source(source)


def test_without_positions_or_numbers_names_order_naturally(tmp_path, make_ct_series, ct_head_slices):
    names = ["IM10", "IM2", "IM1"]
    paths = make_ct_series(tmp_path / "ct", ct_head_slices[:3], names, [1, 2, 3], positions=False)
    for path in paths:
        dataset = _read(path)
        del dataset.InstanceNumber
        dataset.save_as(path)
    (source,) = list_volume_sources([tmp_path / "ct"])
    assert [p.name for p in source.files] == ["IM1", "IM2", "IM10"]


def test_backups_and_non_image_objects_are_not_slices(tmp_path, make_ct_series, ct_head_slices):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    paths = make_ct_series(tmp_path / "ct", ct_head_slices[:3], ["IM1", "IM2", "IM3"], [1, 2, 3])
    (tmp_path / "ct" / "IM1.dcm.bak").write_bytes(paths[0].read_bytes())
    # A presentation state of the same series, named as the exports name files: no image in it.
    state = Dataset()
    state.file_meta = FileMetaDataset()
    state.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    state.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"  # Grayscale Softcopy Presentation State Storage
    state.SOPInstanceUID = generate_uid()
    state.SeriesInstanceUID = _read(paths[0]).SeriesInstanceUID
    state.save_as(tmp_path / "ct" / "PR1", enforce_file_format=True)
    (source,) = list_volume_sources([tmp_path / "ct"])
    assert [p.name for p in source.files] == ["IM1", "IM2", "IM3"]


def test_a_slice_with_a_cut_header_is_reported_not_dropped(tmp_path, make_ct_series, ct_head_slices):
    paths = make_ct_series(tmp_path / "ct", ct_head_slices[:3], ["IM1", "IM2", "IM3"], [1, 2, 3])
    paths[1].write_bytes(paths[1].read_bytes()[:700])
    with pytest.raises(EnhanceKitError, match="cannot read .*IM2: its header is cut short"):
        list_volume_sources([tmp_path / "ct"])
    sources = list_volume_sources([tmp_path / "ct"], keep_unreadable=True)
    assert paths[1] in sources  # listed on its own, to fail when read


def test_a_malformed_rescale_is_a_one_line_error(tmp_path, make_ct_series, ct_head_slices):
    paths = make_ct_series(tmp_path / "ct", ct_head_slices[:2], ["s1.dcm", "s2.dcm"], [1, 2])
    for path in paths:
        dataset = _read(path)
        dataset["RescaleSlope"].VR = "LO"  # stored as text, the way broken writers do
        dataset.RescaleSlope = "1,"
        dataset.save_as(path)
    (source,) = list_volume_sources([tmp_path / "ct"])
    with pytest.raises(EnhanceKitError, match=r"s1.dcm: its RescaleSlope is not a number: '1,'"):
        read_volume_source(source)


def _series_at(folder: Path, make_ct_series, slices: np.ndarray, z: list[float]) -> DicomSeries:
    names = [f"s{k}.dcm" for k in range(len(z))]
    paths = make_ct_series(folder, slices[: len(z)], names, list(range(len(z))))
    for path, position in zip(paths, z, strict=True):
        _edit(path, ImagePositionPatient=[-158.1, -179.0, position])
    (series,) = list_volume_sources([folder])
    return series


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        ([0, 2.5, 5, 7.5, 10], None),
        ([0, 2.5000001, 4.9999, 7.5, 10.0002], None),  # rounding in exported positions
        ([0, 5], None),
        ([10, 7.5, 2.5, 0], "1 gap(s) of 5 mm (first between s2.dcm and s1.dcm; a missing slice?)"),
        ([0, 5, 7.5, 10, 15, 17.5], "2 gap(s) of 5 mm (first between s0.dcm and s1.dcm; a missing slice?)"),
        ([0, 2.5, 3, 5, 7.5, 10], "1 gap(s) of 0.5 mm (first between s1.dcm and s2.dcm; an extra slice?)"),
    ],
)
def test_gaps_departing_from_the_typical_spacing_are_reported(
    tmp_path, make_ct_series, ct_head_slices, z, expected
):
    slices = np.concatenate([ct_head_slices, ct_head_slices])
    series = _series_at(tmp_path / "ct", make_ct_series, slices, z)
    if expected is None:
        assert series.uneven_spacing is None
    else:
        assert series.uneven_spacing is not None and expected in series.uneven_spacing, series.uneven_spacing
        assert "typically 2.5 mm apart" in series.uneven_spacing


def test_without_positions_spacing_is_not_judged(tmp_path, make_ct_series, ct_head_slices):
    make_ct_series(tmp_path / "ct", ct_head_slices[:4], ["a", "b", "c", "d"], [1, 2, 5, 9], positions=False)
    (series,) = list_volume_sources([tmp_path / "ct"])
    assert series.uneven_spacing is None


def test_slices_each_alone_in_their_series_are_refused_saying_why(tmp_path, make_ct_series, ct_head_slices):
    # As some anonymisers write them: every file a new Series Instance UID.
    for k in range(3):
        make_ct_series(tmp_path / "ct", ct_head_slices[k : k + 1], [f"s{k}.dcm"], [k + 1])
    with pytest.raises(EnhanceKitError, match="the 3 single-frame DICOM files found are each alone"):
        list_volume_sources([tmp_path / "ct"])


def test_a_failure_mid_series_leaves_no_slice_written(tmp_path, monkeypatch, ct_series):
    (source,) = list_volume_sources([ct_series.folder])
    volume = read_volume_source(source)
    real_write = series_module.write_dicom
    written = []

    def failing_on_the_fourth(handle, *args, **kwargs):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(handle)
        real_write(handle, *args, **kwargs)

    monkeypatch.setattr(series_module, "write_dicom", failing_on_the_fourth)
    written_fourth = r"cannot write the series .*IM0002.dcm\): .*No space left on device"
    with pytest.raises(EnhanceKitError, match=written_fourth):
        write_volume_source(tmp_path / "out", source, volume)
    assert len(written) == 3 and list((tmp_path / "out").iterdir()) == []
