"""DICOM files (X-ray, CT, MR, ultrasound...) through pydicom: read the stored pixel values with their header,
write a derived DICOM that keeps the patient, study and acquisition header of its source.

How stored values meet the toolkit's [0, 1] convention:

* Values are mapped by the range the header declares, as 8- and 16-bit PNGs are by their type's range:
  ``0 .. 2**BitsStored - 1`` for unsigned data (a 12-bit X-ray fills [0, 1]),
  ``-2**(BitsStored - 1) .. 2**(BitsStored - 1) - 1`` for signed data. Paired files of one device therefore
  share one scale, which ``eval`` needs, and a slice maps alike alone or in a multi-frame file.
* A single-frame file is an image, a multi-frame file a volume (frames first).
* MONOCHROME1 (white = low values, common for X-rays) is mapped with a reversed range, so models always see
  white as 1; written back, the values are reversed again.
* The values are the stored ones: Rescale Slope / Intercept stay in the header and keep their meaning.
  Outputs are clipped to the declared range (a viewer would wrap values beyond Bits Stored). 32-bit data
  pass through float32, i.e. with 24 bits of precision.

A derived file gets a new Series Instance UID (derived from the source's and the processing, so that all
slices of one series processed by one command share their new series) and a new SOP Instance UID (derived
from the source's, the processing and the new pixels), the image type DERIVED / SECONDARY, a Derivation
Description, scaled pixel spacings (also inside functional groups) when the size changed, and uncompressed
Explicit VR Little Endian pixel data.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

# .ima: Siemens scanners' own name for DICOM files.
DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom", ".ima")

_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# First two bytes of a DICOM file without the 128-byte preamble: group 0x0002 (file meta) or 0x0008
# (identifying), little or big endian.
_UNPREAMBLED_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")

# Header elements in (row, column) pixel units that follow the image when its size changes.
_SPACING_KEYWORDS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
# Header elements that describe the source's pixel values or their encoding, wrong for new pixels.
_STALE_KEYWORDS = (
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
)


class DicomError(ValueError):
    """A DICOM file the toolkit cannot use; the message is one line, for the user."""


def read_dicom(path: Any) -> tuple[np.ndarray, Any]:
    """The stored pixel values (frames first for multi-frame files, samples last for colour) in native byte
    order, and the header without its pixel data. YBR colour data are converted to RGB."""
    import pydicom

    if not _looks_like_dicom(path):
        raise DicomError("not a DICOM file")
    try:
        # pydicom warns about deviations it repairs while reading (e.g. a VR that differs from the transfer
        # syntax's); they are the writer's, not the user's, to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, force=True)
            if "PixelData" not in dataset:
                raise DicomError("it holds no image (no Pixel Data element)")
            photometric = str(dataset.get("PhotometricInterpretation", ""))
            if photometric.startswith("PALETTE"):
                raise DicomError("palette-colour DICOM is not supported")
            if int(dataset.get("BitsAllocated", 0) or 0) == 1:
                raise DicomError("it holds 1-bit data (a segmentation or overlay), not an image to enhance")
            _set_missing_transfer_syntax(dataset)
            pixels = dataset.pixel_array
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged, truncated or undecodable files
        raise DicomError(_message(exc)) from exc
    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    if pixels.dtype.kind not in "iu":
        raise DicomError(f"unsupported pixel type {pixels.dtype}")
    del dataset.PixelData
    if photometric.startswith("YBR"):
        dataset.PhotometricInterpretation = "RGB"
    return pixels, dataset


def read_header(path: Any) -> Any:
    """A DICOM file's header, without reading its pixel data."""
    import pydicom

    if not _looks_like_dicom(path):
        raise DicomError("not a DICOM file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception as exc:  # a damaged header
        raise DicomError(_message(exc)) from exc


def frame_count(path: Any) -> int:
    """The number of frames in a DICOM file, read from its header only."""
    return frames_in(read_header(path))


def frames_in(header: Any) -> int:
    """The number of frames a DICOM header declares (1 when it declares none)."""
    try:
        return int(header.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as exc:
        raise DicomError(f"unreadable Number of Frames: {_message(exc)}") from exc


def slice_positions(headers: Sequence[Any]) -> list[float] | None:
    """Each slice's position (mm) along the normal of its image plane, from Image Position / Orientation
    (Patient); None unless every header has both.

    Slices of a CT or MR series are ordered by this, not by file name or Instance Number, which scanners and
    exports number in either direction or not at all.

    Raises:
        DicomError: the slices lie in different planes (e.g. a three-plane localizer), or several share one
            position (echoes, acquisitions or time points of one series): no single volume holds them.
    """
    orientations, positions = [], []
    for header in headers:
        try:
            orientation = np.array([float(v) for v in header.ImageOrientationPatient])
            position = np.array([float(v) for v in header.ImagePositionPatient])
        except (AttributeError, TypeError, ValueError):
            return None
        if orientation.shape != (6,) or position.shape != (3,):
            return None
        orientations.append(orientation)
        positions.append(position)
    if any(not np.allclose(o, orientations[0], atol=1e-4) for o in orientations):
        raise DicomError("its slices lie in different planes (Image Orientation (Patient) differs)")
    normal = np.cross(orientations[0][:3], orientations[0][3:])
    along = np.array([normal @ position for position in positions])
    ordered = np.sort(along)
    if len(ordered) > 1 and np.min(np.diff(ordered)) < 1e-3:
        raise DicomError(
            "several of its slices share one position (several acquisitions in one series?); put each "
            "volume's slices in a folder of its own"
        )
    return [float(value) for value in along]


def is_image_object(header: Any) -> bool:
    """Whether a DICOM header describes an image (it has Rows). Presentation states, structured reports and
    key-object selections, which PACS exports put beside the images, hold none.

    Raises:
        DicomError: an image class (e.g. CT Image Storage) without Rows: a header cut short.
    """
    if "Rows" in header:
        return True
    sop_class = header.get("SOPClassUID")
    if sop_class is not None and "Image" in getattr(sop_class, "name", ""):
        raise DicomError(f"its header is cut short (a {sop_class.name} object without Rows)")
    return False


def has_dicom_preamble(path: Any) -> bool:
    """Whether a file carries the DICOM preamble ("DICM" after 128 bytes): how a DICOM file named without a
    DICOM extension (``IM0001``, or a UID such as ``1.2.840.113619.2.1``) is recognised. Stricter than the
    reader's own test, which also accepts preamble-less files (too weak a sign for an unknown file)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _looks_like_dicom(path: Any) -> bool:
    """ "DICM" after the preamble, or a first element of group 0x0002 / 0x0008 (files without preamble)."""
    with open(path, "rb") as handle:
        start = handle.read(132)
    return start[128:132] == b"DICM" or start[:2] in _UNPREAMBLED_STARTS


def _set_missing_transfer_syntax(dataset: Any) -> None:
    """A file without file meta says nothing of its encoding, which pydicom then detected while reading."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    dataset.file_meta = meta if meta is not None else FileMetaDataset()
    implicit, little = dataset.original_encoding
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    dataset.file_meta.TransferSyntaxUID = syntax


def _message(exc: BaseException) -> str:
    """pydicom's message on one line: its later lines say which decoder plugins to install."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def declared_range(header: Any) -> tuple[float, float]:
    """The stored values mapped to 0 and 1: the range of Bits Stored (reversed for MONOCHROME1)."""
    bits = int(header.get("BitsStored") or header.get("BitsAllocated") or 16)
    if int(header.get("PixelRepresentation", 0)) == 1:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    else:
        low, high = 0.0, 2.0**bits - 1
    return (high, low) if str(header.get("PhotometricInterpretation", "")) == "MONOCHROME1" else (low, high)


def display_window(header: Any) -> tuple[float, float] | None:
    """The first Window Center/Width pair of a header, as (low, high) in modality units (e.g. HU), or None."""
    center, width = _header_number(header, "WindowCenter"), _header_number(header, "WindowWidth")
    if center is None or width is None or not width > 0:
        return None
    return center - width / 2, center + width / 2


def _header_number(header: Any, keyword: str) -> float | None:
    """A number from the header's top level or, in enhanced (multi-frame) objects, from the functional groups
    shared by all frames (else the first frame's), where Rescale and Window values live. The first of several
    values."""
    value = header.get(keyword)
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if value is not None:
            break
        for sequence in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            try:
                value = header.get(groups)[0].get(sequence)[0].get(keyword)
            except (IndexError, TypeError, AttributeError):  # a group or sequence is missing or empty
                continue
            if value is not None:
                break
    if value is None or value == "":
        return None
    # pydicom gives a multi-valued element as a MultiValue, a Sequence; one value as a DSfloat.
    first = value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value
    try:
        return float(first)
    except (TypeError, ValueError):
        raise DicomError(f"its {keyword} is not a number: {str(first)[:40]!r}") from None


def rescale(header: Any) -> tuple[float, float]:
    """Rescale Slope and Intercept (stored value -> modality units, e.g. HU); (1, 0) when absent."""
    slope = _header_number(header, "RescaleSlope") or 1.0  # 0 is not a valid slope
    return slope, _header_number(header, "RescaleIntercept") or 0.0


def storage_dtype(header: Any) -> np.dtype:
    """The integer dtype of the stored samples."""
    allocated = int(header.get("BitsAllocated") or 16)
    size = 1 if allocated <= 8 else 2 if allocated <= 16 else 4
    signed = int(header.get("PixelRepresentation", 0)) == 1
    return np.dtype(f"{'i' if signed else 'u'}{size}")


def write_dicom(handle: IO[bytes], values: np.ndarray, source: Any, derivation: str) -> None:
    """Write ``values`` (stored units, any numeric dtype; frames first, samples last) as a DICOM derived from
    the header ``source``: clipped to its declared range and cast to its storage type. ``derivation`` says
    what was done, e.g. "enhancekit enhance --model adl-gray"."""
    try:
        _write(handle, values, source, derivation)
    except (OSError, DicomError):
        raise
    except Exception as exc:  # pydicom refusing the header (e.g. a required element it cannot derive)
        raise DicomError(_message(exc)) from exc


def _write(handle: IO[bytes], values: np.ndarray, source: Any, derivation: str) -> None:
    from pydicom import dcmwrite
    from pydicom.dataset import FileMetaDataset, validate_file_meta
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    from enhancekit import __version__

    low, high = sorted(declared_range(source))
    stored = np.rint(np.clip(np.asarray(values, dtype=np.float64), low, high)).astype(storage_dtype(source))
    header = copy.deepcopy(source)
    header.file_meta = FileMetaDataset(copy.deepcopy(getattr(source, "file_meta", FileMetaDataset())))
    colour = int(source.get("SamplesPerPixel", 1)) == 3
    rows, columns = stored.shape[-3:-1] if colour else stored.shape[-2:]
    _scale_spacings(header, int(source.get("Rows", rows)) / rows)
    header.PixelData = np.ascontiguousarray(stored.astype(stored.dtype.newbyteorder("<"))).tobytes()
    header["PixelData"].VR = "OB" if stored.dtype.itemsize == 1 else "OW"
    header.Rows, header.Columns = rows, columns
    header.SamplesPerPixel = 3 if colour else 1
    if colour:
        header.PhotometricInterpretation = "RGB"
        header.PlanarConfiguration = 0
    else:
        if not str(header.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
            header.PhotometricInterpretation = "MONOCHROME2"
        if "PlanarConfiguration" in header:
            del header.PlanarConfiguration
    if "NumberOfFrames" in source:
        _set_frames(header, stored.shape[0] if stored.ndim == (4 if colour else 3) else 1)
    digest = hashlib.sha256(header.PixelData).hexdigest()
    header.SOPInstanceUID = generate_uid(
        entropy_srcs=[str(source.get("SOPInstanceUID", "")), derivation, digest]
    )
    header.SeriesInstanceUID = generate_uid(
        entropy_srcs=[str(source.get("SeriesInstanceUID", "")), derivation]
    )
    if "SOPClassUID" not in header:
        header.SOPClassUID = _SECONDARY_CAPTURE
    image_type = list(source.get("ImageType", [])) or ["DERIVED", "SECONDARY"]
    header.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    for keyword in _STALE_KEYWORDS:
        if keyword in header:
            delattr(header, keyword)
    header.DerivationDescription = f"{derivation} (enhancekit {__version__})"[:1024]
    meta = header.file_meta
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    meta.MediaStorageSOPClassUID = header.SOPClassUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"ENHANCEKIT_{__version__}"[:16]
    # Warnings would be about the source's own deviations (e.g. a malformed UID), which are kept as they were.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Iterating converts every raw element, giving it the VR that explicit-VR writing needs; the file is
        # re-encoded if the source was big endian or implicit VR.
        for _ in header.iterall():
            pass
        header.preamble = b"\x00" * 128
        validate_file_meta(meta, enforce_standard=True)
        dcmwrite(handle, header, implicit_vr=False, little_endian=True, force_encoding=True)


def _set_frames(header: Any, frames: int) -> None:
    header.NumberOfFrames = frames
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) == frames:
        return
    if frames < len(per_frame):
        # E.g. the mean of a stack of repeated exposures: it keeps the first frame's description, which
        # enhanced multi-frame files require one of per frame.
        header.PerFrameFunctionalGroupsSequence = per_frame[:frames]
    else:
        del header.PerFrameFunctionalGroupsSequence


def _scale_spacings(header: Any, factor: float) -> None:
    """Pixel spacings, at the top level and inside functional groups, shrink as the image grows
    (super-resolution), so the image keeps its physical size."""
    if factor == 1:
        return
    for element in header.iterall():
        if element.keyword in _SPACING_KEYWORDS and element.value:
            element.value = [f"{float(value) * factor:.10g}"[:16] for value in element.value]
