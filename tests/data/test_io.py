"""Tests for enhancekit.data.io: image and volume round trips, errors, atomic writes, listing and pairing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from enhancekit.data.io import (
    ImageData,
    VolumeData,
    file_stem,
    from_float,
    is_volume_file,
    list_inputs,
    pair_by_stem,
    read_image,
    read_volume,
    staged_outputs,
    to_float,
    write_image,
    write_volume,
)
from enhancekit.errors import EnhanceKitError

VOLUMES = Path(__file__).parent / "volumes"
CHANNELS = {"L": (1, False), "LA": (1, True), "RGB": (3, False), "RGBA": (3, True)}
DTYPES = {8: np.uint8, 16: np.uint16}


def random_samples(rng: np.random.Generator, shape: tuple[int, ...], bit_depth: int) -> np.ndarray:
    if bit_depth == 32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, 2**bit_depth, shape).astype(DTYPES[bit_depth])


def quantised(image: ImageData) -> np.ndarray:
    """The pixels of ``image`` back in the file's sample values."""
    return from_float(image.pixels, image.bit_depth)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16_all_filters(samples: np.ndarray) -> bytes:
    """A 16-bit PNG whose rows cycle through all five filter types, as files from other encoders may do.

    Written independently of enhancekit's encoder (which uses one filter), to check the decoder on its own.
    """
    height, width, channels = samples.shape
    raw = samples.astype(">u2").reshape(height, -1).view(np.uint8).astype(np.int32)
    step = 2 * channels
    above = np.vstack([np.zeros_like(raw[:1]), raw[:-1]])
    left = np.hstack([np.zeros_like(raw[:, :step]), raw[:, :-step]])
    upper_left = np.hstack([np.zeros_like(above[:, :step]), above[:, :-step]])
    estimate = left + above - upper_left
    to_left, to_above, to_corner = (np.abs(estimate - v) for v in (left, above, upper_left))
    paeth = np.where(
        (to_left <= to_above) & (to_left <= to_corner),
        left,
        np.where(to_above <= to_corner, above, upper_left),
    )
    predictions = [np.zeros_like(raw), left, above, (left + above) // 2, paeth]
    lines = b"".join(
        bytes([y % 5]) + ((raw[y] - predictions[y % 5][y]) % 256).astype(np.uint8).tobytes()
        for y in range(height)
    )
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(lines))
        + png_chunk(b"IEND", b"")
    )


# --- sample conversion --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_float_conversion_is_exact_for_every_integer_value(bit_depth: int) -> None:
    values = np.arange(2**bit_depth).astype(DTYPES[bit_depth])
    as_float = to_float(values)
    assert as_float.dtype == np.float32
    assert as_float.min() == 0.0 and as_float.max() == 1.0
    np.testing.assert_array_equal(from_float(as_float, bit_depth), values)


def test_from_float_clips_and_rejects_nan() -> None:
    np.testing.assert_array_equal(from_float(np.array([-0.5, 0.5, 1.5]), 8), [0, 128, 255])
    assert from_float(np.array([2.0]), 32).tolist() == [1.0]
    with pytest.raises(ValueError, match="NaN"):
        from_float(np.array([np.nan]), 8)
    with pytest.raises(ValueError, match="bit_depth"):
        from_float(np.zeros(2), 12)
    with pytest.raises(TypeError):
        to_float(np.zeros(2, dtype=np.int32))


# --- image round trips --------------------------------------------------------------------------------------

LOSSLESS_CASES = [
    (extension, bit_depth, mode)
    for extension, depths in ((".png", (8, 16)), (".tif", (8, 16, 32)), (".tiff", (16,)))
    for bit_depth in depths
    for mode in CHANNELS
] + [(".bmp", 8, "L"), (".bmp", 8, "RGB")]


@pytest.mark.parametrize(("extension", "bit_depth", "mode"), LOSSLESS_CASES)
def test_lossless_round_trip(tmp_path: Path, extension: str, bit_depth: int, mode: str) -> None:
    rng = np.random.default_rng(bit_depth)
    channels, has_alpha = CHANNELS[mode]
    samples = random_samples(rng, (13, 17, channels), bit_depth)
    alpha = random_samples(rng, (13, 17), bit_depth) if has_alpha else None
    path = tmp_path / f"image{extension}"
    pixels = samples if bit_depth == 32 else to_float(samples)
    write_image(path, pixels, bit_depth=bit_depth, alpha=alpha)

    image = read_image(path)
    assert (image.mode, image.bit_depth) == (mode, bit_depth)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (13, 17, channels)
    np.testing.assert_array_equal(quantised(image), samples)
    if has_alpha:
        assert image.alpha.dtype == alpha.dtype
        np.testing.assert_array_equal(image.alpha, alpha)
    else:
        assert image.alpha is None


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_round_trip_is_close(tmp_path: Path, mode: str) -> None:
    channels = CHANNELS[mode][0]
    ramp = np.linspace(0, 1, 48, dtype=np.float32)
    pixels = np.stack([np.outer(ramp, ramp ** (c + 1)) for c in range(channels)], axis=2)
    for extension in (".jpg", ".jpeg"):
        write_image(tmp_path / f"photo{extension}", pixels)
        image = read_image(tmp_path / f"photo{extension}")
        assert (image.mode, image.bit_depth, image.alpha) == (mode, 8, None)
        assert np.abs(image.pixels - pixels).max() < 0.03


@pytest.mark.parametrize(("extension", "channels"), [(".png", 1), (".png", 3), (".tif", 1), (".tif", 3)])
def test_16_bit_precision_is_kept(tmp_path: Path, extension: str, channels: int) -> None:
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    # Each channel a different permutation, so no channel can be confused with another.
    samples = np.stack([np.roll(ramp, 97 * c) for c in range(channels)], axis=2)
    path = tmp_path / f"ramp{extension}"
    write_image(path, to_float(samples), bit_depth=16)
    image = read_image(path)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(quantised(image), samples)


def test_16_bit_png_is_readable_by_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gray = random_samples(rng, (9, 11), 16)
    write_image(tmp_path / "gray.png", to_float(gray), bit_depth=16)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "gray.png")), gray)
    colour = random_samples(rng, (9, 11, 3), 16)
    write_image(tmp_path / "colour.png", to_float(colour), bit_depth=16)
    # Pillow has no 16-bit colour mode and keeps the high bytes: enough to validate the encoding.
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "colour.png")), colour >> 8)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_from_another_encoder(tmp_path: Path, channels: int) -> None:
    samples = random_samples(np.random.default_rng(channels), (11, 7, channels), 16)
    path = tmp_path / "other.png"
    path.write_bytes(png16_all_filters(samples))
    image = read_image(path)
    assert image.bit_depth == 16 and image.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    colour = samples[..., : channels - 1] if channels in (2, 4) else samples
    np.testing.assert_array_equal(quantised(image), colour)
    if channels in (2, 4):
        np.testing.assert_array_equal(image.alpha, samples[..., -1])


def test_palette_one_bit_and_colour_key_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    palette = Image.fromarray(rgb).quantize(colors=16)
    palette.save(tmp_path / "palette.png")
    image = read_image(tmp_path / "palette.png")
    assert (image.mode, image.bit_depth) == ("RGB", 8)
    np.testing.assert_array_equal(quantised(image), np.asarray(palette.convert("RGB")))

    palette.save(tmp_path / "transparent.png", transparency=0)
    image = read_image(tmp_path / "transparent.png")
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(image.alpha, np.where(np.asarray(palette) == 0, 0, 255))

    Image.fromarray(rgb[..., 0] > 127).save(tmp_path / "bits.png")
    image = read_image(tmp_path / "bits.png")
    assert image.mode == "L"
    np.testing.assert_array_equal(quantised(image)[..., 0], np.where(rgb[..., 0] > 127, 255, 0))

    Image.fromarray(rgb[..., 1]).save(tmp_path / "key.png", transparency=int(rgb[0, 0, 1]))
    image = read_image(tmp_path / "key.png")
    assert image.mode == "LA"
    np.testing.assert_array_equal(image.alpha, np.where(rgb[..., 1] == rgb[0, 0, 1], 0, 255))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    samples = np.random.default_rng(orientation).integers(0, 256, (3, 5, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "enhancekit-test"
    Image.fromarray(samples).save(tmp_path / "photo.png", exif=exif.tobytes())
    image = read_image(tmp_path / "photo.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "photo.png")))
    np.testing.assert_array_equal(quantised(image), expected)
    written = Image.Exif()
    written.load(image.metadata["exif"])
    assert written[0x0112] == 1 and written[0x010F] == "enhancekit-test"


def test_orientation_of_16_bit_png_and_tiff(tmp_path: Path) -> None:
    samples = random_samples(np.random.default_rng(3), (4, 6, 3), 16)
    exif = Image.Exif()
    exif[0x0112] = 6
    write_image(tmp_path / "rotated.png", to_float(samples), bit_depth=16, metadata={"exif": exif.tobytes()})
    np.testing.assert_array_equal(quantised(read_image(tmp_path / "rotated.png")), np.rot90(samples, -1))
    tifffile.imwrite(
        tmp_path / "rotated.tif", samples, photometric="rgb", extratags=[(274, "H", 1, 8, False)]
    )
    np.testing.assert_array_equal(quantised(read_image(tmp_path / "rotated.tif")), np.rot90(samples))


@pytest.mark.parametrize(("extension", "bit_depth"), [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 16)])
def test_metadata_is_passed_through(tmp_path: Path, extension: str, bit_depth: int) -> None:
    exif = Image.Exif()
    exif[0x010F] = "enhancekit-test"
    metadata = {"dpi": (300.0, 150.0), "icc_profile": b"not a real profile" * 8, "exif": exif.tobytes()}
    path = tmp_path / f"meta{extension}"
    write_image(path, np.full((4, 5, 3), 0.5, dtype=np.float32), bit_depth=bit_depth, metadata=metadata)
    read_back = read_image(path).metadata
    # PNG stores whole pixels per metre, so dpi comes back within about 0.02.
    assert read_back["dpi"] == pytest.approx((300.0, 150.0), abs=0.05)
    assert read_back["icc_profile"] == metadata["icc_profile"]
    if extension != ".tif":
        assert read_back["exif"] == exif.tobytes()


def test_a_converted_cmyk_image_drops_its_cmyk_profile(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "print.jpg", icc_profile=b"CMYK profile" * 12)
    image = read_image(tmp_path / "print.jpg")
    assert image.pixels.shape == (6, 8, 3)
    assert "icc_profile" not in image.metadata
    write_image(tmp_path / "out.png", image.pixels, metadata=image.metadata)
    with Image.open(tmp_path / "out.png") as written:
        assert "icc_profile" not in written.info


def test_alpha_is_rescaled_exactly_between_bit_depths(tmp_path: Path) -> None:
    alpha8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pixels = np.zeros((16, 16), dtype=np.float32)
    write_image(tmp_path / "a16.png", pixels, bit_depth=16, alpha=alpha8)
    alpha16 = read_image(tmp_path / "a16.png").alpha
    np.testing.assert_array_equal(alpha16, alpha8.astype(np.uint16) * 257)
    write_image(tmp_path / "a8.png", pixels, alpha=alpha16)
    np.testing.assert_array_equal(read_image(tmp_path / "a8.png").alpha, alpha8)


def test_write_accepts_2d_and_integer_pixels(tmp_path: Path) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    write_image(tmp_path / "gray.png", gray)
    image = read_image(tmp_path / "gray.png")
    assert image.pixels.shape == (4, 5, 1)
    np.testing.assert_array_equal(quantised(image)[..., 0], gray)


@pytest.mark.parametrize(
    ("name", "bit_depth", "alpha", "message"),
    [
        ("out.jpg", 16, False, "JPEG"),
        ("out.jpeg", 8, True, "JPEG"),
        ("out.bmp", 16, False, "BMP"),
        ("out.bmp", 8, True, "BMP"),
        ("out.png", 32, False, "PNG"),
        ("out.gif", 8, False, "unsupported extension"),
    ],
)
def test_write_rejects_what_the_format_cannot_store(
    tmp_path: Path, name: str, bit_depth: int, alpha: bool, message: str
) -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.float32)
    with pytest.raises(EnhanceKitError, match=message) as error:
        write_image(
            tmp_path / name, pixels, bit_depth=bit_depth, alpha=np.zeros((2, 2), np.uint8) if alpha else None
        )
    assert str(tmp_path / name) in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="C = 1 or 3"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="alpha"):
        write_image(
            tmp_path / "x.png", np.zeros((2, 2, 3), dtype=np.float32), alpha=np.zeros((3, 3), np.uint8)
        )


# --- reading errors -----------------------------------------------------------------------------------------


def one_line_error(path: Path) -> str:
    with pytest.raises(EnhanceKitError) as error:
        read_image(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_corrupt_and_non_image_files(tmp_path: Path) -> None:
    write_image(tmp_path / "good.png", np.random.default_rng(4).random((40, 40, 3)))
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    assert "cannot read image" in one_line_error(tmp_path / "truncated.png")
    (tmp_path / "text.png").write_text("this is not an image\n")
    one_line_error(tmp_path / "text.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    one_line_error(tmp_path / "empty.jpg")

    write_image(tmp_path / "good.jpg", np.random.default_rng(5).random((40, 40, 3)))
    jpeg = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    one_line_error(tmp_path / "truncated.jpg")

    write_image(tmp_path / "good.tif", np.random.default_rng(6).random((40, 40, 3)), bit_depth=16)
    tiff = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "truncated.tif").write_bytes(tiff[:200])
    one_line_error(tmp_path / "truncated.tif")

    assert "no such file" in one_line_error(tmp_path / "missing.png")
    assert "unsupported extension" in one_line_error(tmp_path / "notes.txt")


def test_tiff_compressed_with_lzw_goes_through_pillow(tmp_path: Path) -> None:
    samples = np.random.default_rng(7).integers(0, 256, (10, 12, 3)).astype(np.uint8)
    Image.fromarray(samples).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(quantised(read_image(tmp_path / "lzw.tif")), samples)

    # A 16-bit colour TIFF tagged as LZW: Pillow would drop to 8 bits, so it must be refused clearly.
    path = tmp_path / "lzw16.tif"
    tifffile.imwrite(path, random_samples(np.random.default_rng(8), (4, 5, 3), 16), photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags["Compression"].valueoffset
    data = bytearray(path.read_bytes())
    data[offset : offset + 2] = struct.pack("<H", 5)
    path.write_bytes(bytes(data))
    assert "imagecodecs" in one_line_error(path)


def test_planar_and_one_bit_tiff(tmp_path: Path) -> None:
    samples = np.random.default_rng(14).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    planes = np.moveaxis(samples, -1, 0)
    tifffile.imwrite(
        tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate", metadata=None
    )
    image = read_image(tmp_path / "planar.tif")
    assert image.mode == "RGB"
    np.testing.assert_array_equal(quantised(image), samples)

    bits = samples[..., 0] > 30000
    Image.fromarray(bits).save(tmp_path / "bits.tif")
    image = read_image(tmp_path / "bits.tif")
    assert (image.mode, image.bit_depth) == ("L", 8)
    np.testing.assert_array_equal(quantised(image)[..., 0], np.where(bits, 255, 0))


def test_read_image_refuses_a_volume_tiff(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    assert "volume" in one_line_error(tmp_path / "stack.tif")


# --- atomic writes ------------------------------------------------------------------------------------------


def test_write_creates_folders_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.png"
    write_image(target, np.zeros((3, 3, 3), dtype=np.float32))
    write_image(target, np.ones((3, 3, 3), dtype=np.float32))
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]
    assert quantised(read_image(target)).min() == 255


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failing_write_keeps_the_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    target = tmp_path / "out.png"
    write_image(target, np.zeros((3, 3, 3), dtype=np.float32))
    before = target.read_bytes()

    def failing_save(self: Image.Image, handle, *args, **kwargs) -> None:
        handle.write(b"half a file")
        raise failure

    monkeypatch.setattr(Image.Image, "save", failing_save)
    expected = EnhanceKitError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as error:
        write_image(target, np.ones((3, 3, 3), dtype=np.float32))
    if expected is EnhanceKitError:
        assert str(error.value) == f"cannot write image {target}: No space left on device"
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failing_volume_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_imwrite(handle, *args, **kwargs) -> None:
        handle.write(b"II*\x00")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tifffile, "imwrite", failing_imwrite)
    with pytest.raises(EnhanceKitError, match="cannot write volume"):
        write_volume(tmp_path / "stack.tif", np.zeros((2, 3, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_staged_outputs_replace_together_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"old")
    with staged_outputs() as stage:
        for name in ("a", "b"):
            with stage(tmp_path / name) as handle:
                handle.write(name.encode())
        # Nothing is in place before the block ends.
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["b"]
        assert (tmp_path / "b").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "b").read_bytes() == b"b"


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_staged_outputs_failing_leave_nothing(tmp_path: Path, failure: BaseException) -> None:
    with pytest.raises(type(failure)), staged_outputs() as stage:
        with stage(tmp_path / "a") as handle:
            handle.write(b"a")
        with stage(tmp_path / "b") as handle:
            handle.write(b"half")
            raise failure
    assert list(tmp_path.iterdir()) == []


def test_a_stage_failing_is_dropped_even_when_the_caller_goes_on(tmp_path: Path) -> None:
    with staged_outputs() as stage:
        with stage(tmp_path / "kept") as handle:
            handle.write(b"kept")
        try:
            with stage(tmp_path / "dropped") as handle:
                raise ValueError("bad slice")
        except ValueError:
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


def test_a_rename_failing_removes_what_it_had_put_in_place(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError), staged_outputs() as stage:
        for name in ("a", "b", "c"):
            with stage(tmp_path / name) as handle:
                handle.write(name.encode())
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


# --- listing and pairing ------------------------------------------------------------------------------------


def test_file_stem() -> None:
    assert file_stem("a/brain.nii.gz") == "brain"
    assert file_stem("a/BRAIN.NII.GZ") == "BRAIN"
    assert file_stem("x/baby.x3.png") == "baby.x3"
    assert file_stem("noext") == "noext"
    # DICOM files named by UID: the last part is not an extension, or every slice would share one stem.
    assert file_stem("exam/1.2.840.113619.2.55.3.11") == "1.2.840.113619.2.55.3.11"
    uid_names = [Path(f"1.2.840.113619.2.55.3.{k}") for k in (10, 11, 12)]
    assert pair_by_stem(uid_names, uid_names[::-1]) == list(zip(uid_names, uid_names, strict=True))


def test_list_inputs_takes_images_from_folders(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.float32)
    for name in ("b.png", "a.JPG", "c.tif", ".hidden.png", "sub/d.png"):
        write_image(tmp_path / name, pixels)
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    np.save(tmp_path / "volume.npy", np.zeros((2, 2, 2)))
    (tmp_path / "README.md").write_text("readme")
    (tmp_path / "notes.txt").write_text("notes")
    loose = tmp_path / "sub" / "d.png"

    assert [p.name for p in list_inputs([tmp_path])] == ["a.JPG", "b.png", "c.tif"]
    assert [p.name for p in list_inputs([tmp_path, str(loose)])] == ["a.JPG", "b.png", "c.tif", "d.png"]
    assert [p.name for p in list_inputs([tmp_path], volumes=True)] == ["stack.tif", "volume.npy"]
    # A file named directly is taken as it is, whatever its extension.
    assert list_inputs([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]


def test_list_inputs_errors(tmp_path: Path) -> None:
    with pytest.raises(EnhanceKitError, match="input not found"):
        list_inputs([tmp_path / "missing"])
    (tmp_path / "README.md").write_text("readme")
    with pytest.raises(EnhanceKitError, match=r"no image files found in .*"):
        list_inputs([tmp_path])
    with pytest.raises(EnhanceKitError, match="no volume files found"):
        list_inputs([tmp_path], volumes=True)


def test_an_unreadable_header_stops_a_listing_unless_kept_for_per_file_reports(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.tif").write_bytes(b"not a tiff")
    with pytest.raises(EnhanceKitError, match=r"cannot read .*b\.tif"):
        list_inputs([tmp_path])
    assert [p.name for p in list_inputs([tmp_path], keep_unreadable=True)] == ["a.png", "b.tif"]
    assert [p.name for p in list_inputs([tmp_path], volumes=True, keep_unreadable=True)] == ["b.tif"]


def test_is_volume_file(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((4, 5, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    assert not is_volume_file(tmp_path / "rgb.tif")
    assert is_volume_file(tmp_path / "stack.tif")
    assert is_volume_file("x.nii.gz") and is_volume_file("x.npz")
    assert not is_volume_file("x.png")


def test_pair_by_stem_with_sr_suffixes() -> None:
    targets = [Path(f"hr/{name}.png") for name in ("baby", "bird", "head", "woman", "zebra", "img_7", "0801")]
    inputs = [
        Path("lr/babyx3.png"),
        Path("lr/bird_x3.png"),
        Path("lr/head_LR.bmp"),
        Path("lr/woman-LRBI.png"),
        Path("lr/zebraX4.tif"),
        Path("lr/img_7_lowres.png"),
        Path("lr/0801x4.png"),
    ]
    pairs = pair_by_stem(inputs, targets)
    assert pairs == list(zip(inputs, targets, strict=True))


def test_pair_by_stem_falls_back_to_suffixes_after_each_folders_prefix() -> None:
    # W2S's naming: one capture vs the mean of 400, listed in different orders.
    inputs = [Path(f"noisy/input_avg1_{k}.tif") for k in ("020_1", "031_2", "044_0")]
    targets = [Path(f"clean/target_avg400_{k}.tif") for k in ("044_0", "020_1", "031_2")]
    assert pair_by_stem(inputs, targets) == [
        (inputs[0], targets[1]),
        (inputs[1], targets[2]),
        (inputs[2], targets[0]),
    ]
    # Suffixes that do not pair one to one leave the error in place.
    with pytest.raises(EnhanceKitError, match="cannot pair"):
        pair_by_stem(inputs, [Path("clean/a_1.tif"), Path("clean/a_2.tif"), Path("clean/a_3.tif")])


def test_pair_by_stem_prefers_an_exact_match_and_reports_mismatches() -> None:
    assert pair_by_stem([Path("box2.png")], [Path("box2.png")]) == [(Path("box2.png"), Path("box2.png"))]
    with pytest.raises(EnhanceKitError) as error:
        pair_by_stem(
            [Path("babyx2.png"), Path("lenax2.png")] + [Path(f"n{i}.png") for i in range(7)],
            [Path("baby.png"), Path("bird.png")],
        )
    message = str(error.value)
    assert "\n" not in message
    assert "8 input(s) without a target (lenax2.png, n0.png, n1.png, n2.png, n3.png, ... 3 more)" in message
    assert "1 target(s) without an input (bird.png)" in message
    with pytest.raises(EnhanceKitError, match="ambiguous inputs"):
        pair_by_stem([Path("baby.png"), Path("babyx2.png")], [Path("baby.png")])
    with pytest.raises(EnhanceKitError, match="ambiguous targets"):
        pair_by_stem([Path("baby.png")], [Path("baby.png"), Path("baby.tif")])


# --- volumes ------------------------------------------------------------------------------------------------


def oblique_affine() -> np.ndarray:
    angle = 0.3
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 2.5])
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    return affine


@pytest.mark.parametrize("extension", [".nii", ".nii.gz"])
def test_nifti_round_trip_keeps_shape_affine_and_dtype(tmp_path: Path, extension: str) -> None:
    data = np.random.default_rng(9).integers(-1000, 3000, (5, 6, 7)).astype(np.int16)
    source = tmp_path / f"source{extension}"
    nib.save(nib.Nifti1Image(data, oblique_affine()), source)
    volume = read_volume(source)
    assert volume.voxels.dtype == np.float32 and volume.voxels.shape == (5, 6, 7)
    assert volume.dtype == np.int16
    assert volume.value_range == (float(data.min()), float(data.max()))
    np.testing.assert_array_equal(volume.voxels, data)

    write_volume(tmp_path / f"copy{extension}", volume)
    copy = nib.load(tmp_path / f"copy{extension}")
    assert copy.get_data_dtype() == np.int16
    np.testing.assert_array_equal(copy.affine, nib.load(source).affine)
    np.testing.assert_array_equal(np.asarray(copy.dataobj), data)
    assert copy.header.get_zooms() == nib.load(source).header.get_zooms()


def test_real_nifti_round_trip_is_exact(tmp_path: Path) -> None:
    source = VOLUMES / "CT_pitch.nii.gz"
    volume = read_volume(source)
    assert volume.voxels.shape == (175, 248, 58) and volume.dtype == np.uint8
    write_volume(tmp_path / "copy.nii.gz", volume)
    original, copy = nib.load(source), nib.load(tmp_path / "copy.nii.gz")
    assert copy.header.binaryblock == original.header.binaryblock
    np.testing.assert_array_equal(copy.affine, original.affine)
    np.testing.assert_array_equal(np.asarray(copy.dataobj), np.asarray(original.dataobj))


def test_normalised_volume_is_written_back_in_the_original_dtype(tmp_path: Path) -> None:
    data = np.arange(-50, 70, dtype=np.int16).reshape(4, 5, 6)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "in.nii.gz")
    volume = read_volume(tmp_path / "in.nii.gz")
    normal = volume.normalized()
    assert normal.dtype == np.float32 and normal.min() == 0.0 and normal.max() == 1.0
    # Small model-like changes are rounded to the integer grid; out-of-range values are clipped.
    processed = normal + 0.1 / 119
    processed[0, 0, 0] = 5.0
    write_volume(tmp_path / "out.nii.gz", volume.from_normalized(processed))
    written = np.asarray(nib.load(tmp_path / "out.nii.gz").dataobj)
    assert written.dtype == np.int16
    expected = data.copy()
    expected[0, 0, 0] = -50 + 5 * 119
    np.testing.assert_array_equal(written, expected)


def test_constant_volume_normalises_without_dividing_by_zero() -> None:
    volume = VolumeData(np.full((2, 2, 2), 7.0, np.float32), np.dtype(np.uint8), (7.0, 8.0))
    assert volume.normalized().max() == 0.0
    assert volume.from_normalized(volume.normalized()).voxels.max() == 7.0


def test_array_written_like_a_volume_and_integer_clipping(tmp_path: Path) -> None:
    data = np.zeros((3, 4, 5), dtype=np.uint8)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "in.nii")
    like = read_volume(tmp_path / "in.nii")
    result = np.full((3, 4, 5), 2.6, dtype=np.float32)
    result[0, 0, 0], result[1, 1, 1] = -20.0, 900.0
    write_volume(tmp_path / "out.nii", result, like=like)
    written = nib.load(tmp_path / "out.nii")
    assert written.get_data_dtype() == np.uint8
    values = np.asarray(written.dataobj)
    assert (values[0, 0, 0], values[1, 1, 1], values[2, 2, 2]) == (0, 255, 3)
    with pytest.raises(ValueError, match="like"):
        write_volume(tmp_path / "bad.nii", like, like=like)
    with pytest.raises(ValueError, match="NaN"):
        write_volume(tmp_path / "bad.nii", np.full((3, 4, 5), np.nan, np.float32), like=like)


def test_super_resolved_nifti_keeps_its_physical_extent(tmp_path: Path) -> None:
    affine = oblique_affine()
    nib.save(nib.Nifti1Image(np.zeros((4, 6, 5), np.int16), affine), tmp_path / "lr.nii.gz")
    like = read_volume(tmp_path / "lr.nii.gz")
    write_volume(tmp_path / "sr.nii.gz", np.zeros((8, 12, 10), np.float32), like=like)
    sr = nib.load(tmp_path / "sr.nii.gz")
    assert sr.shape == (8, 12, 10)
    np.testing.assert_allclose(
        sr.header.get_zooms(), np.array(nib.load(tmp_path / "lr.nii.gz").header.get_zooms()) / 2
    )
    # The outer corner of the first voxel (index -0.5) stays at the same world position.
    corner = np.array([-0.5, -0.5, -0.5, 1.0])
    np.testing.assert_allclose(sr.affine @ corner, affine @ corner, atol=1e-5)


def test_scaled_nifti_keeps_physical_values(tmp_path: Path) -> None:
    raw = np.arange(0, 240, 4, dtype=np.uint8).reshape(3, 4, 5)
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(6.5, -20.0)
    nib.save(image, tmp_path / "scaled.nii")
    physical = raw * 6.5 - 20.0
    volume = read_volume(tmp_path / "scaled.nii")
    assert volume.dtype == np.uint8
    np.testing.assert_allclose(volume.voxels, physical)
    # Values far beyond uint8: the copy must be re-scaled, not clipped at 255.
    write_volume(tmp_path / "copy.nii", volume.voxels * 1.5, like=volume)
    copy = nib.load(tmp_path / "copy.nii")
    assert copy.get_data_dtype() == np.uint8
    step = (physical.max() * 1.5 - physical.min() * 1.5) / 255
    np.testing.assert_allclose(copy.get_fdata(), physical * 1.5, atol=step)


def test_4d_nifti_stays_4d(tmp_path: Path) -> None:
    data = np.random.default_rng(10).random((3, 4, 5, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "series.nii.gz")
    volume = read_volume(tmp_path / "series.nii.gz")
    assert volume.voxels.shape == (3, 4, 5, 2) and volume.dtype == np.float32
    write_volume(tmp_path / "mean.nii.gz", volume.voxels.mean(axis=3), like=volume)
    assert nib.load(tmp_path / "mean.nii.gz").shape == (3, 4, 5)


def test_multipage_tiff_volume(tmp_path: Path) -> None:
    data = np.random.default_rng(11).integers(0, 65536, (6, 7, 8)).astype(np.uint16)
    for index, page in enumerate(data):
        tifffile.imwrite(tmp_path / "stack.tif", page, append=index > 0, photometric="minisblack")
    assert is_volume_file(tmp_path / "stack.tif")
    volume = read_volume(tmp_path / "stack.tif")
    assert volume.dtype == np.uint16 and volume.affine is None
    np.testing.assert_array_equal(volume.voxels, data)
    write_volume(tmp_path / "copy.tiff", volume)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "copy.tiff"), data)
    assert read_volume(tmp_path / "copy.tiff").metadata["axes"] == volume.metadata["axes"]


def test_lzw_tiff_stack_goes_through_pillow(tmp_path: Path) -> None:
    data = np.random.default_rng(12).integers(0, 256, (3, 5, 6)).astype(np.uint8)
    pages = [Image.fromarray(page) for page in data]
    pages[0].save(tmp_path / "lzw.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    np.testing.assert_array_equal(read_volume(tmp_path / "lzw.tif").voxels, data)


def test_npy_and_npz_volumes(tmp_path: Path) -> None:
    data = np.random.default_rng(13).integers(-300, 300, (4, 5, 6)).astype(np.int16)
    np.save(tmp_path / "v.npy", data)
    volume = read_volume(tmp_path / "v.npy")
    assert volume.dtype == np.int16
    write_volume(tmp_path / "copy.npy", volume)
    assert np.load(tmp_path / "copy.npy").dtype == np.int16
    np.testing.assert_array_equal(np.load(tmp_path / "copy.npy"), data)

    np.savez(tmp_path / "named.npz", ct=data)
    volume = read_volume(tmp_path / "named.npz")
    assert volume.metadata["npz_key"] == "ct"
    write_volume(tmp_path / "copy.npz", volume)
    with np.load(tmp_path / "copy.npz") as archive:
        np.testing.assert_array_equal(archive["ct"], data)

    np.savez(tmp_path / "several.npz", data, data[:1])
    np.testing.assert_array_equal(read_volume(tmp_path / "several.npz").voxels, data)
    np.savez(tmp_path / "unclear.npz", a=data, b=data)
    with pytest.raises(EnhanceKitError, match="several arrays"):
        read_volume(tmp_path / "unclear.npz")


def test_volume_reading_errors(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), tmp_path / "good.nii.gz")
    data = (tmp_path / "good.nii.gz").read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.nii").write_text("not a volume")
    (tmp_path / "text.npy").write_text("not an array")
    for name in ("truncated.nii.gz", "text.nii", "text.npy", "missing.npz", "volume.mha"):
        with pytest.raises(EnhanceKitError) as error:
            read_volume(tmp_path / name)
        assert str(tmp_path / name) in str(error.value) and "\n" not in str(error.value)
