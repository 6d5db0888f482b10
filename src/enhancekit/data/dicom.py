"""DICOM files (X-ray, CT, MR, ultrasound...) through pydicom: read the stored pixel values with their header,
write a derived DICOM that keeps the patient, study and acquisition header of its source.

How stored values meet the toolkit's [0, 1] convention:

* A single-frame file is an image. Its values are mapped by the range its header declares, as 8- and 16-bit
  PNGs are by their type's range: ``0 .. 2**BitsStored - 1`` for unsigned data (a 12-bit X-ray fills [0, 1]),
  ``-2**(BitsStored - 1) .. 2**(BitsStored - 1) - 1`` for signed data. Paired files of one device therefore
  share one scale, which ``eval`` needs.
* A multi-frame file is a volume, mapped by its data range like NIfTI volumes (see :class:`VolumeData`).
* MONOCHROME1 (white = low values, common for X-rays) is mapped with a reversed range, so models always see
  white as 1; written back, the values are reversed again.
* The values are the stored ones: Rescale Slope / Intercept stay in the header and keep their meaning.

A derived file gets new SOP Instance and Series Instance UIDs (derived from the source's UIDs and the
processing, so that all slices of one series processed by one command share their new series), the image type
DERIVED / SECONDARY, a Derivation Description, scaled pixel spacings when the size changed, and uncompressed
Explicit VR Little Endian pixel data.
"""

from __future__ import annotations

import copy
import warnings
from typing import IO, Any

import numpy as np

DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom")

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
            pixels = dataset.pixel_array
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged, truncated or undecodable files
        raise DicomError(_first_line(exc)) from exc
    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    if pixels.dtype.kind not in "iu":
        raise DicomError(f"unsupported pixel type {pixels.dtype}")
    del dataset.PixelData
    if photometric.startswith("YBR"):
        dataset.PhotometricInterpretation = "RGB"
    return pixels, dataset


def frame_count(path: Any) -> int:
    """The number of frames in a DICOM file, read from its header only."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return int(header.get("NumberOfFrames", 1) or 1)
    except Exception as exc:  # a damaged header
        raise DicomError(_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def declared_range(header: Any) -> tuple[float, float]:
    """The stored values mapped to 0 and 1 for a single-frame image: the range of Bits Stored (reversed for
    MONOCHROME1)."""
    bits = int(header.get("BitsStored") or header.get("BitsAllocated") or 16)
    if int(header.get("PixelRepresentation", 0)) == 1:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    else:
        low, high = 0.0, 2.0**bits - 1
    return (high, low) if is_inverted(header) else (low, high)


def is_inverted(header: Any) -> bool:
    """Whether low stored values are displayed white (MONOCHROME1)."""
    return str(header.get("PhotometricInterpretation", "")) == "MONOCHROME1"


def storage_dtype(header: Any) -> np.dtype:
    """The integer dtype of the stored samples."""
    allocated = int(header.get("BitsAllocated") or 16)
    size = 1 if allocated <= 8 else 2 if allocated <= 16 else 4
    signed = int(header.get("PixelRepresentation", 0)) == 1
    return np.dtype(f"{'i' if signed else 'u'}{size}")


def write_dicom(handle: IO[bytes], stored: np.ndarray, source: Any, derivation: str) -> None:
    """Write ``stored`` (integer samples in the source's storage type; frames first, samples last) as a DICOM
    derived from the header ``source``; ``derivation`` says what was done, e.g. "enhancekit adl-gray"."""
    from pydicom import dcmwrite
    from pydicom.dataset import FileMetaDataset, validate_file_meta
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from enhancekit import __version__

    header = copy.deepcopy(source)
    header.file_meta = FileMetaDataset(copy.deepcopy(getattr(source, "file_meta", FileMetaDataset())))
    multi_frame = "NumberOfFrames" in source
    colour = int(source.get("SamplesPerPixel", 1)) == 3
    rows, columns = stored.shape[-3:-1] if colour else stored.shape[-2:]
    _scale_spacings(header, int(source.get("Rows", rows)), rows)
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
    if multi_frame:
        frames = stored.shape[0] if stored.ndim == (4 if colour else 3) else 1
        header.NumberOfFrames = frames
        per_frame = header.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and len(per_frame) != frames:
            # It describes frames that no longer exist (e.g. the mean of a stack of repeated exposures).
            del header.PerFrameFunctionalGroupsSequence
    entropy = [str(source.get("SOPInstanceUID", "")), derivation]
    header.SOPInstanceUID = generate_uid(entropy_srcs=entropy)
    header.SeriesInstanceUID = generate_uid(
        entropy_srcs=[str(source.get("SeriesInstanceUID", "")), derivation]
    )
    image_type = list(source.get("ImageType", [])) or ["DERIVED", "SECONDARY"]
    header.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    for keyword in _STALE_KEYWORDS:
        if keyword in header:
            delattr(header, keyword)
    header.DerivationDescription = f"{derivation} (enhancekit {__version__})"[:1024]
    header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header.file_meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    if "SOPClassUID" in header:
        header.file_meta.MediaStorageSOPClassUID = header.SOPClassUID
    # A conformant file (preamble, complete file meta), re-encoded if the source was big endian or implicit
    # VR: iterating converts every raw element, giving it the VR that explicit-VR writing needs.
    # Warnings would be about the source's own deviations (e.g. a malformed UID), which are kept as they were.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in header.iterall():
            pass
        header.preamble = b"\x00" * 128
        validate_file_meta(header.file_meta, enforce_standard=True)
        dcmwrite(handle, header, implicit_vr=False, little_endian=True, force_encoding=True)


def _scale_spacings(header: Any, old_rows: int, new_rows: int) -> None:
    """Pixel spacings shrink as the image grows (super-resolution), so the image keeps its physical size."""
    if old_rows == new_rows or old_rows <= 0:
        return
    factor = old_rows / new_rows
    for keyword in _SPACING_KEYWORDS:
        if header.get(keyword):
            header[keyword].value = [f"{float(value) * factor:.10g}"[:16] for value in header.get(keyword)]
