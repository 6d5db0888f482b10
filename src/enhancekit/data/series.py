"""DICOM series: the single-frame slices of a CT or MR series taken as one volume, for 3D models.

Scanners and PACS exports store a CT or MR series as a folder of single-frame files, one per slice. A 2D
model takes them one by one (each is an image); a 3D model needs them stacked. Here the single-frame DICOM
files among the inputs are grouped by Series Instance UID (and, within an MR series, by echo and time point),
each group is ordered along the normal of its image plane (Image Position / Orientation (Patient); else
Instance Number; else file name) and read as one volume whose slices keep their own headers, so that each is
written back as a derived DICOM of its source, under its own name. A lone slice is not a volume: folders'
lone slices are left out, as their other 2D images are. Slices that cannot form one volume (in different
planes, sharing positions as acquisitions of one series may, or differing in size, value mapping or
rescale) are refused, never stacked wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enhancekit.data.dicom import (
    DicomError,
    declared_range,
    read_dicom,
    read_header,
    rescale,
    slice_positions,
    write_dicom,
)
from enhancekit.data.io import (
    VolumeData,
    expand_inputs,
    is_dicom_file,
    is_volume_file,
    nothing_found,
    read_volume,
    staged_outputs,
    write_volume,
)
from enhancekit.errors import EnhanceKitError

__all__ = [
    "DicomSeries",
    "VolumeSource",
    "files_of",
    "list_volume_sources",
    "read_volume_source",
    "write_volume_source",
]


@dataclass(frozen=True)
class DicomSeries:
    """The single-frame DICOM files of one series, in slice order."""

    files: tuple[Path, ...]
    #: why the files cannot form one volume (slices in different planes, or sharing positions), if so
    problem: str | None = None
    #: where the slices are unevenly spaced (a missing slice?), if so: a 3D model takes them as evenly spaced
    uneven_spacing: str | None = None

    @property
    def name(self) -> str:
        """How reports and errors name the series: its folder and first and last files."""
        first, last = self.files[0], self.files[-1]
        if len(self.files) == 1:
            return f"{first.parent.name}/{first.name}"
        return f"{first.parent.name}/{first.name}..{last.name} ({len(self.files)} slices)"


VolumeSource = Path | DicomSeries

#: Header elements that all slices of one volume share: the series, and within it the echo and time point.
_VOLUME_KEYWORDS = ("SeriesInstanceUID", "EchoNumbers", "TemporalPositionIdentifier")

#: Gaps between neighbouring slices more than this many times wider (a missing slice) or narrower (an extra
#: one) than the series' typical gap are reported; exported positions are rounded far less than that.
UNEVEN_SPACING_RATIO = 1.5


def files_of(sources: Sequence[VolumeSource]) -> list[Path]:
    """The files behind ``sources``: volume files as they are, each series' slices."""
    return [
        file for source in sources for file in (source.files if isinstance(source, DicomSeries) else [source])
    ]


def list_volume_sources(paths: Sequence[str | Path], *, keep_unreadable: bool = False) -> list[VolumeSource]:
    """The volumes among ``paths`` for a 3D model: volume files (as :func:`~enhancekit.data.io.list_inputs`
    lists them), then the series formed by their single-frame DICOM files.

    Single-frame DICOM files named directly always take part (a lone one fails when read); in folders, lone
    slices are left out. An unreadable TIFF or DICOM stops the listing, unless ``keep_unreadable``: it is then
    listed, to fail when read.

    Raises:
        EnhanceKitError: a path does not exist, a header cannot be read, or no volume was found.
    """
    volumes: list[VolumeSource] = []
    slices: list[tuple[Path, bool]] = []  # (file, named directly)
    lone_in_folders = 0
    for path, kind in expand_inputs(paths, keep_unreadable=keep_unreadable):
        if kind is None:
            if is_dicom_file(path) and not _is_volume(path):
                slices.append((path, True))
            else:
                volumes.append(path)
        elif kind in ("volume", "unreadable"):
            volumes.append(path)
        elif is_dicom_file(path):
            slices.append((path, False))
    for series in _group_series([file for file, _ in slices]):
        if len(series.files) > 1 or (series.files[0], True) in slices:
            volumes.append(series)
        else:
            lone_in_folders += 1
    if not volumes:
        error = nothing_found("volume files or DICOM series", paths)
        if lone_in_folders > 1:
            # Say why a folder of slices holds no series rather than leave the user to guess.
            raise EnhanceKitError(
                f"{error}: the {lone_in_folders} single-frame DICOM files found are each alone in their "
                "series (or echo / time point), as when each is a 2D image of its own or an anonymiser gave "
                "every file a new Series Instance UID"
            )
        raise error
    return volumes


def _is_volume(path: Path) -> bool:
    try:
        return is_volume_file(path)
    except EnhanceKitError:
        return True  # unknown: listed as a file, which fails when read, naming the reason


def _group_series(files: list[Path]) -> list[DicomSeries]:
    """``files`` (single-frame DICOM) grouped by series, echo and time point, each group in slice order (see
    :func:`_slice_order`); a group that cannot be ordered stays unordered, to be refused when read."""
    groups: dict[tuple[str, ...], list[tuple[Path, Any]]] = {}
    for path in files:
        try:
            header = read_header(path)
        except DicomError as exc:
            raise EnhanceKitError(f"cannot read {path}: {exc}") from exc
        # Echoes and time points of one MR series are volumes of their own.
        key = tuple(str(header.get(keyword, "")) for keyword in _VOLUME_KEYWORDS)
        groups.setdefault(key, []).append((path, header))
    return [_slice_order(members) for members in groups.values()]


def _slice_order(members: list[tuple[Path, Any]]) -> DicomSeries:
    """The series of ``members`` in slice order: along the image-plane normal, else by Instance Number, else
    by name (in natural order: IM2 before IM10); with why they cannot form one volume, if so, and where their
    positions are unevenly spaced."""
    try:
        millimetres = slice_positions([header for _, header in members])
    except DicomError as exc:
        return DicomSeries(tuple(path for path, _ in members), problem=str(exc))
    positions: list[Any] | None = millimetres
    if positions is None:
        numbers = [header.get("InstanceNumber") for _, header in members]
        positions = numbers if all(isinstance(number, int) for number in numbers) else None
    if positions is None:
        positions = [_natural_key(path.name) for path, _ in members]
    order = sorted(range(len(members)), key=lambda i: positions[i])
    files = tuple(members[i][0] for i in order)
    uneven = _uneven_spacing(files, [millimetres[i] for i in order]) if millimetres is not None else None
    return DicomSeries(files, uneven_spacing=uneven)


def _uneven_spacing(files: tuple[Path, ...], positions: list[float]) -> str | None:
    """Where the gaps between neighbouring slices (at ``positions``, in mm, ascending) depart from their
    median by more than :data:`UNEVEN_SPACING_RATIO` either way, described; else None."""
    if len(positions) < 3:
        return None
    gaps = np.diff(positions)
    typical = float(np.median(gaps))
    departures = []
    for odd, guess in (
        (gaps > UNEVEN_SPACING_RATIO * typical, "a missing slice?"),
        (gaps < typical / UNEVEN_SPACING_RATIO, "an extra slice?"),
    ):
        where = np.flatnonzero(odd)
        if where.size:
            first = int(where[0])
            departures.append(
                f"{where.size} gap(s) of {gaps[first]:.3g} mm (first between {files[first].name} and "
                f"{files[first + 1].name}; {guess})"
            )
    if not departures:
        return None
    return f"{' and '.join(departures)} where its slices are typically {typical:.3g} mm apart"


def _natural_key(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def read_volume_source(source: VolumeSource) -> VolumeData:
    """A volume file (:func:`~enhancekit.data.io.read_volume`) or a DICOM series: its slices stacked first,
    mapped to [0, 1] by the range their headers declare, each slice's header kept for writing back.

    Raises:
        EnhanceKitError: a slice cannot be read, or the slices cannot form one volume (a lone slice, different
            sizes, value mappings or rescales).
    """
    if isinstance(source, Path):
        return read_volume(source)
    if len(source.files) == 1:
        raise EnhanceKitError(
            f"{source.files[0]} is a single DICOM slice, not a volume: a 3D model needs a multi-frame file "
            "or the slices of a series (use a 2D model for single images)"
        )
    if source.problem is not None:
        raise EnhanceKitError(f"cannot stack the series {source.name}: {source.problem}")
    stored, headers = [], []
    for path in source.files:
        try:
            pixels, header = read_dicom(path)
        except DicomError as exc:
            raise EnhanceKitError(f"cannot read {path}: {exc}") from exc
        stored.append(pixels)
        headers.append(header)
    # One volume needs one grid and one mapping of stored values to intensities for all its slices.
    properties = {
        "size": [pixels.shape for pixels in stored],
        "value mapping": [declared_range(header) for header in headers],
        "Rescale Slope/Intercept": [
            _rescale(header, path) for header, path in zip(headers, source.files, strict=True)
        ],
    }
    for what, values in properties.items():
        differing = next((i for i, value in enumerate(values) if value != values[0]), None)
        if differing is not None:
            raise EnhanceKitError(
                f"cannot stack the series {source.name}: {source.files[differing].name} differs from "
                f"{source.files[0].name} in {what} ({values[differing]} vs {values[0]})"
            )
    voxels = np.stack(stored).astype(np.float32)
    return VolumeData(
        voxels,
        stored[0].dtype,
        declared_range(headers[0]),
        # "dicom": the first slice speaks for the series (display window, rescale, value mapping).
        metadata={
            "dicom": headers[0],
            "series": list(zip(source.files, headers, strict=True)),
            "axes": "IYXS" if voxels.ndim == 4 else "IYX",
        },
    )


def _rescale(header: Any, path: Path) -> tuple[float, float]:
    try:
        return rescale(header)
    except DicomError as exc:
        raise EnhanceKitError(f"cannot read {path}: {exc}") from exc


def write_volume_source(output_dir: Path, source: VolumeSource, volume: VolumeData) -> None:
    """Write ``volume`` (read from ``source``) into ``output_dir`` as its source was stored: a volume file
    under the source's name, a series as one derived DICOM per slice under each slice's name, all slices or
    none (a failure mid-series leaves no part of it)."""
    if isinstance(source, Path):
        write_volume(output_dir / source.name, volume)
        return
    derivation = volume.metadata.get("derivation", "processed")
    destination = output_dir
    try:
        with staged_outputs() as stage:
            for (path, header), values in zip(volume.metadata["series"], volume.voxels, strict=True):
                destination = output_dir / path.name
                with stage(destination) as handle:
                    write_dicom(handle, values, header, derivation)
            destination = output_dir  # from here on the slices are put in place together
    except (OSError, DicomError) as exc:
        raise EnhanceKitError(f"cannot write the series {source.name} ({destination}): {exc}") from exc
