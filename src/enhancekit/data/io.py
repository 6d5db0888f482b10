"""Reading and writing images and volumes, listing input folders and pairing inputs with targets.

Conventions shared by the whole toolkit:

* Images are numpy arrays of shape H x W x C (gray has C = 1), float32 in [0, 1]. Alpha is kept apart from the
  colour channels, in its original integer (or float) values, so it can be written back bit-exact.
* Integer files are converted with :func:`to_float` (value / 255 or value / 65535) and written back with
  :func:`from_float` (clip to [0, 1], scale, ``np.rint``), so 8- and 16-bit files survive round trips exactly.
* Volumes keep their raw intensities (float32) in the file's axis order, plus the value range used to map them
  to [0, 1] for models and the original dtype, affine and header used when writing them back.
* DICOM files keep their stored values and header (see :mod:`enhancekit.data.dicom`): a single frame is an
  image, several frames a volume, and outputs are derived DICOMs of their source.
* Every write is atomic: data go to a hidden temporary file in the destination folder, which then replaces the
  destination, so a failed or interrupted write never leaves a partial file or destroys an existing one.
* Problems caused by the user's files (missing, corrupt, unsupported) raise :class:`EnhanceKitError` with a
  one-line message naming the file.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import nibabel as nib
import numpy as np
import tifffile
from nibabel.filebasedimages import ImageFileError
from PIL import Image, ImageSequence

from enhancekit.data.dicom import (
    DICOM_EXTENSIONS,
    DicomError,
    declared_range,
    frame_count,
    frames_in,
    has_dicom_preamble,
    is_image_object,
    read_dicom,
    read_header,
    storage_dtype,
    write_dicom,
)
from enhancekit.errors import EnhanceKitError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VOLUME_EXTENSIONS",
    "ImageData",
    "VolumeData",
    "data_range",
    "expand_inputs",
    "file_stem",
    "folder_contents",
    "from_float",
    "is_dicom_file",
    "is_volume_file",
    "list_inputs",
    "pair_by_stem",
    "read_image",
    "read_volume",
    "to_float",
    "write_image",
    "write_volume",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", *DICOM_EXTENSIONS)
# TIFF and DICOM are in both lists: whether such a file holds an image or a volume depends on its content
# (is_volume_file).
VOLUME_EXTENSIONS: tuple[str, ...] = (".nii", ".nii.gz", ".npy", ".npz", ".tif", ".tiff", *DICOM_EXTENSIONS)
_CONTENT_DECIDED = (".tif", ".tiff", *DICOM_EXTENSIONS)

_TIFF_EXTENSIONS = (".tif", ".tiff")
_NIFTI_EXTENSIONS = (".nii", ".nii.gz")
_JPEG_QUALITY = 95
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_BIT_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}
_DTYPES = {depth: dtype for dtype, depth in _BIT_DEPTHS.items()}
_ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"

# Pillow modes it can hand over losslessly as 8-bit gray / colour after convert(); 16-bit and float modes are
# read directly because converting them would drop precision.
_PILLOW_GRAY_MODES = ("1", "L", "LA", "La")
_PILLOW_COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
# Colour modes whose samples are not RGB: converted to RGB, so the file's colour profile no longer fits.
_CONVERTED_COLOUR_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_PILLOW_DIRECT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "F")

# Pillow reads 16-bit colour PNGs as 8-bit (it has no 16-bit colour mode), but its PNG decoder can still
# return every byte: decoding again with the little-endian raw mode yields the low bytes of RGB / RGBA, and an
# 8-bit RGBA raw mode has the same 4-byte pixel as 16-bit gray+alpha, so it returns [L hi, L lo, A hi, A lo].
_PNG16_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L", "LA;16B": "RGBA"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
_PNG_FILTER_UP = 2
_PNG_IDAT_SIZE = 1 << 20

# Upright-making transforms for the EXIF / TIFF orientation values 2-8 (1 means already upright).
_ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a),
}

# What the decoders raise on corrupt or truncated data; anything else is a bug and propagates.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
    ImageFileError,
)

# Set5-style low-resolution names: "babyx3", "baby_x3", "baby-X4", "baby_LR", "baby_LRBI", "baby_lowres".
_INPUT_SUFFIX = re.compile(r"(?:[_-]?[xX]\d+|[_-]?(?:LR|lr|LRBI|lowres))$")
_NAMES_SHOWN = 5


@dataclass
class ImageData:
    """A decoded 2D image.

    Attributes:
        pixels: H x W x C float32 in [0, 1], colour channels only (C = 1 for gray, 3 for colour).
        alpha: H x W alpha in the file's own values and dtype (uint8, uint16 or float32), or None.
        bit_depth: bits per sample in the file: 8, 16, or 32 for float TIFF.
        mode: channel layout of the file after palette expansion: "L", "LA", "RGB" or "RGBA".
        metadata: what :func:`write_image` can pass on: "dpi" (x, y), "icc_profile" (bytes), "exif" (bytes,
            orientation already reset to 1 because :func:`read_image` applies it).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mode: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_colour_stack(axes: str | None, shape: tuple[int, ...]) -> bool:
    """A 4D TIFF series whose last axis (tifffile's ``S``) holds 3 or 4 colour samples per pixel."""
    return bool(axes) and axes.endswith("S") and len(shape) == 4 and shape[-1] in (3, 4)


@dataclass
class VolumeData:
    """A decoded volume (3D, or 4D as stored, e.g. NIfTI time series), in raw intensity units.

    Attributes:
        voxels: float32 array in the file's axis order and intensity units (NIfTI scaling applied).
        dtype: the file's sample dtype, restored by :func:`write_volume` (integers are rounded and clipped).
        value_range: (low, high) mapped to [0, 1] by :meth:`normalized`; the data minimum and maximum at read
            time (high = low + 1 for a constant volume, so that normalising never divides by zero).
        affine: 4 x 4 voxel-to-world matrix for NIfTI, None for other formats.
        header: the NIfTI header (nibabel), None for other formats.
        metadata: format details needed to write the volume back ("axes" for TIFF, "npz_key" for .npz).
    """

    voxels: np.ndarray
    dtype: np.dtype
    value_range: tuple[float, float]
    affine: np.ndarray | None = None
    header: nib.nifti1.Nifti1Header | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def colour_samples(self) -> bool:
        """Whether the last axis holds each pixel's colour samples (an RGB or RGBA TIFF stack)."""
        return _is_colour_stack(self.metadata.get("axes"), self.voxels.shape)

    def normalized(self) -> np.ndarray:
        """The voxels mapped from ``value_range`` to [0, 1] as float32 (values outside are clipped)."""
        low, high = self.value_range
        return np.clip((self.voxels - low) / (high - low), 0.0, 1.0).astype(np.float32)

    def from_normalized(self, array: np.ndarray) -> VolumeData:
        """A copy of this volume holding ``array`` (in [0, 1], any shape) mapped back to raw intensities.

        Everything else (dtype, value range, affine, header, metadata) is kept, so the result can be passed to
        :func:`write_volume` directly; a changed NIfTI grid size is handled there.
        """
        low, high = self.value_range
        voxels = (np.asarray(array, dtype=np.float32) * (high - low) + low).astype(np.float32)
        return replace(self, voxels=voxels)


def file_stem(path: str | Path) -> str:
    """The file name without its extension, treating ``.nii.gz`` as one extension. A name without one of our
    extensions is its own stem: DICOM files named by UID (``1.2.840.113619.2.1``) differ in the last part."""
    name = Path(path).name
    extension = _extension(Path(path))
    return name[: len(name) - len(extension)] if _is_ours(extension) else name


def is_volume_file(path: str | Path) -> bool:
    """Whether ``path`` holds a volume: NIfTI, .npy, .npz, a multi-frame DICOM, or a TIFF that is not a
    single 2D image.

    A TIFF is a volume when its main series has an axis besides rows, columns and samples (a multi-page stack,
    a time series, ImageJ channels), or when it holds several images of one shape (e.g. pages appended one by
    one). An image with a smaller thumbnail page is still an image. Only the TIFF structure is read.
    """
    path = Path(path)
    extension = _format_extension(path)
    if extension not in _CONTENT_DECIDED:
        return extension in VOLUME_EXTENSIONS
    try:
        if extension in DICOM_EXTENSIONS:
            return frame_count(path) > 1
        with tifffile.TiffFile(path) as tif:
            return _is_volume_tiff(tif)
    except _DECODE_ERRORS as exc:
        raise EnhanceKitError(f"cannot read {path}: {_reason(exc)}") from exc


def to_float(array: np.ndarray) -> np.ndarray:
    """Integer samples to float32 in [0, 1] (uint8 / 255, uint16 / 65535, bool as 0 / 1).

    Float input is returned as float32 unchanged (it is assumed to be in [0, 1] already).
    """
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    raise TypeError(f"to_float expects uint8, uint16, bool or float samples, got {array.dtype}")


def from_float(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float samples in [0, 1] to uint8 (bit_depth 8), uint16 (16) or float32 (32): clipped, then rounded.

    NaN or infinity raise ValueError: they have no meaningful pixel value and would otherwise be cast to
    arbitrary integers.
    """
    if bit_depth not in _DTYPES:
        raise ValueError(f"bit_depth must be 8, 16 or 32, got {bit_depth}")
    if not np.isfinite(array).all():
        raise ValueError("from_float: the array contains NaN or infinity")
    clipped = np.clip(array.astype(np.float32, copy=False), 0.0, 1.0)
    if bit_depth == 32:
        return clipped
    top = np.float32(2**bit_depth - 1)
    return np.rint(clipped * top).astype(_DTYPES[bit_depth])


def read_image(path: str | Path) -> ImageData:
    """Read a PNG, JPEG, BMP, TIFF (8 or 16 bits per sample; float32 TIFF as 32) or single-frame DICOM image.

    Gray, gray+alpha, RGB and RGBA are kept as such; palette images become RGB or RGBA, 1-bit images gray,
    CMYK / YCbCr colour RGB. The EXIF (or TIFF) orientation is applied so the pixels are upright, and the
    orientation stored in ``metadata["exif"]`` is reset to 1 to match. Float TIFF samples are clipped to
    [0, 1]. Colour-key transparency (PNG tRNS) is honoured for 8-bit images only.

    Raises:
        EnhanceKitError: the file is missing, not an image, corrupt or truncated, a TIFF volume, or uses an
            unsupported sample type or channel count.
    """
    path = Path(path)
    extension = _readable_extension(path, "image", IMAGE_EXTENSIONS)
    if extension in DICOM_EXTENSIONS:
        return _read_dicom_image(path)
    try:
        if extension in _TIFF_EXTENSIONS:
            samples, metadata, orientation = _read_tiff_image(path)
        else:
            samples, metadata, orientation = _read_pillow_image(path)
    except _DECODE_ERRORS as exc:
        raise EnhanceKitError(f"cannot read image {path}: {_reason(exc)}") from exc
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise EnhanceKitError(f"cannot read image {path}: it holds NaN or infinite samples")
    return _image_data(path, samples, metadata, orientation)


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    bit_depth: int = 8,
    alpha: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write an image; the extension picks the format (.png, .jpg / .jpeg, .bmp, .tif / .tiff, .dcm).

    Args:
        path: destination; missing parent folders are created and the write is atomic.
        pixels: H x W or H x W x C (C = 1 or 3) float in [0, 1]; clipped and rounded to ``bit_depth``.
            uint8 / uint16 arrays are accepted and converted with :func:`to_float` first.
        bit_depth: 8 or 16 (PNG, TIFF), or 32 (float TIFF). JPEG and BMP store 8 bits only.
        alpha: H x W alpha, written unchanged when its dtype matches ``bit_depth`` and rescaled exactly
            otherwise (uint8 x 257 = uint16). JPEG and BMP cannot store it.
        metadata: as in :attr:`ImageData.metadata`; each entry is written where the format supports it (PNG:
            all, JPEG: all, TIFF: dpi and ICC profile, BMP: dpi) and silently dropped elsewhere. A DICOM
            output needs the source's header ("dicom", from :func:`read_image`) and is stored in the source's
            sample type whatever ``bit_depth`` says; "derivation" names the processing in its header.

    Raises:
        EnhanceKitError: unsupported extension, a bit depth or alpha the format cannot store, or the file
            cannot be written (permissions, disk full).
    """
    path = Path(path)
    metadata = metadata or {}
    extension = _output_extension(path, metadata)
    if extension not in IMAGE_EXTENSIONS:
        raise _extension_error("write image", path, IMAGE_EXTENSIONS)
    if not np.isfinite(np.asarray(pixels, dtype=np.float64)).all():
        raise EnhanceKitError(f"cannot write image {path}: it holds NaN or infinite values")
    if extension in DICOM_EXTENSIONS:
        _write_dicom_image(path, pixels, alpha, metadata)
        return
    samples = _samples_to_write(pixels, alpha, bit_depth)
    problem = _unsupported_output(extension, bit_depth, alpha is not None)
    if problem:
        raise EnhanceKitError(f"cannot write image {path}: {problem}")
    try:
        with atomic_output(path) as handle:
            if extension in _TIFF_EXTENSIONS:
                _write_tiff_image(handle, samples, metadata)
            elif bit_depth == 16:
                handle.write(_encode_png16(samples, metadata))
            else:
                _write_pillow_image(handle, samples, extension, metadata)
    except OSError as exc:
        raise EnhanceKitError(f"cannot write image {path}: {_reason(exc)}") from exc


def read_volume(path: str | Path) -> VolumeData:
    """Read a volume: NIfTI (.nii, .nii.gz), multi-page TIFF, multi-frame DICOM, .npy, or .npz (its only
    array, else ``arr_0``).

    4D data (e.g. a NIfTI time series) stay 4D; the caller picks a volume or averages. NIfTI scaling
    (scl_slope / scl_inter) is applied, so voxels are in physical units.

    Raises:
        EnhanceKitError: the file is missing, corrupt or of an unsupported type, or an .npz is ambiguous.
    """
    path = Path(path)
    extension = _readable_extension(path, "volume", VOLUME_EXTENSIONS)
    affine = header = None
    metadata: dict[str, Any] = {}
    try:
        if extension in _NIFTI_EXTENSIONS:
            image = nib.load(path)
            data = np.asarray(image.get_fdata(dtype=np.float32))
            dtype = np.dtype(image.get_data_dtype())
            affine, header = image.affine.copy(), image.header.copy()
            # nibabel moves the scaling of a loaded file from its header into the data proxy; put it back so
            # that write_volume knows the integer samples are scaled.
            scaling = (image.dataobj.slope, image.dataobj.inter)
            if scaling != (1.0, 0.0):
                header.set_slope_inter(*scaling)
        elif extension in _TIFF_EXTENSIONS:
            data, metadata = _read_tiff_volume(path)
            dtype = data.dtype
        elif extension in DICOM_EXTENSIONS:
            data, header_dicom = read_dicom(path)
            dtype = data.dtype
            # tifffile's axis letters: frames (I), rows, columns and, for colour, samples (S).
            metadata = {"dicom": header_dicom, "axes": "IYXS" if data.ndim == 4 else "IYX"}
        elif extension == ".npy":
            data = np.load(path, allow_pickle=False)
            dtype = data.dtype
        else:
            data, metadata = _read_npz(path)
            dtype = data.dtype
    except _DECODE_ERRORS as exc:
        raise EnhanceKitError(f"cannot read volume {path}: {_reason(exc)}") from exc
    dtype = dtype.newbyteorder("=")
    if dtype.kind not in "biuf":
        raise EnhanceKitError(f"cannot read volume {path}: unsupported sample type {dtype}")
    voxels = data.astype(np.float32)
    # DICOM frames map as its single frames do (and MONOCHROME1 reversed, so models see white as 1).
    value_range = declared_range(metadata["dicom"]) if "dicom" in metadata else data_range(voxels)
    return VolumeData(voxels, dtype, value_range, affine, header, metadata)


def write_volume(path: str | Path, volume: VolumeData | np.ndarray, like: VolumeData | None = None) -> None:
    """Write a volume as NIfTI (.nii, .nii.gz), TIFF (.tif, .tiff), DICOM (.dcm: derived from the DICOM
    volume given as ``like``), .npy or .npz, atomically.

    Args:
        path: destination; missing parent folders are created.
        volume: a :class:`VolumeData` (written in its ``dtype`` with its affine and header), or an array: in
            raw intensity units when ``like`` is given, else written as is in its own dtype.
        like: when ``volume`` is an array, the volume whose dtype, affine, header and metadata it takes.

    Integer dtypes are rounded and clipped to their range. NIfTI keeps the source header (and scaling: a
    scaled integer source is re-scaled by nibabel to fit the new data). When the NIfTI grid size changed
    (e.g. super-resolution), the affine is rescaled so the volume covers the same physical extent.

    Raises:
        EnhanceKitError: unsupported extension, or the file cannot be written.
        ValueError: both a VolumeData and ``like`` given, or integer output requested for NaN / inf voxels.
    """
    path = Path(path)
    if isinstance(volume, VolumeData):
        if like is not None:
            raise ValueError("write_volume: pass `like` only with a plain array")
        like, volume = volume, volume.voxels
    header = like.header if like is not None else None
    affine = like.affine if like is not None else None
    metadata = like.metadata if like is not None else {}
    extension = _output_extension(path, metadata)
    if extension not in VOLUME_EXTENSIONS:
        raise _extension_error("write volume", path, VOLUME_EXTENSIONS)
    if extension in DICOM_EXTENSIONS and "dicom" not in metadata:
        raise EnhanceKitError(f"cannot write volume {path}: {_DICOM_NEEDS_SOURCE}")
    scaled = extension in _NIFTI_EXTENSIONS and header is not None and _has_scaling(header)
    # A scaled integer NIfTI needs nibabel to choose the new scaling from float data, and DICOM clips to the
    # range its header declares; all else is cast here.
    keep = like is None or scaled or extension in DICOM_EXTENSIONS
    data = np.asarray(volume) if keep else _restore_dtype(volume, like.dtype)
    try:
        with atomic_output(path) as handle:
            if extension in _NIFTI_EXTENSIONS:
                dtype = like.dtype if like is not None else data.dtype
                raw = _nifti_bytes(data, dtype, affine, header)
                handle.write(gzip.compress(raw, compresslevel=6, mtime=0) if extension == ".nii.gz" else raw)
            elif extension in _TIFF_EXTENSIONS:
                axes = metadata.get("axes")
                tiff_metadata = {"axes": axes} if axes and len(set(axes)) == len(axes) == data.ndim else {}
                colour = _is_colour_stack(axes, data.shape)
                tifffile.imwrite(
                    handle,
                    data,
                    photometric="rgb" if colour else "minisblack",
                    compression="zlib",
                    metadata=tiff_metadata,
                )
            elif extension in DICOM_EXTENSIONS:
                write_dicom(handle, data, metadata["dicom"], metadata.get("derivation", "processed"))
            elif extension == ".npy":
                np.save(handle, data)
            else:
                np.savez_compressed(handle, **{metadata.get("npz_key", "arr_0"): data})
    except (OSError, ValueError) as exc:  # DicomError is a ValueError
        raise EnhanceKitError(f"cannot write volume {path}: {_reason(exc)}") from exc


def list_inputs(
    paths: Sequence[str | Path], *, volumes: bool = False, keep_unreadable: bool = False
) -> list[Path]:
    """Expand input paths: files are taken as given, folders contribute their image (or volume) files.

    Folder contents are filtered by extension (case-insensitive) and, for TIFF and DICOM, by content (see
    :func:`folder_contents`); hidden files, sub-folders and anything else (README, CSV...) are skipped. A TIFF
    or DICOM whose header cannot be read stops the listing, unless ``keep_unreadable`` (for callers that
    report failures per file and go on with the others): it is then listed, to fail when read. Each folder's
    files are sorted by name; the listing is not recursive.

    Raises:
        EnhanceKitError: a path does not exist, a header cannot be read, or nothing was found.
    """
    wanted = "volume" if volumes else "image"
    listed = expand_inputs(paths, keep_unreadable=keep_unreadable)
    found = [path for path, kind in listed if kind in (None, wanted, "unreadable")]
    if not found:
        raise nothing_found(f"{wanted} files", paths)
    return found


def expand_inputs(
    paths: Sequence[str | Path], *, keep_unreadable: bool = False
) -> list[tuple[Path, str | None]]:
    """Each input file with its kind: folders contribute their image and volume files with the kinds
    :func:`folder_contents` gives, files named directly come with None (taken as given, whatever they hold).
    An unreadable folder file stops the listing unless ``keep_unreadable`` (see :func:`list_inputs`).

    Raises:
        EnhanceKitError: a path does not exist, or (without ``keep_unreadable``) a header cannot be read.
    """
    listed: list[tuple[Path, str | None]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for entry, kind in folder_contents(path):
                if kind == "unreadable" and not keep_unreadable:
                    _content_kind(entry)  # raises, naming the file and the reason
                listed.append((entry, kind))
        elif path.is_file():
            listed.append((path, None))
        else:
            raise EnhanceKitError(f"input not found: {path}")
    return listed


def nothing_found(what: str, paths: Sequence[str | Path]) -> EnhanceKitError:
    """The error for a listing of ``paths`` that found no ``what``."""
    where = ", ".join(str(given) for given in paths) or "an empty path list"
    return EnhanceKitError(f"no {what} found in {where}")


def folder_contents(folder: Path) -> list[tuple[Path, str]]:
    """The image and volume files of ``folder``, sorted by name, each with its kind: ``"image"``, ``"volume"``
    or ``"unreadable"`` (a TIFF or DICOM whose header cannot be read, so its kind is unknown). DICOM objects
    that hold no image (presentation states, reports, a DICOMDIR index) are left out."""
    contents = []
    for entry in sorted(folder.iterdir()):
        # Hidden files include our own in-progress temporaries and macOS "._name" resource files.
        if entry.name.startswith(".") or not entry.is_file():
            continue
        extension = _format_extension(entry)
        if extension in _CONTENT_DECIDED:
            try:
                kind = _content_kind(entry)
            except EnhanceKitError:
                kind = "unreadable"
            if kind is None:
                continue
        elif extension in VOLUME_EXTENSIONS:
            kind = "volume"
        elif extension in IMAGE_EXTENSIONS:
            kind = "image"
        else:
            continue
        contents.append((entry, kind))
    return contents


def _content_kind(path: Path) -> str | None:
    """``"image"`` or ``"volume"`` for a TIFF or DICOM file by its header, None for a DICOM object that holds
    no image; raises :class:`EnhanceKitError` naming the file when its header cannot be read."""
    if _format_extension(path) not in DICOM_EXTENSIONS:
        return "volume" if is_volume_file(path) else "image"
    try:
        header = read_header(path)
        if not is_image_object(header):
            return None
        return "volume" if frames_in(header) > 1 else "image"
    except DicomError as exc:
        raise EnhanceKitError(f"cannot read {path}: {exc}") from exc


def pair_by_stem(inputs: list[Path], targets: list[Path]) -> list[tuple[Path, Path]]:
    """Pair each input with the target of the same file stem, in input order; extensions may differ.

    An input whose stem has no exact match may carry a low-resolution suffix, which is then ignored:
    ``babyx3``, ``baby_x3``, ``baby-X4``, ``baby_LR``, ``baby_LRBI``, ``baby_lowres`` all pair with ``baby``.
    When stems do not pair, the parts after each folder's common prefix are tried, if they pair every file
    one to one (``input_avg1_020_1`` with ``target_avg400_020_1``, as W2S names its captures).

    Raises:
        EnhanceKitError: an input or a target is left without a partner, or a pairing is ambiguous (two
            targets with one stem, or two inputs matching one target).
    """
    by_stem: dict[str, Path] = {}
    for target in targets:
        stem = file_stem(target)
        if stem in by_stem:
            raise EnhanceKitError(f"ambiguous targets: {by_stem[stem]} and {target} have the same name")
        by_stem[stem] = target
    pairs: list[tuple[Path, Path]] = []
    taken: dict[Path, Path] = {}
    lonely_inputs: list[Path] = []
    for source in inputs:
        stem = file_stem(source)
        target = by_stem.get(stem) or by_stem.get(_INPUT_SUFFIX.sub("", stem))
        if target is None:
            lonely_inputs.append(source)
            continue
        if target in taken:
            raise EnhanceKitError(f"ambiguous inputs: {taken[target]} and {source} both match {target}")
        taken[target] = source
        pairs.append((source, target))
    lonely_targets = [target for target in targets if target not in taken]
    if lonely_inputs or lonely_targets:
        by_suffix = _pair_by_suffix(inputs, targets)
        if by_suffix is not None:
            return by_suffix
        problems = []
        if lonely_inputs:
            problems.append(f"{len(lonely_inputs)} input(s) without a target ({_names(lonely_inputs)})")
        if lonely_targets:
            problems.append(f"{len(lonely_targets)} target(s) without an input ({_names(lonely_targets)})")
        raise EnhanceKitError("cannot pair inputs with targets: " + "; ".join(problems))
    return pairs


# --- helpers ------------------------------------------------------------------------------------------------


def _pair_by_suffix(inputs: list[Path], targets: list[Path]) -> list[tuple[Path, Path]] | None:
    """Pairs by what follows each folder's common name prefix (W2S: ``input_avg1_020_1`` with
    ``target_avg400_020_1``), when that pairs every file one to one; else None."""
    if len(inputs) != len(targets) or len(inputs) < 2:
        return None

    def suffixes(paths: list[Path]) -> list[str]:
        stems = [file_stem(p) for p in paths]
        return [stem[len(os.path.commonprefix(stems)) :] for stem in stems]

    by_suffix = dict(zip(suffixes(targets), targets, strict=True))
    pairs = [(source, by_suffix.get(key)) for source, key in zip(inputs, suffixes(inputs), strict=True)]
    if len(by_suffix) != len(targets) or any(target is None for _, target in pairs):
        return None
    return pairs  # type: ignore[return-value]


def _extension(path: Path) -> str:
    """Lower-case extension, with ``.nii.gz`` as a single extension."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def _is_ours(extension: str) -> bool:
    return extension in IMAGE_EXTENSIONS or extension in VOLUME_EXTENSIONS


def _dicom_style_name(extension: str) -> bool:
    """Whether a name could be a DICOM file's as scanners and PACS exports write them: no extension
    (``IM0001``) or a UID, whose last number reads as one (``1.2.840.113619.2.55.3.11``); not a backup such
    as ``IM0001.dcm.bak``."""
    return extension == "" or extension[1:].isdigit()


def _format_extension(path: Path) -> str:
    """The extension that decides how a file is read: its own, or ``.dcm`` for a DICOM file with a
    DICOM-style name (see :func:`_dicom_style_name`) and the DICOM preamble."""
    extension = _extension(path)
    return DICOM_EXTENSIONS[0] if _dicom_style_name(extension) and has_dicom_preamble(path) else extension


def is_dicom_file(path: str | Path) -> bool:
    """Whether ``path`` is read as DICOM: by its extension, or by its preamble for a DICOM-style name."""
    return _format_extension(Path(path)) in DICOM_EXTENSIONS


def _output_extension(path: Path, metadata: dict[str, Any]) -> str:
    """The format of an output: its extension's, or DICOM when a DICOM source's result keeps a DICOM-style
    name (as :func:`_format_extension` read it)."""
    extension = _extension(path)
    return DICOM_EXTENSIONS[0] if _dicom_style_name(extension) and "dicom" in metadata else extension


def _readable_extension(path: Path, kind: str, allowed: tuple[str, ...]) -> str:
    """The extension of an existing file of a supported kind, or the one-line error saying what is wrong."""
    extension = _format_extension(path)
    if extension not in allowed:
        raise _extension_error(f"read {kind}", path, allowed)
    if not path.is_file():
        raise EnhanceKitError(f"cannot read {kind} {path}: no such file")
    return extension


def _extension_error(action: str, path: Path, allowed: tuple[str, ...]) -> EnhanceKitError:
    return EnhanceKitError(
        f"cannot {action} {path}: unsupported extension '{_extension(path)}' (use {', '.join(allowed)})"
    )


def _reason(exc: BaseException) -> str:
    """A one-line description of ``exc`` for an error message (OSError without its path, which we name)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _names(paths: list[Path]) -> str:
    """The first few file names, for a one-line message."""
    names = ", ".join(path.name for path in paths[:_NAMES_SHOWN])
    return names + (f", ... {len(paths) - _NAMES_SHOWN} more" if len(paths) > _NAMES_SHOWN else "")


def _is_stacked_tiff(tif: tifffile.TiffFile) -> bool:
    """Whether the TIFF holds several series of one shape and dtype, to be stacked along a new first axis."""
    first = tif.series[0]
    others = tif.series[1:]
    return bool(others) and all(s.shape == first.shape and s.dtype == first.dtype for s in others)


def _is_volume_tiff(tif: tifffile.TiffFile) -> bool:
    # tifffile drops length-1 axes, so any axis besides rows (Y), columns (X) and samples (S) is a real one.
    return bool(set(tif.series[0].axes) - set("YXS")) or _is_stacked_tiff(tif)


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Yield a file that replaces ``path`` only once everything was written (removed on any failure)."""
    with staged_outputs() as stage, stage(path) as handle:
        yield handle


@contextmanager
def staged_outputs() -> Iterator[Callable[[Path], AbstractContextManager[BinaryIO]]]:
    """Yield ``stage``: ``with stage(path) as handle`` writes a temporary file that replaces ``path`` when the
    whole block is left without an error, together with every other staged file. A failure while writing
    leaves none of them (a stage that failed is dropped even if the caller went on); should a rename fail
    at the end, the files it had already put in place that did not exist before are removed again (files
    they replaced stay replaced).

    The slices of a DICOM series are written so: a failure mid-series leaves no part of it behind."""
    staged: list[tuple[Path, Path]] = []  # (temporary, destination), each written in full
    open_stages = True

    @contextmanager
    def stage(path: Path) -> Iterator[BinaryIO]:
        if not open_stages:
            raise RuntimeError("staged_outputs: stage() called after its block ended")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Hidden, random name in the same folder: os.replace must not cross file systems; listings skip it.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        # Opened before the try, so that a clash with another file of that name never deletes it.
        handle = open(temporary, "xb")  # noqa: SIM115 (closed by the with below)
        try:
            with handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        staged.append((temporary, path))

    placed: list[Path] = []  # destinations put in place that did not exist before
    try:
        yield stage
        open_stages = False
        for temporary, path in staged:
            existed = path.exists()
            os.replace(temporary, path)
            if not existed:
                placed.append(path)
    except BaseException:
        open_stages = False
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        raise


def _read_pillow_image(path: Path) -> tuple[np.ndarray, dict[str, Any], int]:
    """Samples (H x W [x C], uint8 / uint16 / float32 / bool), metadata and orientation, decoded by Pillow."""
    with Image.open(path) as image:
        # The raw mode of a PNG is only visible before loading, which clears the tile list.
        rawmode = image.tile[0][3] if image.format == "PNG" and image.tile else None
        image.load()
        if rawmode in _PNG16_RAWMODES:
            samples = _png16_samples(path, rawmode, np.asarray(image))
        else:
            samples = _pillow_samples(image)
        metadata: dict[str, Any] = {}
        if "dpi" in image.info:
            metadata["dpi"] = tuple(float(value) for value in image.info["dpi"])
        for key in ("icc_profile", "exif"):
            if image.info.get(key):
                metadata[key] = image.info[key]
        if image.mode in _CONVERTED_COLOUR_MODES:
            # The pixels were converted to RGB: the file's profile (e.g. CMYK) would mislabel them.
            metadata.pop("icc_profile", None)
        exif = image.getexif()
        orientation = int(exif.get(_ORIENTATION_TAG, 1))
        if orientation != 1 and "exif" in metadata:
            exif[_ORIENTATION_TAG] = 1
            metadata["exif"] = exif.tobytes()
    return samples, metadata, orientation


def _pillow_samples(image: Image.Image) -> np.ndarray:
    """The pixels of a loaded Pillow image as L / LA / RGB / RGBA uint8, or uint16 / float32 gray."""
    if image.mode in _PILLOW_DIRECT_MODES:
        return np.asarray(image).astype(np.uint16 if image.mode.startswith("I;16") else np.float32)
    if image.mode in _PILLOW_GRAY_MODES:
        target = "LA" if image.has_transparency_data else "L"
    elif image.mode in _PILLOW_COLOUR_MODES:
        target = "RGBA" if image.has_transparency_data else "RGB"
    else:
        raise ValueError(f"unsupported pixel mode {image.mode}")
    return np.asarray(image if image.mode == target else image.convert(target))


def _png16_samples(path: Path, rawmode: str, high_bytes: np.ndarray) -> np.ndarray:
    """Full 16-bit samples of a colour or gray+alpha PNG (see _PNG16_RAWMODES) from Pillow's 8-bit decode."""
    with Image.open(path) as image:
        image.tile = [(*image.tile[0][:3], _PNG16_RAWMODES[rawmode])]
        image.load()
        second = np.asarray(image).astype(np.uint16)
    if rawmode == "LA;16B":
        return (second[..., 0::2] << 8) | second[..., 1::2]
    return (high_bytes.astype(np.uint16) << 8) | second


def _read_tiff_image(path: Path) -> tuple[np.ndarray, dict[str, Any], int]:
    """Samples, metadata and orientation of a 2D TIFF: tifffile where it can, Pillow for the rest."""
    with tifffile.TiffFile(path) as tif:
        series, page = tif.series[0], tif.pages[0]
        if _is_volume_tiff(tif):
            raise EnhanceKitError(
                f"cannot read image {path}: it holds a volume ({len(tif.pages)} pages of {page.shape}); "
                "use it as a volume"
            )
        if not _tifffile_can_decode(page):
            # Palette, CMYK, inverted gray and LZW / JPEG compression (without imagecodecs) go through Pillow,
            # which decodes them but only to 8 bits for colour.
            if page.bitspersample > 8 and page.samplesperpixel > 1:
                raise EnhanceKitError(
                    f"cannot read image {path}: this {page.bitspersample}-bit colour TIFF "
                    f"({page.compression.name} compression, {page.photometric.name}) needs the optional "
                    "'imagecodecs' package; save it uncompressed or deflate-compressed"
                )
            return _read_pillow_image(path)
        samples = series.asarray()
        if "S" in series.axes:
            # Planar ("separate") files give samples first; images are H x W x C here.
            samples = np.moveaxis(samples, series.axes.index("S"), -1)
        metadata: dict[str, Any] = {}
        if "XResolution" in page.tags and page.resolutionunit in (2, 3):
            per_inch = 1.0 if page.resolutionunit == 2 else 2.54
            metadata["dpi"] = tuple(float(value) * per_inch for value in page.resolution)
        if page.iccprofile:
            metadata["icc_profile"] = bytes(page.iccprofile)
        orientation_tag = page.tags.get("Orientation")
        orientation = int(orientation_tag.value) if orientation_tag is not None else 1
    return samples, metadata, orientation


def _tifffile_can_decode(page: tifffile.TiffPage) -> bool:
    photometric_ok = page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
    # TIFF.DECOMPRESSORS lists the codecs available without the optional imagecodecs package.
    return photometric_ok and page.compression in tifffile.TIFF.DECOMPRESSORS


def _image_data(path: Path, samples: np.ndarray, metadata: dict[str, Any], orientation: int) -> ImageData:
    """Split decoded samples into colour and alpha, make them upright and convert the colour to float."""
    if samples.dtype == np.bool_:
        samples = samples.astype(np.uint8) * np.uint8(255)
    elif samples.dtype.kind == "f":
        samples = samples.astype(np.float32)
    samples = samples.astype(samples.dtype.newbyteorder("="), copy=False)
    if samples.dtype not in _BIT_DEPTHS:
        raise EnhanceKitError(f"cannot read image {path}: unsupported sample type {samples.dtype}")
    if samples.ndim == 2:
        samples = samples[..., np.newaxis]
    channels = samples.shape[2]
    if channels not in _MODES:
        raise EnhanceKitError(f"cannot read image {path}: unsupported channel count {channels}")
    if orientation in _ORIENTATIONS:
        samples = _ORIENTATIONS[orientation](samples)
    has_alpha = channels in (2, 4)
    colour = samples[..., : channels - 1] if has_alpha else samples
    pixels = to_float(np.ascontiguousarray(colour))
    if samples.dtype == np.float32:
        pixels = np.clip(pixels, 0.0, 1.0)
    alpha = np.ascontiguousarray(samples[..., -1]) if has_alpha else None
    return ImageData(pixels, alpha, _BIT_DEPTHS[samples.dtype], _MODES[channels], metadata)


_DICOM_NEEDS_SOURCE = (
    "a DICOM output is derived from a DICOM input (its patient and study header); write .png or .tif instead"
)


def _read_dicom_image(path: Path) -> ImageData:
    """A single-frame DICOM, its stored values mapped by the range its header declares."""
    try:
        stored, header = read_dicom(path)
    except DicomError as exc:
        raise EnhanceKitError(f"cannot read image {path}: {exc}") from exc
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        raise EnhanceKitError(f"cannot read image {path}: it is a multi-frame DICOM (a volume)")
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    if stored.ndim != 3 or stored.shape[2] not in (1, 3):
        raise EnhanceKitError(f"cannot read image {path}: unsupported pixel array of shape {stored.shape}")
    low, high = declared_range(header)
    pixels = np.clip((stored.astype(np.float32) - low) / np.float32(high - low), 0.0, 1.0)
    bit_depth = 8 if storage_dtype(header).itemsize == 1 else 16
    return ImageData(pixels, None, bit_depth, _MODES[stored.shape[2]], {"dicom": header})


def _write_dicom_image(
    path: Path, pixels: np.ndarray, alpha: np.ndarray | None, metadata: dict[str, Any]
) -> None:
    """``pixels`` in [0, 1] as a DICOM derived from ``metadata["dicom"]``, in its storage type and range."""
    if "dicom" not in metadata:
        raise EnhanceKitError(f"cannot write image {path}: {_DICOM_NEEDS_SOURCE}")
    if alpha is not None:
        raise EnhanceKitError(f"cannot write image {path}: DICOM stores no alpha channel")
    source = metadata["dicom"]
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    low, high = declared_range(source)
    values = np.clip(pixels, 0.0, 1.0).astype(np.float64) * (high - low) + low
    try:
        with atomic_output(path) as handle:
            write_dicom(handle, values, source, metadata.get("derivation", "processed"))
    except (OSError, DicomError) as exc:
        raise EnhanceKitError(f"cannot write image {path}: {_reason(exc)}") from exc


def _samples_to_write(pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int) -> np.ndarray:
    """H x W x C samples in the output dtype, alpha appended as the last channel."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"write_image expects H x W or H x W x C pixels with C = 1 or 3, got {pixels.shape}")
    if pixels.dtype.kind != "f":
        pixels = to_float(pixels)
    samples = from_float(pixels, bit_depth)
    if alpha is None:
        return samples
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[..., 0]
    if alpha.shape != samples.shape[:2]:
        raise ValueError(f"alpha of shape {alpha.shape} does not match pixels of shape {pixels.shape}")
    if alpha.dtype != _DTYPES[bit_depth]:
        alpha = from_float(to_float(alpha), bit_depth)
    return np.concatenate([samples, alpha[..., np.newaxis]], axis=2)


def _unsupported_output(extension: str, bit_depth: int, has_alpha: bool) -> str | None:
    """Why the format of ``extension`` cannot store this bit depth / alpha, or None if it can."""
    if extension in (".jpg", ".jpeg") and (bit_depth != 8 or has_alpha):
        return "JPEG stores only 8-bit images without alpha (use .png or .tif)"
    if extension == ".bmp" and (bit_depth != 8 or has_alpha):
        return "BMP output is 8-bit without alpha here (use .png or .tif)"
    if extension == ".png" and bit_depth == 32:
        return "PNG stores 8 or 16 bits, not float (use .tif)"
    return None


def _write_pillow_image(
    handle: BinaryIO, samples: np.ndarray, extension: str, metadata: dict[str, Any]
) -> None:
    """8-bit PNG, JPEG or BMP through Pillow."""
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options: dict[str, Any] = {}
    if "dpi" in metadata:
        options["dpi"] = tuple(metadata["dpi"])
    if extension == ".bmp":
        image.save(handle, format="BMP", **options)
        return
    for key in ("icc_profile", "exif"):
        if key in metadata:
            options[key] = metadata[key]
    if extension == ".png":
        image.save(handle, format="PNG", **options)
    else:
        # 4:4:4 chroma: enhanced images are judged on fine colour detail that 4:2:0 would blur.
        image.save(handle, format="JPEG", quality=_JPEG_QUALITY, subsampling=0, **options)


def _write_tiff_image(handle: BinaryIO, samples: np.ndarray, metadata: dict[str, Any]) -> None:
    channels = samples.shape[2]
    options: dict[str, Any] = {}
    if "dpi" in metadata:
        options.update(resolution=tuple(metadata["dpi"]), resolutionunit="INCH")
    if "icc_profile" in metadata:
        options["iccprofile"] = metadata["icc_profile"]
    tifffile.imwrite(
        handle,
        samples[..., 0] if channels == 1 else samples,
        photometric="rgb" if channels >= 3 else "minisblack",
        extrasamples=["unassalpha"] if channels in (2, 4) else None,
        compression="zlib",
        # No shaped-series description: a plain 2D TIFF is what other programs expect.
        metadata=None,
        **options,
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_png16(samples: np.ndarray, metadata: dict[str, Any]) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB, RGBA): Pillow cannot write 16-bit colour, so we encode it here."""
    height, width, channels = samples.shape
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8)
    # The "Up" filter (each byte minus the byte above, mod 256) is vectorisable and suits smooth images.
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), dtype=np.uint8))
    scanlines = np.hstack([np.full((height, 1), _PNG_FILTER_UP, dtype=np.uint8), filtered])
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if "dpi" in metadata:
        per_metre = [round(value / 0.0254) for value in metadata["dpi"]]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    if "icc_profile" in metadata:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(metadata["icc_profile"])))
    if "exif" in metadata:
        chunks.append(_png_chunk(b"eXIf", metadata["exif"].removeprefix(_EXIF_PREFIX)))
    compressed = zlib.compress(scanlines.tobytes())
    # Several IDAT chunks: a single chunk is limited to 2**31 - 1 bytes.
    for start in range(0, len(compressed), _PNG_IDAT_SIZE):
        chunks.append(_png_chunk(b"IDAT", compressed[start : start + _PNG_IDAT_SIZE]))
    chunks.append(_png_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)


def _read_tiff_volume(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    with tifffile.TiffFile(path) as tif:
        series, page = tif.series[0], tif.pages[0]
        stacked = _is_stacked_tiff(tif)
        shape = (len(tif.series), *series.shape) if stacked else series.shape
        axes = "I" + series.axes if stacked else series.axes
        if page.compression in tifffile.TIFF.DECOMPRESSORS:
            data = np.stack([each.asarray() for each in tif.series]) if stacked else series.asarray()
            return data, {"axes": axes}
        # LZW / JPEG stacks without imagecodecs: Pillow decodes gray pages losslessly, page by page.
        if page.samplesperpixel > 1:
            raise ValueError(
                f"{page.compression.name}-compressed multi-sample TIFF stacks need the optional "
                "'imagecodecs' package"
            )
    with Image.open(path) as image:
        pages = [np.asarray(frame) for frame in ImageSequence.Iterator(image)]
    return np.stack(pages).reshape(shape), {"axes": axes}


def _read_npz(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if len(keys) == 1:
            key = keys[0]
        elif "arr_0" in keys:
            key = "arr_0"
        else:
            raise ValueError(f"it holds several arrays ({', '.join(keys)}) and none is named arr_0")
        return archive[key], {"npz_key": key}


def data_range(voxels: np.ndarray) -> tuple[float, float]:
    """The minimum and maximum of the finite voxels (high = low + 1 when they are all equal or none is)."""
    finite = np.isfinite(voxels)
    values = voxels if finite.all() else voxels[finite]
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low, low + 1.0)


def _restore_dtype(voxels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Raw-unit voxels in ``dtype``: integers rounded and clipped to the dtype's range."""
    voxels = np.asarray(voxels)
    if dtype.kind in "iub" and not np.isfinite(voxels).all():
        raise ValueError(f"write_volume: voxels contain NaN or infinity, which {dtype} cannot store")
    if dtype.kind == "b":
        return voxels >= 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(voxels), info.min, info.max).astype(dtype)
    return voxels.astype(dtype)


def _has_scaling(header: nib.nifti1.Nifti1Header) -> bool:
    slope, inter = header.get_slope_inter()
    return slope not in (None, 1.0) or inter not in (None, 0.0)


def _nifti_bytes(
    data: np.ndarray, dtype: np.dtype, affine: np.ndarray | None, header: nib.nifti1.Nifti1Header | None
) -> bytes:
    """Uncompressed single-file NIfTI of ``data`` stored as ``dtype``, with the source's affine and header."""
    affine = np.eye(4) if affine is None else affine
    if header is not None:
        old_shape, new_shape = header.get_data_shape()[:3], data.shape[:3]
        if len(old_shape) == len(new_shape) == 3 and old_shape != new_shape:
            # New voxel i' covers old voxels around i = s * i' + (s - 1) / 2 with s = old / new size per axis,
            # which keeps the outer edges of the volume where they were.
            steps = np.array(old_shape, dtype=float) / np.array(new_shape, dtype=float)
            resample = np.eye(4)
            resample[:3, :3] = np.diag(steps)
            resample[:3, 3] = (steps - 1) / 2
            affine = affine @ resample
    image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    image = image_class(data, affine, header)
    image.header.set_data_dtype(dtype)
    return image.to_bytes()
