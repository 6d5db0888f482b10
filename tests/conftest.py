"""Shared fixtures: small real images shipped in tests/data (see the LICENSE.md files there), and a runner of
`enhancekit train` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"
SR_DATA = DATA / "sr"


def load_rgb(path: Path) -> np.ndarray:
    """An 8-bit image file as float64 in [0, 1], read with Pillow alone (independent of enhancekit.data)."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


@pytest.fixture
def butterfly() -> np.ndarray:
    return load_rgb(SR_DATA / "butterfly.png")


@pytest.fixture
def baby() -> np.ndarray:
    return load_rgb(SR_DATA / "baby.png")


@pytest.fixture
def train_cli() -> Callable[[Path, Path], subprocess.CompletedProcess]:
    """``train_cli(recipe, cwd)`` runs ``python -m enhancekit train recipe`` in a subprocess, one thread per
    process (DDP tests start several)."""

    def run(recipe: Path, cwd: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        return subprocess.run(
            [sys.executable, "-m", "enhancekit", "train", str(recipe)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=cwd,
        )

    return run


@pytest.fixture
def make_dicom() -> Callable[..., Path]:
    """``make_dicom(path, stored, photometric="MONOCHROME2", bits_stored=12)`` writes a digital X-ray DICOM
    (frames first for a multi-frame file) with pydicom alone, independent of enhancekit.data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def make(path: Path, stored: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12) -> Path:
        dataset = Dataset()
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
        dataset.SOPInstanceUID = generate_uid()
        dataset.StudyInstanceUID = generate_uid()
        dataset.SeriesInstanceUID = generate_uid()
        dataset.PatientName = "Test^Panoramic"
        dataset.PatientID = "EK-0001"
        dataset.Modality = "DX"
        dataset.ImageType = ["ORIGINAL", "PRIMARY"]
        dataset.ImagerPixelSpacing = [0.1, 0.1]
        dataset.set_pixel_data(stored, photometric_interpretation=photometric, bits_stored=bits_stored)
        dataset.save_as(path, enforce_file_format=True)
        return path

    return make


@pytest.fixture
def make_ct_dicom(make_dicom) -> Callable[..., Path]:
    """``make_ct_dicom(path, stored_int16, center, width)``: a CT slice, signed 16-bit, Hounsfield units =
    stored - 1024, with its own display window (pydicom alone)."""
    import pydicom

    def make(path: Path, stored: np.ndarray, center: float, width: float) -> Path:
        make_dicom(path, stored.astype(np.int16), bits_stored=16)
        dataset = pydicom.dcmread(path)
        dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        dataset.Modality = "CT"
        dataset.RescaleSlope, dataset.RescaleIntercept = 1, -1024
        dataset.WindowCenter, dataset.WindowWidth = center, width
        dataset.save_as(path)
        return path

    return make


@pytest.fixture
def make_ct_series() -> Callable[..., list[Path]]:
    """``make_ct_series(folder, stored, names, instance_numbers, positions=True)`` writes each slice of
    ``stored`` (int16, slices first) as a single-frame CT file of one series with pydicom alone, from the
    real ``CT_small.dcm`` header: slice ``k`` lies at z = 2.5 k mm and is saved as ``names[k]`` with Instance
    Number ``instance_numbers[k]``; ``positions=False`` leaves out Image Position / Orientation (Patient)."""
    import pydicom
    from pydicom.uid import generate_uid

    template = DATA / "dicom" / "CT_small.dcm"

    def make(
        folder: Path,
        stored: np.ndarray,
        names: list[str],
        instance_numbers: list[int],
        positions: bool = True,
    ) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        series = generate_uid()
        paths = []
        for index, (name, number) in enumerate(zip(names, instance_numbers, strict=True)):
            dataset = pydicom.dcmread(template)
            dataset.SeriesInstanceUID = series
            dataset.SOPInstanceUID = generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.InstanceNumber = number
            dataset.ImagePositionPatient = [-158.1, -179.0, 2.5 * index]
            if not positions:
                del dataset.ImagePositionPatient, dataset.ImageOrientationPatient
            dataset.set_pixel_data(stored[index].astype(np.int16), "MONOCHROME2", bits_stored=16)
            dataset.save_as(folder / name)
            paths.append(folder / name)
        return paths

    return make


@pytest.fixture
def ct_head_slices() -> np.ndarray:
    """Six slices (first axis) of the real head CT crop, signed 16-bit stored values (HU = stored - 1024)."""
    import nibabel as nib

    data = np.asarray(nib.load(DATA / "volumes" / "CT_pitch.nii.gz").dataobj)[40:72, 60:100, 20:26]
    return np.moveaxis(data, -1, 0).astype(np.int16) * 8


@dataclass
class CTSeries:
    folder: Path
    stored: np.ndarray
    names: list[str]
    instance_numbers: list[int]


@pytest.fixture
def ct_series(tmp_path, make_ct_series, ct_head_slices) -> CTSeries:
    """The six head CT slices as a series in ``tmp_path / "ct"``, whose file names and Instance Numbers do not
    follow the slices (slice ``k`` at z = 2.5 k mm is ``names[k]``)."""
    names = ["IM0004.dcm", "IM0001.dcm", "IM0006.dcm", "IM0002.dcm", "IM0005.dcm", "IM0003.dcm"]
    numbers = [3, 6, 1, 5, 2, 4]
    make_ct_series(tmp_path / "ct", ct_head_slices, names, numbers)
    return CTSeries(tmp_path / "ct", ct_head_slices, names, numbers)
