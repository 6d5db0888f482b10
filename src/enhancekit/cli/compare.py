"""The ``compare`` command: one picture with the input, several models' outputs and the ground truth."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from enhancekit.cli.common import WindowOpt, build_model, has_free_scale, scale_between_folders, tied_scale
from enhancekit.cli.ui import console, progress_bars, track
from enhancekit.compare import AUTO_SIDE, AUTO_SIDE_SR, FIT_SIDE, NamedModel, make_comparison, parse_region
from enhancekit.data.degradations import Degradation, parse_degradation
from enhancekit.data.io import ImageData, list_inputs, pair_by_stem, write_image
from enhancekit.data.window import check_window_model, parse_window, stretch, window_for
from enhancekit.errors import EnhanceKitError
from enhancekit.evaluation import degraded_pairs, folder_pairs
from enhancekit.inference import Enhancer
from enhancekit.metrics import parse_metrics
from enhancekit.registry import ModelEntry, get_model_entry
from enhancekit.tasks import TASK_DEFAULTS

# Placeholder in --weights for "this model keeps its own weights", so later models can still be given some.
_OWN_WEIGHTS = "-"


def compare(
    target: Annotated[list[Path], typer.Option(help="Ground-truth image file(s) or folder(s) (repeatable).")],
    model: Annotated[
        list[str],
        typer.Option("--model", "-m", help="Model to show, one column each (repeatable, in column order)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write (.png).")],
    input: Annotated[
        list[Path] | None,
        typer.Option(help="Input image file(s) or folder(s), paired with the targets by file stem."),
    ] = None,
    degrade: Annotated[
        str | None,
        typer.Option(
            help="Make inputs from targets: bicubic:K, awgn:S or awgn-saved:S, as in eval (default: the "
            "first model's task's)."
        ),
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(help="Weights of the i-th --model (repeatable; '-' keeps that model's own weights)."),
    ] = None,
    crop: Annotated[
        list[str] | None,
        typer.Option(
            help="Region shown, X,Y,W,H in target pixels: once for all images or once per image "
            f"(default: centred, at most {AUTO_SIDE_SR} px for SR, {AUTO_SIDE} px otherwise)."
        ),
    ] = None,
    zoom: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Nearest-neighbour enlargement of the region (default: fits {FIT_SIDE} px)."
        ),
    ] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated: psnr,ssim,mse,niqe.")] = "psnr,ssim",
    color: Annotated[str | None, typer.Option(help="y | rgb (default: the task's; SR uses y).")] = None,
    images: Annotated[int, typer.Option(min=1, help="At most this many images (one row each).")] = 3,
    window: WindowOpt = None,
) -> None:
    """Draw a side-by-side picture: input, each model's output and the ground truth, titled with scores."""
    entries = [get_model_entry(name) for name in model]
    weight_paths = _weights_per_model(weights or [], model)
    defaults = TASK_DEFAULTS[entries[0].task]
    measured = parse_metrics(metrics)
    color = color or defaults.color
    if color not in ("y", "rgb"):
        raise EnhanceKitError(f"unknown colour convention {color!r}; use 'y' or 'rgb'")
    regions = [parse_region(spec) for spec in crop or []]
    target_files = list_inputs(target)
    if input is None:
        degradation, degrade = _degradation(degrade, entries, weight_paths)
        target_files = target_files[:images]
        input_files = None
    elif degrade is not None:
        raise EnhanceKitError("give either --input or --degrade, not both")
    else:
        degradation = None
        chosen = pair_by_stem(list_inputs(input), target_files)[:images]
        input_files, target_files = [i for i, _ in chosen], [t for _, t in chosen]
    if len(regions) > 1 and len(regions) != len(target_files):
        raise EnhanceKitError(
            f"{len(regions)} crops for {len(target_files)} images; give one crop, or one per image"
        )
    sources = {p.resolve() for p in [*target_files, *(input_files or [])]}
    if output.resolve() in sources:
        raise EnhanceKitError(f"output {output} is one of the images compared; choose another file")

    scale, scale_from = _scale(degrade, degradation, entries, weight_paths, input_files, target_files)
    named = _models(model, entries, weight_paths, scale, scale_from)
    pairs = (
        degraded_pairs(target_files, degradation)
        if degradation is not None
        else folder_pairs(input_files or [], target_files)
    )
    if window is not None:
        check_window_model(scale)
        pairs = _windowed(pairs, parse_window(window))
    with progress_bars() as progress:
        comparison = make_comparison(
            track(pairs, len(target_files), "comparing", progress),
            named,
            scale=scale,
            metrics=measured,
            color=color,
            border=scale if defaults.crop_is_scale else 0,
            regions=regions,
            zoom=zoom,
            window=window,
        )
    write_image(output, np.asarray(comparison.image), bit_depth=8)
    console.print(
        f"wrote {output}: {len(target_files)} image(s) x {len(named) + 2} panels, zoom x{comparison.zoom}"
    )


def _windowed(
    pairs: Iterable[tuple[str, ImageData, np.ndarray]], request: tuple[float, float] | None
) -> Iterator[tuple[str, ImageData, np.ndarray]]:
    """Pairs seen through the input's window: what the models get under ``--window``, and what is shown and
    scored (values outside the window show as its ends, as a viewer's window shows them)."""
    for name, source, target in pairs:
        span = window_for(source, source.pixels, request)
        # 16 bits: the stretched window keeps its levels when outputs are quantised.
        shown = replace(source, pixels=stretch(source.pixels, span), bit_depth=16)
        yield name, shown, stretch(target, span)


def _weights_per_model(weights: list[str], names: list[str]) -> list[Path | None]:
    """One weights path (or None: the model's own) per model, from the positional ``--weights`` values."""
    if len(weights) > len(names):
        raise EnhanceKitError(
            f"{len(weights)} --weights for {len(names)} --model; give at most one per model"
        )
    given = [None if value == _OWN_WEIGHTS else Path(value) for value in weights]
    return given + [None] * (len(names) - len(given))


def _degradation(
    spec: str | None, entries: list[ModelEntry], weights: list[Path | None]
) -> tuple[Degradation, str]:
    """The degradation and its spec: ``--degrade``, else the first model's task default at their scale."""
    spec = spec or TASK_DEFAULTS[entries[0].task].degradation
    if spec is None:
        raise EnhanceKitError(f"model {entries[0].name} ({entries[0].task}) needs --input or --degrade")
    if "{scale}" in spec:
        # A free-scale first model (bicubic) takes the scale of the first model tied to one.
        fixed = [s for s in map(tied_scale, entries, weights) if s is not None]
        spec = spec.format(scale=fixed[0] if fixed else entries[0].defaults.get("scale", 1))
    return parse_degradation(spec), spec


def _scale(
    spec: str | None,
    degradation: Degradation | None,
    entries: list[ModelEntry],
    weights: list[Path | None],
    input_files: list[Path] | None,
    target_files: list[Path],
) -> tuple[int, str]:
    """The comparison's scale and where it comes from (for error messages)."""
    if degradation is not None:
        return degradation.scale, f"the degradation {spec}"
    fixed = [
        (entry.name, s) for entry, s in zip(entries, map(tied_scale, entries, weights), strict=True) if s
    ]
    if fixed:
        return fixed[0][1], f"model {fixed[0][0]}"
    assert input_files is not None
    return scale_between_folders(input_files, target_files), "the input and target sizes"


def _models(
    names: list[str], entries: list[ModelEntry], weights: list[Path | None], scale: int, scale_from: str
) -> list[NamedModel]:
    """The models, built at ``scale`` (free-scale ones) and checked to work at it, with column labels."""
    named = []
    for name, entry, path in zip(names, entries, weights, strict=True):
        free = has_free_scale(entry) and tied_scale(entry, path) is None
        _, net = build_model(name, weights=path, scale=scale if free else None)
        net_scale = int(getattr(net, "scale", 1))
        if net_scale != scale:
            raise EnhanceKitError(
                f"model {name} upscales by {net_scale} but {scale_from} sets the scale {scale}"
            )
        label = name if path is None else f"{name} ({path.stem})"
        named.append((label, Enhancer(net)))
    return named
