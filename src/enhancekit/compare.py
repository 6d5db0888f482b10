"""Side-by-side comparison pictures: the input, each model's output and the ground truth, with their scores.

Every system's README shows one of these. They are drawn with Pillow rather than a plotting library, so a
command gives the same picture every time, quickly. Each row is one image; each panel shows the same region
of it, enlarged by an integer nearest-neighbour zoom so that single pixels stay visible. Scores are computed
as ``eval`` computes them (outputs quantised to the image's bit depth, the task's colour and border
conventions) on the whole image, not on the region shown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from enhancekit.data.io import ImageData, from_float
from enhancekit.errors import EnhanceKitError
from enhancekit.evaluation import match_target, measure, quantize
from enhancekit.metrics import Metric

__all__ = ["Comparison", "Panel", "Region", "auto_region", "make_comparison", "parse_region"]

#: Side of the centred region shown when none is given: SR panels are enlarged, so a smaller region is
#: shown; other tasks show images up to this size whole.
AUTO_SIDE_SR = 192
AUTO_SIDE = 256
#: The default zoom is the largest that keeps the longest region side within this many pixels.
FIT_SIDE = 256

_MARGIN = 16
_COLUMN_GAP = 16
_ROW_GAP = 20
_TEXT_GAP = 4
_TITLE_SIZE = 14
_CAPTION_SIZE = 15
_NOTE_SIZE = 12
_TEXT = (20, 20, 20)
_MUTED = (105, 105, 105)
_BACKGROUND = (255, 255, 255)
_SCORE_FORMATS = {"psnr": "{:.2f} dB", "ssim": "{:.4f}", "mse": "{:.2e}", "niqe": "{:.2f}"}

#: A model as the comparison sees it: a column label and a function from input pixels to output pixels.
NamedModel = tuple[str, Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class Region:
    """A rectangle in target pixels: left ``x``, top ``y``, ``width`` and ``height``."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"


@dataclass(frozen=True)
class Panel:
    """One panel of a comparison picture.

    Attributes:
        image: the target's file name (the row).
        column: the column label: ``"input"``, a model's label or ``"ground truth"``.
        box: (left, top, right, bottom) of the panel's pixels in the picture.
        scores: metric name -> value on the whole image; empty for the ground truth, and for an input of
            another size than the target (super-resolution), which cannot be measured against it.
        title: the two lines drawn above the panel.
    """

    image: str
    column: str
    box: tuple[int, int, int, int]
    scores: dict[str, float]
    title: tuple[str, str]


@dataclass(frozen=True)
class Comparison:
    """A drawn comparison: the picture, where each panel is and what it scored, and the zoom used."""

    image: Image.Image
    panels: list[Panel]
    zoom: int


@dataclass
class _Row:
    """A row before layout: its region and, per column, the region's pixels (8-bit RGB), scores, title."""

    name: str
    region: Region
    crops: list[np.ndarray]
    scores: list[dict[str, float]]
    titles: list[tuple[str, str]]


def parse_region(spec: str) -> Region:
    """A region from ``X,Y,W,H`` (target pixels, non-negative, positive size)."""
    parts = spec.replace(" ", "").split(",")
    try:
        x, y, width, height = (int(part) for part in parts)
    except ValueError:
        raise EnhanceKitError(
            f"bad crop {spec!r}; use X,Y,W,H in target pixels, e.g. 100,100,64,64"
        ) from None
    if x < 0 or y < 0 or width < 1 or height < 1:
        raise EnhanceKitError(f"bad crop {spec!r}: X and Y must be >= 0, W and H >= 1")
    return Region(x, y, width, height)


def auto_region(height: int, width: int, side: int) -> Region:
    """The centred region of at most ``side`` x ``side`` pixels of an image of the given size."""
    region_w, region_h = min(width, side), min(height, side)
    return Region((width - region_w) // 2, (height - region_h) // 2, region_w, region_h)


def make_comparison(
    pairs: Iterable[tuple[str, ImageData, np.ndarray]],
    models: Sequence[NamedModel],
    *,
    scale: int,
    metrics: Sequence[Metric],
    color: str,
    border: int,
    regions: Sequence[Region] = (),
    zoom: int | None = None,
    window: str | None = None,
) -> Comparison:
    """Run every model on every (name, input, target) pair and draw one row per pair.

    Columns: the input (enlarged by nearest neighbour to the target's size when ``scale`` > 1, so that the
    same region is shown), each model's output, the ground truth.

    Args:
        pairs: (file name, input, target) as made by :func:`enhancekit.evaluation.degraded_pairs` or
            :func:`~enhancekit.evaluation.folder_pairs`.
        models: (column label, enhance function) per model, in column order; outputs must be ``scale``
            times the input's size.
        scale: target size / input size.
        metrics: metrics shown in the titles, measured with ``color`` and a ``border`` crop as ``eval`` does.
        regions: the region shown (target pixels): none for a centred one (:data:`AUTO_SIDE_SR` /
            :data:`AUTO_SIDE`), one for every image, or one per image.
        zoom: integer nearest-neighbour enlargement of the regions; by default the largest that keeps
            them within :data:`FIT_SIDE` pixels (at least 1).
        window: the ``--window`` the pairs were seen through, named in the footer.

    Raises:
        EnhanceKitError: no models or no pairs, a region outside its target, as many regions as neither 1
            nor the number of images, or an output whose size does not match its target.
    """
    if not models:
        raise EnhanceKitError("a comparison needs at least one model")
    if zoom is not None and zoom < 1:
        raise EnhanceKitError(f"zoom must be at least 1, got {zoom}")
    rows = []
    for index, (name, source, target) in enumerate(pairs):
        if len(regions) > 1 and index >= len(regions):
            raise EnhanceKitError(f"{len(regions)} crops for more images; give one crop, or one per image")
        region = regions[min(index, len(regions) - 1)] if regions else None
        rows.append(_make_row(name, source, target, models, scale, metrics, color, border, region))
    if not rows:
        raise EnhanceKitError("no images to compare")
    if len(regions) > 1 and len(regions) != len(rows):
        raise EnhanceKitError(f"{len(regions)} crops for {len(rows)} images; give one crop, or one per image")
    if zoom is None:
        longest = max(max(row.region.width, row.region.height) for row in rows)
        zoom = max(1, FIT_SIDE // longest)
    note = _note(metrics, color, border, zoom, window)
    picture, panels = _draw(rows, zoom, note)
    return Comparison(picture, panels, zoom)


def _make_row(
    name: str,
    source: ImageData,
    target: np.ndarray,
    models: Sequence[NamedModel],
    scale: int,
    metrics: Sequence[Metric],
    color: str,
    border: int,
    region: Region | None,
) -> _Row:
    outputs = [quantize(enhance(source.pixels), source.bit_depth) for _, enhance in models]
    references = [match_target(output, target, scale, name) for output in outputs]
    reference = references[0]
    height, width = reference.shape[:2]
    if region is None:
        region = auto_region(height, width, AUTO_SIDE_SR if scale > 1 else AUTO_SIDE)
    elif region.x + region.width > width or region.y + region.height > height:
        raise EnhanceKitError(f"{name}: crop {region} lies outside the {width}x{height} target")

    if scale > 1:
        input_scores: dict[str, float] = {}
        input_note = f"shown x{scale}, nearest neighbour"
    else:
        input_scores = measure(source.pixels, reference, metrics, color=color, crop=border)
        input_note = _format_scores(input_scores)
    crops = [_crop(source.pixels, region, scale)]
    scores = [input_scores]
    titles = [("input", input_note)]
    for (label, _), output, matched in zip(models, outputs, references, strict=True):
        model_scores = measure(output, matched, metrics, color=color, crop=border)
        crops.append(_crop(output, region, 1))
        scores.append(model_scores)
        titles.append((label, _format_scores(model_scores)))
    crops.append(_crop(reference, region, 1))
    scores.append({})
    titles.append(("ground truth", ""))
    return _Row(name, region, crops, scores, titles)


def _crop(pixels: np.ndarray, region: Region, scale: int) -> np.ndarray:
    """The region (in pixels ``scale`` times finer than ``pixels``) as 8-bit RGB, by nearest neighbour."""
    rows = np.arange(region.y, region.y + region.height) // scale
    cols = np.arange(region.x, region.x + region.width) // scale
    patch = np.asarray(pixels)[rows[:, None], cols[None, :]]
    if patch.ndim == 2:
        patch = patch[..., None]
    patch = from_float(patch, 8)
    return np.repeat(patch, 3, axis=2) if patch.shape[2] == 1 else patch


def _format_scores(scores: dict[str, float]) -> str:
    return "  ".join(
        f"{name.upper()} {_SCORE_FORMATS.get(name, '{:.4g}').format(value)}" for name, value in scores.items()
    )


def _note(metrics: Sequence[Metric], color: str, border: int, zoom: int, window: str | None = None) -> str:
    """The footer: how the scores were measured and how the regions are shown."""
    names = "/".join(metric.name.upper() for metric in metrics)
    channel = "Y channel" if color == "y" else "all channels"
    excluded = f", {border} px border excluded" if border else ""
    windowed = f", within the window {window}" if window else ""
    shown = f"enlarged x{zoom} (nearest neighbour)" if zoom > 1 else "shown 1:1"
    measured = f"{names} on the whole image ({channel}{excluded}{windowed})"
    return f"{measured}; crops X,Y,W,H in target pixels, {shown}."


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _draw(rows: list[_Row], zoom: int, note: str) -> tuple[Image.Image, list[Panel]]:
    """Lay the rows out on a white canvas: per row a caption, then per column a two-line title and a panel."""
    title_font, caption_font, note_font = _font(_TITLE_SIZE), _font(_CAPTION_SIZE), _font(_NOTE_SIZE)
    columns = len(rows[0].crops)
    # A column is as wide as its widest panel or title, so long model names never overlap their neighbours.
    widths = [
        max(
            max(row.crops[c].shape[1] * zoom for row in rows),
            *(int(np.ceil(title_font.getlength(line))) for row in rows for line in row.titles[c]),
        )
        for c in range(columns)
    ]
    title_line = round(_TITLE_SIZE * 1.3)
    caption_line = round(_CAPTION_SIZE * 1.3)
    captions = [_caption(row) for row in rows]
    content = sum(widths) + _COLUMN_GAP * (columns - 1)
    text_width = max(*(caption_font.getlength(text) for text in captions), note_font.getlength(note))
    canvas_width = 2 * _MARGIN + max(content, int(np.ceil(text_width)))
    row_heights = [max(crop.shape[0] for crop in row.crops) * zoom for row in rows]
    header = caption_line + _TEXT_GAP + 2 * title_line + _TEXT_GAP
    canvas_height = (
        2 * _MARGIN
        + sum(header + height for height in row_heights)
        + _ROW_GAP * len(rows)
        + round(_NOTE_SIZE * 1.3)
    )
    canvas = Image.new("RGB", (canvas_width, canvas_height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    panels = []
    top = _MARGIN
    for row, caption, row_height in zip(rows, captions, row_heights, strict=True):
        draw.text((_MARGIN, top), caption, fill=_TEXT, font=caption_font)
        title_top = top + caption_line + _TEXT_GAP
        panel_top = title_top + 2 * title_line + _TEXT_GAP
        left = _MARGIN
        for c in range(columns):
            centre = left + widths[c] / 2
            first, second = row.titles[c]
            draw.text((centre, title_top), first, fill=_TEXT, font=title_font, anchor="ma")
            draw.text((centre, title_top + title_line), second, fill=_MUTED, font=title_font, anchor="ma")
            patch = np.repeat(np.repeat(row.crops[c], zoom, axis=0), zoom, axis=1)
            panel_left = left + (widths[c] - patch.shape[1]) // 2
            canvas.paste(Image.fromarray(patch), (panel_left, panel_top))
            box = (panel_left, panel_top, panel_left + patch.shape[1], panel_top + patch.shape[0])
            panels.append(Panel(row.name, row.titles[c][0], box, row.scores[c], row.titles[c]))
            left += widths[c] + _COLUMN_GAP
        top = panel_top + row_height + _ROW_GAP
    draw.text((_MARGIN, top), note, fill=_MUTED, font=note_font)
    return canvas, panels


def _caption(row: _Row) -> str:
    return f"{row.name}, crop {row.region}"
