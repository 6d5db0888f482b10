"""The commands. Each one parses options, calls the library, and reports with Rich; no algorithms here."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.padding import Padding
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from enhancekit.cli.common import (
    WindowOpt,
    build_model,
    derivation,
    guard_output_dir,
    has_free_scale,
    scale_between_folders,
    tied_scale,
)
from enhancekit.cli.ui import console, print_report, progress_bars, stdout, tile_progress, track
from enhancekit.data.degradations import imresize, known_noise_sigma, parse_degradation
from enhancekit.data.io import (
    VolumeData,
    atomic_output,
    is_volume_file,
    list_inputs,
    read_image,
    write_image,
)
from enhancekit.data.series import (
    DicomSeries,
    VolumeSource,
    files_of,
    list_volume_sources,
    read_volume_source,
    write_volume_source,
)
from enhancekit.data.window import (
    NARROW_SHARE,
    check_window_model,
    filled_share,
    parse_window,
    run_windowed,
    stretch,
    window_for,
)
from enhancekit.errors import EnhanceKitError
from enhancekit.evaluation import (
    Report,
    check_volume_degradation,
    degraded_pairs,
    degraded_volume_pairs,
    folder_pairs,
    holds_volumes,
    match_target,
    measure,
    measure_volume,
    quantize,
    score_files,
)
from enhancekit.inference.volumes import enhance_volume, slice_axis
from enhancekit.metrics import Metric, parse_metrics
from enhancekit.registry import count_parameters, create_model, get_model_entry, list_models
from enhancekit.tasks import TASK_DEFAULTS

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Registered model name (see `enhancekit models`).")
]
WeightsOpt = Annotated[
    Path | None, typer.Option(help="Weights file (.safetensors or .ckpt) instead of the shipped ones.")
]
TileOpt = Annotated[
    int | None, typer.Option(help="Run in tiles of this side (bounded memory for large images).")
]
OverlapOpt = Annotated[
    int,
    typer.Option(
        help="Tile overlap in pixels (>= the model's receptive field is exact; rounded up to keep tiles "
        "on a strided model's grid)."
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda")]
TtaOpt = Annotated[bool, typer.Option("--tta", help="x8 geometric self-ensemble (flips and rotations).")]
BackendOpt = Annotated[
    str, typer.Option(help="torch | onnxruntime (CPU; exported once and cached, faster on many CPUs).")
]
ScaleOpt = Annotated[int | None, typer.Option(min=1, help="Scale of a free-scale model such as bicubic.")]
ColorOpt = Annotated[str | None, typer.Option(help="y | rgb (default: the task's; SR uses y).")]
CropOpt = Annotated[
    int | None, typer.Option(min=0, help="Border pixels excluded from metrics (default: SR crops scale).")
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the scores as JSON to this file.")]


NimaOpt = Annotated[
    Path | None,
    typer.Option(
        help="NIMA weights (VGG16 NIMA state dict) for --metrics nima; or $ENHANCEKIT_NIMA_WEIGHTS."
    ),
]


def prepare_nima(measured: list[Metric], weights: Path | None) -> None:
    """Point NIMA at ``weights`` and load it before any work, so a missing file fails at once."""
    if not any(m.name == "nima" for m in measured):
        return
    from enhancekit.metrics.nima import nima_model
    from enhancekit.pretrained import NIMA_ENV

    if weights is not None:
        os.environ[NIMA_ENV] = str(weights)
    nima_model()


def write_json(path: Path, payload: dict) -> None:
    """Write a JSON report atomically (a failed run never leaves half a file)."""
    with atomic_output(path) as handle:
        handle.write(json.dumps(payload, indent=2).encode())


def _enhancer(
    model, progress: Progress, *, device: str, tile: int | None, tile_overlap: int, tta: bool, backend: str
):
    from enhancekit.inference import Enhancer

    on_progress = tile_progress(progress) if tile is not None else None
    return Enhancer(
        model,
        device=device,
        tile=tile,
        tile_overlap=tile_overlap,
        tta=tta,
        on_progress=on_progress,
        backend=backend,
    )


#: Below this console width ``models`` lists one block per model instead of a table.
MODELS_TABLE_MIN_WIDTH = 140


@dataclass
class ModelRow:
    """What ``models`` shows of one model."""

    name: str
    task: str
    parameters: int
    shipped: bool
    scores: list[str]
    description: str


def models(task: Annotated[str | None, typer.Option(help="Only models of this task.")] = None) -> None:
    """List registered models: task, parameters, shipped weights and their measured scores."""
    known = sorted({get_model_entry(name).task for name in list_models()})
    if task is not None and task not in known:
        raise EnhanceKitError(f"unknown task {task!r}; available: {', '.join(known)}")
    rows = []
    for name in list_models(task):
        entry = get_model_entry(name)
        card = entry.card() or {}
        # The headline figures only; the card (weights/<name>.json) has the rest.
        headline = {k: v for k, v in card.get("scores", {}).items() if "bicubic" not in k and "SSIM" not in k}
        rows.append(
            ModelRow(
                name,
                entry.task if entry.role == "enhancer" else f"{entry.task} ({entry.role})",
                count_parameters(create_model(name, pretrained=False)),
                bool(entry.weights),
                [f"{k}: {v}" for k, v in headline.items()],
                entry.description,
            )
        )
    title = "enhancekit models"
    if stdout.width >= MODELS_TABLE_MIN_WIDTH:
        table = Table(title=title, title_justify="left")
        for column in ("name", "task", "parameters", "weights", "measured scores", "description"):
            table.add_column(column, overflow="fold", no_wrap=column in ("name", "task", "parameters"))
        for row in rows:
            table.add_row(
                row.name,
                row.task,
                f"{row.parameters:,}" if row.parameters else "-",
                "shipped" if row.shipped else "-",
                "\n".join(row.scores) or "-",
                row.description,
            )
        stdout.print(table)
        return
    # A six-column table folds every word in a narrow terminal (or a pipe): one block per model reads instead.
    stdout.print(Text(title, style="italic"))
    for row in rows:
        facts = [row.task]
        facts += [f"{row.parameters:,} parameters"] if row.parameters else []
        facts += ["shipped weights"] if row.shipped else []
        stdout.print()
        stdout.print(Text.assemble((row.name, "bold"), " · " + " · ".join(facts)))
        for line in [*row.scores, row.description]:
            stdout.print(Padding(Text(line), (0, 0, 0, 4)))


def enhance(
    inputs: Annotated[
        list[Path], typer.Argument(help="Image or volume files and/or folders (volumes with 3D models).")
    ],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Folder for the results.")],
    model: ModelOpt,
    weights: WeightsOpt = None,
    tile: TileOpt = None,
    tile_overlap: OverlapOpt = 32,
    device: DeviceOpt = "auto",
    tta: TtaOpt = False,
    scale: ScaleOpt = None,
    backend: BackendOpt = "torch",
    window: WindowOpt = None,
) -> None:
    """Enhance images or volumes with a model into a folder, each result under its input's name.

    Images keep their bit depth, mode and alpha; a DICOM result is a derived DICOM with its source's header.
    Volumes (NIfTI, TIFF stacks, multi-frame DICOM, .npy/.npz) go slice by slice through 2D models and in 3D
    windows through 3D models, keeping dtype, affine and header. With a 3D model, a folder of single-frame
    DICOM slices is one volume per series, written back slice by slice."""
    _, net = build_model(model, weights=weights, scale=scale)
    factor = int(getattr(net, "scale", 1))
    if window is not None:
        parse_window(window)  # a malformed window stops here, before any file
        check_window_model(factor)
    # 3D models take volumes and DICOM series; 2D models image folders, and volume folders slice by slice.
    if is_3d(net):
        files = list_volume_sources(inputs, keep_unreadable=True)
        _note_uneven_spacing(files)
    else:
        files = [
            file
            for path in inputs
            for file in list_inputs([path], volumes=holds_volumes(path), keep_unreadable=True)
        ]
    guard_output_dir(output_dir, files_of(files))
    resolved = weights.resolve() if weights else None
    made_by = derivation("enhance", model, weights=resolved, scale=scale, tta=tta, window=window)
    failures = []
    notes = IntensityNotes()
    with progress_bars() as progress:
        enhancer = _enhancer(
            net, progress, device=device, tile=tile, tile_overlap=tile_overlap, tta=tta, backend=backend
        )
        for path in track(files, len(files), f"enhancing with {model}", progress):
            failure = _enhance_file(
                enhancer, path, output_dir, factor, tile_progress(progress), made_by, window, notes
            )
            if failure is not None:
                failures.append(failure)
                console.print(f"[red]error:[/red] {failure}", highlight=False, soft_wrap=True)
    done = len(files) - len(failures)
    kind = "volume(s)" if is_3d(net) else "image(s)"
    console.print(f"{done} of {len(files)} {kind} written to {output_dir}")
    notes.show()
    if failures:
        raise typer.Exit(1)


@dataclass
class IntensityNotes:
    """What ``enhance`` tells the user about intensities once all files are done."""

    #: (file, share of its range) of files without a window whose values fill a sliver of their range
    narrow: list[tuple[str, float]] = field(default_factory=list)
    #: files that hold no value inside the window (written unchanged)
    missed: list[str] = field(default_factory=list)

    def show(self) -> None:
        if self.narrow:
            name, share = self.narrow[0]
            _note(
                f"{len(self.narrow)} file(s) (first: {name}, {share:.1%} of its range) fill under "
                f"{NARROW_SHARE:.0%} of their value range, which models trained on photos see as flat: "
                "--window auto (or --window LO,HI) stretches the values that matter for the model"
            )
        if self.missed:
            _note(
                f"{len(self.missed)} file(s) (first: {self.missed[0]}) hold no value inside the window and "
                "were written unchanged"
            )


def _note_uneven_spacing(sources: list[VolumeSource]) -> None:
    """Tell which DICOM series have unevenly spaced slices, which a 3D model takes as evenly spaced."""
    for source in sources:
        if isinstance(source, DicomSeries) and source.uneven_spacing is not None:
            _note(
                f"the series {source.name} is unevenly spaced: {source.uneven_spacing}; the 3D model takes "
                "its slices as evenly spaced"
            )


def _note(text: str) -> None:
    console.print(f"[yellow]note:[/yellow] {text}", highlight=False, soft_wrap=True)


def _volume_runner(enhancer, volume: VolumeData, on_slice) -> Callable[[np.ndarray], np.ndarray]:
    """``enhancer`` applied to voxels laid out as ``volume``'s: in 3D windows by a 3D model, slice by slice
    (along the volume's slice axis) by a 2D one."""

    def run(voxels: np.ndarray) -> np.ndarray:
        return enhance_volume(
            enhancer,
            voxels,
            spatial_dims=enhancer.spatial_dims,
            axis=slice_axis(volume),
            colour=volume.colour_samples,
            on_slice=on_slice,
        )

    return run


def is_3d(net) -> bool:
    return getattr(net, "spatial_dims", 2) == 3


def _enhance_file(
    enhancer,
    path: VolumeSource,
    output_dir: Path,
    factor: int,
    on_slice,
    derivation: str,
    window: str | None = None,
    notes: IntensityNotes | None = None,
) -> str | None:
    """Enhance one file into ``output_dir``; a user error is returned as its message (naming the file), not
    raised. ``derivation`` names the processing in outputs that record it (DICOM); ``window`` is the
    ``--window`` option (the intensities the model works on); ``notes`` collects what to tell about them."""
    notes = notes if notes is not None else IntensityNotes()
    label = path.name if isinstance(path, DicomSeries) else str(path)

    def run(data, values: np.ndarray, model_run) -> np.ndarray:
        if window is None:
            share = filled_share(data, values)
            if share is not None and share < NARROW_SHARE:
                notes.narrow.append((path.name, share))
            return model_run(values)
        span = window_for(data, values, parse_window(window))
        if span is not None and not ((values >= span[0]) & (values <= span[1])).any():
            notes.missed.append(path.name)
        return run_windowed(model_run, values, span)

    try:
        if isinstance(path, DicomSeries) or enhancer.spatial_dims == 3 or is_volume_file(path):
            volume = read_volume_source(path)
            voxels = run(volume, volume.normalized(), _volume_runner(enhancer, volume, on_slice))
            volume.metadata["derivation"] = derivation
            write_volume_source(output_dir, path, volume.from_normalized(voxels))
            return None
        image = read_image(path)
        output = run(image, image.pixels, enhancer)
        alpha = image.alpha
        if alpha is not None and factor != 1:
            # Alpha is not enhanced, only brought to the output size.
            peak = float(np.iinfo(alpha.dtype).max) if alpha.dtype.kind in "ui" else 1.0
            resized = np.clip(imresize(alpha.astype(np.float32) / peak, scale=factor), 0, 1) * peak
            alpha = (np.rint(resized) if alpha.dtype.kind in "ui" else resized).astype(alpha.dtype)
        metadata = {**image.metadata, "derivation": derivation}
        write_image(output_dir / path.name, output, bit_depth=image.bit_depth, alpha=alpha, metadata=metadata)
    except EnhanceKitError as exc:
        message = str(exc)
        return message if path.name in message else f"{label}: {message}"
    except Exception as exc:  # noqa: BLE001 - a model failing on one file must not abort the whole batch
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{label}: the model failed on this input: {type(exc).__name__}: {first_line}"
    return None


def evaluate(
    model: ModelOpt,
    target: Annotated[Path, typer.Option(help="Folder of reference (ground-truth) images.")],
    input: Annotated[
        Path | None, typer.Option(help="Folder of inputs, paired with targets by file stem.")
    ] = None,
    degrade: Annotated[
        str | None,
        typer.Option(
            help="Make inputs from targets: bicubic:K, awgn:S (unclipped floats, as published tables use) or "
            "awgn-saved:S (images only: as a saved noisy file holds them, clipped and rounded)."
        ),
    ] = None,
    color: ColorOpt = None,
    crop: CropOpt = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated: psnr,ssim,mse,niqe,nima.")] = "psnr,ssim",
    json_path: JsonOpt = None,
    nima_weights: NimaOpt = None,
    save: Annotated[Path | None, typer.Option(help="Also save the outputs to this folder.")] = None,
    weights: WeightsOpt = None,
    scale: ScaleOpt = None,
    tile: TileOpt = None,
    tile_overlap: OverlapOpt = 32,
    device: DeviceOpt = "auto",
    tta: TtaOpt = False,
    backend: BackendOpt = "torch",
    window: WindowOpt = None,
) -> None:
    """Run a model on inputs (or degraded targets) and score the outputs against the targets.

    Volumes (a 3D model, or a target folder of volumes) are scored in 3D against noisy copies (--degrade
    awgn:S); 2D models run on them slice by slice."""
    entry = get_model_entry(model)
    defaults = TASK_DEFAULTS[entry.task]
    if entry.defaults.get("spatial_dims") == 3 or holds_volumes(target):
        if input is not None or degrade is None:
            raise EnhanceKitError("volumes are evaluated with --degrade awgn:S (no --input folder)")
        if window is not None:
            raise EnhanceKitError("eval --window applies to 2D images, not volumes")
        settings = {"target": str(target), "weights": str(weights) if weights else None, "tile": tile}
        options = {
            "device": device,
            "tile": tile,
            "tile_overlap": tile_overlap,
            "tta": tta,
            "backend": backend,
        }
        _evaluate_volumes(model, target, degrade, metrics, weights, save, json_path, settings, options)
        return
    measured = parse_metrics(metrics)
    prepare_nima(measured, nima_weights)
    if scale is None and has_free_scale(entry):
        # Trained weights of a free-scale model run at the scale they were trained for.
        scale = tied_scale(entry, weights)
    target_files = list_inputs([target])
    input_files = list_inputs([input]) if input is not None else None
    degradation = None
    if input_files is None:
        spec = degrade or defaults.degradation
        if spec is None:
            raise EnhanceKitError(f"model {model} ({entry.task}) needs --input or --degrade")
        if "{scale}" in spec:
            spec = spec.format(scale=scale or entry.defaults.get("scale", 1))
        degradation = parse_degradation(spec)
    elif degrade is not None:
        raise EnhanceKitError("give either --input or --degrade, not both")

    if has_free_scale(entry) and scale is None:
        if degradation is not None:
            scale = degradation.scale
        else:
            scale = scale_between_folders(input_files, target_files)
    # A synthetic noise level is known: classical denoisers get it instead of estimating it.
    # (Under a window the model sees the noise stretched: classical denoisers estimate it instead.)
    noise_sigma = known_noise_sigma(degradation) if window is None else None
    _, net = build_model(model, weights=weights, scale=scale, noise_sigma=noise_sigma)
    model_scale = int(getattr(net, "scale", 1))
    window_request = parse_window(window) if window is not None else None
    if window is not None:
        check_window_model(model_scale)
    if degradation is not None and degradation.scale != model_scale:
        raise EnhanceKitError(
            f"model {model} upscales by {model_scale} but the degradation {degrade or spec} "
            f"shrinks by {degradation.scale}"
        )
    color = color or defaults.color
    crop = crop if crop is not None else (model_scale if defaults.crop_is_scale else 0)
    if save is not None:
        guard_output_dir(save, target_files)
        if input_files and save.resolve() == input_files[0].parent.resolve():
            raise EnhanceKitError(f"--save folder {save} holds the inputs; choose another folder")
    pairs = (
        degraded_pairs(target_files, degradation)
        if degradation is not None
        else folder_pairs(input_files, target_files)
    )
    settings = {
        "target": str(target),
        "input": str(input) if input else None,
        "degrade": repr(degradation) if degradation else None,
        "color": color,
        "crop": crop,
        "scale": model_scale,
        "weights": str(weights) if weights else None,
        "noise_sigma_given": noise_sigma if noise_sigma is not None and "sigma" in entry.defaults else None,
        "tile": tile,
        "tile_overlap": tile_overlap,
        "tta": tta,
        "window": window,
    }
    report = Report(model=model, metric_names=[m.name for m in measured], settings=settings)
    made_by = derivation(
        "eval",
        model,
        weights=settings["weights"],
        degrade=settings["degrade"],
        scale=model_scale,
        tta=tta,
        window=window,
    )
    with progress_bars() as progress:
        enhancer = _enhancer(
            net, progress, device=device, tile=tile, tile_overlap=tile_overlap, tta=tta, backend=backend
        )
        for name, source, reference in track(pairs, len(target_files), f"evaluating {model}", progress):
            # One window per pair, the input's (as enhance would use it), for the model and for the scores.
            span = window_for(source, source.pixels, window_request) if window is not None else None
            output = quantize(run_windowed(enhancer, source.pixels, span), source.bit_depth)
            reference = match_target(output, reference, model_scale, name)
            scores = measure(
                stretch(output, span), stretch(reference, span), measured, color=color, crop=crop
            )
            report.images.append({"name": name, **scores})
            if save is not None:
                metadata = {**source.metadata, "derivation": made_by}
                write_image(save / name, output, bit_depth=source.bit_depth, metadata=metadata)
    _finish(report, f"{model} on {target}", json_path)


def _evaluate_volumes(
    model: str,
    target: Path,
    degrade: str,
    metrics: str,
    weights: Path | None,
    save: Path | None,
    json_path: Path | None,
    settings: dict,
    options: dict,
) -> None:
    measured = parse_metrics(metrics, volumes=True)
    degradation = parse_degradation(degrade)
    check_volume_degradation(degradation)
    target_files = list_volume_sources([target])
    _note_uneven_spacing(target_files)
    _, net = build_model(model, weights=weights, scale=None, noise_sigma=known_noise_sigma(degradation))
    if save is not None:
        guard_output_dir(save, files_of(target_files))
    report = Report(
        model=model,
        metric_names=[m.name for m in measured],
        settings={**settings, "degrade": repr(degradation), "volumes": True},
    )
    made_by = derivation("eval", model, weights=settings["weights"], degrade=repr(degradation))
    with progress_bars() as progress:
        enhancer = _enhancer(net, progress, **options)
        on_slice = tile_progress(progress)
        pairs = degraded_volume_pairs(target_files, degradation)
        for source, volume, noisy, clean in track(pairs, len(target_files), f"evaluating {model}", progress):
            output = np.clip(_volume_runner(enhancer, volume, on_slice)(noisy), 0.0, 1.0)
            row = {"name": source.name, **measure_volume(output, clean, measured)}
            if isinstance(source, DicomSeries) and source.uneven_spacing is not None:
                row["uneven_spacing"] = source.uneven_spacing  # the printed note, kept with the scores
            report.images.append(row)
            if save is not None:
                volume.metadata["derivation"] = made_by
                write_volume_source(save, source, volume.from_normalized(output))
    _finish(report, f"{model} on {target} (3D)", json_path)


def score(
    input: Annotated[list[Path], typer.Option(help="Images (files or folders) to score.")],
    target: Annotated[
        Path | None, typer.Option(help="Reference folder, paired with inputs by file stem.")
    ] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated: psnr,ssim,mse,niqe,nima.")] = "niqe",
    color: ColorOpt = None,
    crop: CropOpt = None,
    json_path: JsonOpt = None,
    nima_weights: NimaOpt = None,
) -> None:
    """Score existing images: full-reference metrics against --target, no-reference ones (NIQE, NIMA)."""
    measured = parse_metrics(metrics)
    prepare_nima(measured, nima_weights)
    needs_target = [m.name for m in measured if m.full_reference]
    if needs_target and target is None:
        raise EnhanceKitError(
            f"{', '.join(needs_target)} need(s) --target; without one only niqe is available"
        )
    files = score_files(input, [target] if target is not None else None)
    color, crop = color or "rgb", crop or 0
    report = Report(
        model=None,
        metric_names=[m.name for m in measured],
        settings={
            "input": [str(p) for p in input],
            "target": str(target) if target else None,
            "color": color,
            "crop": crop,
        },
    )
    with progress_bars() as progress:
        for image_path, target_path in track(files, len(files), "scoring", progress):
            image = read_image(image_path).pixels
            reference = read_image(target_path).pixels if target_path is not None else None
            if reference is not None:
                reference = match_target(image, reference, 1, image_path.name)
            scores = measure(image, reference, measured, color=color, crop=crop)
            report.images.append({"name": image_path.name, **scores})
    _finish(report, "scores", json_path)


def _finish(report: Report, title: str, json_path: Path | None) -> None:
    print_report(report, title)
    if json_path is not None:
        write_json(json_path, report.to_json())
        console.print(f"scores written to {json_path}")


def train(
    config: Annotated[Path, typer.Argument(help="Recipe (YAML), e.g. configs/dncnn_gray_awgn.yaml.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe value: key=value (repeatable).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue from a checkpoint (e.g. .../last.ckpt).")
    ] = None,
) -> None:
    """Train a model from a recipe (validation, checkpoints, early stopping, CSV/TensorBoard logs)."""
    from enhancekit.training.config import load_config
    from enhancekit.training.runner import train as run_training

    recipe = load_config(config, set_ or [])
    output_dir = run_training(recipe, resume=resume)
    console.print(f"run finished: weights and logs in {output_dir}")


def export(
    model: ModelOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[str, typer.Option(help="Export format (onnx).")] = "onnx",
    weights: WeightsOpt = None,
    scale: ScaleOpt = None,
    size: Annotated[int, typer.Option(help="Side of the example input used for tracing.")] = 64,
) -> None:
    """Export a model for deployment (ONNX with dynamic height and width), checked with ONNX Runtime."""
    from enhancekit.inference.export import export_onnx

    if format != "onnx":
        raise EnhanceKitError(f"unknown export format {format!r}; available: onnx")
    if weights is not None and output.resolve() == weights.resolve():
        raise EnhanceKitError(f"output {output} is the weights file; choose another file")
    _, net = build_model(model, weights=weights, scale=scale)
    max_error = export_onnx(net, output, size=size)
    console.print(f"wrote {output} (ONNX Runtime vs torch: max abs difference {max_error:.2e})")
