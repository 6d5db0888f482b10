"""``enhancekit compare``: the picture's panels, its scores against ``eval``'s, and one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from enhancekit.cli.app import app
from enhancekit.compare import Region, auto_region, make_comparison, parse_region
from enhancekit.data.degradations import BicubicDownscale, GaussianNoise, SavedGaussianNoise
from enhancekit.data.io import from_float, read_image
from enhancekit.evaluation import degraded_pairs
from enhancekit.inference import Enhancer
from enhancekit.metrics import parse_metrics
from enhancekit.registry import create_model

SR = Path(__file__).parents[1] / "data" / "sr"
GRAY = Path(__file__).parents[1] / "data" / "gray"
runner = CliRunner()


def invoke(command: str, *args: object):
    """Run ``command`` (options without paths, split at spaces) followed by ``args``."""
    return runner.invoke(app, [*command.split(), *(str(a) for a in args)])


def panel_pixels(picture: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(picture.convert("RGB"))[box[1] : box[3], box[0] : box[2]]


def zoomed(patch: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(patch, zoom, axis=0), zoom, axis=1)


def test_sr_picture_is_the_library_drawing_and_scores_match_eval(tmp_path):
    butterfly = SR / "butterfly.png"
    out = tmp_path / "compare.png"
    result = invoke(
        "compare --degrade bicubic:3 --model bicubic --crop 100,100,60,60", "--target", butterfly, "-o", out
    )
    assert result.exit_code == 0, result.output
    json_path = tmp_path / "eval.json"
    result = invoke("eval --degrade bicubic:3 --model bicubic", "--target", butterfly, "--json", json_path)
    assert result.exit_code == 0, result.output
    eval_scores = json.loads(json_path.read_text())["images"][0]

    comparison = make_comparison(
        degraded_pairs([butterfly], BicubicDownscale(3)),
        [("bicubic", Enhancer(create_model("bicubic", scale=3), device="cpu"))],
        scale=3,
        metrics=parse_metrics("psnr,ssim"),
        color="y",
        border=3,
        regions=[parse_region("100,100,60,60")],
    )
    picture = comparison.image
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(picture))

    # 60 px shown 4x fits the default 256 px; columns left to right, inside the picture.
    assert comparison.zoom == 4
    assert [p.column for p in comparison.panels] == ["input", "bicubic", "ground truth"]
    boxes = [p.box for p in comparison.panels]
    assert all((right - left, bottom - top) == (240, 240) for left, top, right, bottom in boxes)
    assert all(a[2] < b[0] for a, b in zip(boxes, boxes[1:], strict=False))
    assert boxes[0][0] > 0 and boxes[-1][2] < picture.width and boxes[0][3] < picture.height

    bicubic = comparison.panels[1]
    assert bicubic.scores == {"psnr": eval_scores["psnr"], "ssim": eval_scores["ssim"]}
    assert f"PSNR {eval_scores['psnr']:.2f} dB" in bicubic.title[1]
    assert comparison.panels[0].scores == comparison.panels[2].scores == {}

    # Ground truth: the region of the target (cropped to a multiple of 3) enlarged 4x; input: the LR image
    # enlarged 3x by nearest neighbour, then the same region.
    target = from_float(read_image(butterfly).pixels[:255, :255], 8)
    assert np.array_equal(panel_pixels(picture, boxes[2]), zoomed(target[100:160, 100:160], 4))
    _, source, _ = next(degraded_pairs([butterfly], BicubicDownscale(3)))
    upscaled = zoomed(from_float(source.pixels, 8), 3)
    assert np.array_equal(panel_pixels(picture, boxes[0]), zoomed(upscaled[100:160, 100:160], 4))


def test_gray_denoising_rows_scores_inputs_and_shows_whole_small_images():
    files = sorted(GRAY.glob("*.png"))[:2]

    def identity_comparison(noise):
        return make_comparison(
            degraded_pairs(files, noise),
            [("identity", lambda image: image)],
            scale=1,
            metrics=parse_metrics("psnr"),
            color="rgb",
            border=0,
        )

    comparison = identity_comparison(SavedGaussianNoise(25))
    assert len(comparison.panels) == 2 * 3 and comparison.zoom == 1
    first_input, first_output = comparison.panels[:2]
    # The identity "model" returns its input, so both panels score the same; 180 px images are shown whole.
    assert first_input.scores == first_output.scores and 15 < first_input.scores["psnr"] < 25
    # Float noise: the input panel scores the unclipped input the models get (sigma 25: about 20.2 dB), while
    # every output is saved as an image (clipped and rounded), which cuts off the noise past black and white.
    floats_input, floats_output = identity_comparison(GaussianNoise(25)).panels[:2]
    assert abs(floats_input.scores["psnr"] - 20 * np.log10(255 / 25)) < 0.2
    assert floats_output.scores["psnr"] > floats_input.scores["psnr"]
    ground_truth = comparison.panels[2]
    pixels = panel_pixels(comparison.image, ground_truth.box)
    assert pixels.shape == (180, 180, 3)
    assert np.array_equal(pixels[..., 0], np.asarray(Image.open(files[0])))
    assert (pixels == pixels[..., :1]).all()  # gray stays gray


def test_paired_input_and_per_image_crops(tmp_path):
    out = tmp_path / "pair.png"
    files = ["--input", SR / "butterflyx3.png", "--input", SR / "babyx3.png"]
    files += ["--target", SR / "baby.png", "--target", SR / "butterfly.png"]
    result = invoke("compare --model bicubic --crop 0,0,32,32 --crop 10,10,64,64 --zoom 2", *files, "-o", out)
    assert result.exit_code == 0, result.output
    picture = Image.open(out)
    assert picture.mode == "RGB" and picture.width > 3 * 128


def test_region_helpers():
    assert parse_region(" 1, 2,3,4") == Region(1, 2, 3, 4)
    assert str(Region(1, 2, 3, 4)) == "1,2,3,4"
    assert auto_region(255, 255, 192) == Region(31, 31, 192, 192)
    assert auto_region(100, 50, 192) == Region(0, 0, 50, 100)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--crop", "200,200,60,60"], "crop 200,200,60,60 lies outside the 255x255 target"),
        (["--crop", "1,2,3"], "bad crop '1,2,3'"),
        (["--crop", "-1,0,3,3"], "X and Y must be >= 0"),
        (["--crop", "0,0,8,8", "--crop", "0,0,8,8"], "2 crops for 1 images"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--weights", "-", "--weights", "-"], "2 --weights for 1 --model"),
        (["--model", "srcnn-x2"], "model srcnn-x2 upscales by 2 but the degradation bicubic:3"),
    ],
)
def test_user_errors_are_one_line(tmp_path, extra, message):
    out = tmp_path / "out.png"
    result = invoke(
        "compare --degrade bicubic:3 --model bicubic", "--target", SR / "butterfly.png", "-o", out, *extra
    )
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def test_compare_window_shows_and_scores_a_ct_slice_within_its_window(tmp_path, make_ct_dicom):
    from enhancekit.cli.compare import _windowed

    tissue = np.asarray(Image.open(SR / "butterfly.png").convert("L"), dtype=np.float64) / 255 * 300 - 100
    noisy = tissue + np.random.default_rng(3).normal(0, 20, tissue.shape)
    for folder, hu in (("clean", tissue), ("noisy", noisy)):
        (tmp_path / folder).mkdir()
        make_ct_dicom(tmp_path / folder / "ct.dcm", np.rint(hu + 1024), center=40, width=400)
    picture = tmp_path / "ct.png"
    result = invoke(
        "compare",
        "--target",
        tmp_path / "clean",
        "--input",
        tmp_path / "noisy",
        "-m",
        "gaussian-filter",
        "--window",
        "-160,240",
        "-o",
        picture,
    )
    assert result.exit_code == 0, result.output
    assert Image.open(picture).size[0] > 0
    # The panels show the window stretched to the full gray scale; the file's own range would be a flat band.
    pairs = [
        (
            "ct.dcm",
            read_image(tmp_path / "noisy" / "ct.dcm"),
            read_image(tmp_path / "clean" / "ct.dcm").pixels,
        )
    ]
    ((_, shown, reference),) = list(_windowed(pairs, (-160.0, 240.0)))
    expected = np.clip((tissue + 160) / 400, 0, 1)
    assert np.abs(reference[..., 0] - expected).max() < 1.5 / 400
    assert shown.pixels.max() - shown.pixels.min() > 0.7
