"""Pieces several commands share: building a model from command-line options, guarding outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from torch import nn

from enhancekit.cli.ui import console
from enhancekit.data.io import pair_by_stem, read_image
from enhancekit.errors import EnhanceKitError
from enhancekit.registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    weights_card,
    weights_card_args,
)

# `--window`, shared by enhance, eval and compare.
WindowOpt = Annotated[
    str | None,
    typer.Option(
        help="Intensity window LO,HI in the file's values (DICOM: after Rescale Slope/Intercept, e.g. HU), "
        "or auto (a DICOM's own window, else the 0.5-99.5% range): stretched to the model's [0, 1]; values "
        "outside it are left unchanged. For data that fill a sliver of their range (CT, 12-bit data in "
        "16-bit files). eval and compare also score (compare also shows) within the window."
    ),
]


def has_free_scale(entry: ModelEntry) -> bool:
    """Whether the user chooses the model's scale (a ``scale`` argument and no weights tied to one)."""
    return "scale" in entry.defaults and entry.weights is None


def tied_scale(entry: ModelEntry, weights: Path | None) -> int | None:
    """The scale a model is tied to: its registered one, or the one its trained weights' card records (a
    free-scale ``srcnn`` trained at x2); None when the user is free to choose."""
    if not has_free_scale(entry):
        return int(entry.defaults.get("scale", 1))
    if weights is not None and "scale" in (card := weights_card_args(entry.name, weights)):
        return int(card["scale"])
    return None


def scale_between_folders(input_files: Sequence[Path], target_files: Sequence[Path]) -> int:
    """The integer upscaling that maps the first input onto its paired target (a free-scale model's scale
    when only folders are given)."""
    first_input, first_target = pair_by_stem(list(input_files), list(target_files))[0]
    ratio = read_image(first_target).pixels.shape[0] / read_image(first_input).pixels.shape[0]
    return max(1, round(ratio))


def build_model(
    name: str, *, weights: Path | None, scale: int | None, noise_sigma: float | None = None
) -> tuple[ModelEntry, nn.Module]:
    """The registered model ``name`` with optional weights; ``scale`` applies to free-scale models only,
    ``noise_sigma`` (0-255) to models that take the noise level (classical denoisers), others ignore it."""
    entry = get_model_entry(name)
    if entry.role != "enhancer":
        raise EnhanceKitError(f"{name} is a {entry.role} for GAN training; it does not enhance images")
    kwargs = {}
    if scale is not None:
        if not has_free_scale(entry):
            fixed = entry.defaults.get("scale", 1)
            if scale != fixed:
                raise EnhanceKitError(f"model {name} works at scale {fixed}, not {scale}")
        else:
            kwargs["scale"] = scale
    if noise_sigma is not None and "sigma" in entry.defaults:
        kwargs["sigma"] = noise_sigma
    card = weights_card(weights) if weights is not None else {}
    trained_as = card.get("model")
    if trained_as and name not in (trained_as, card.get("name")):
        # Same-architecture weights load and may be meant (srcnn weights into srcnn-x3); others fail to load.
        shown = card.get("name") or trained_as
        console.print(
            f"[yellow]note:[/yellow] {weights} holds weights of {shown!r}, not {name!r}; its recorded "
            f"arguments are not applied (use --model {shown} to rebuild the network it was trained in)",
            highlight=False,
            soft_wrap=True,
        )
    return entry, create_model(name, weights=weights, **kwargs)


def guard_output_dir(output_dir: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output folder that would receive a file over an input (never overwrite inputs)."""
    out = output_dir.resolve()
    for path in inputs:
        if path.resolve().parent == out:
            raise EnhanceKitError(f"output folder {output_dir} holds the input {path}; choose another folder")
    names = [p.name for p in inputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EnhanceKitError(f"several inputs are named {duplicates[0]}; their outputs would collide")
    if out.exists() and not out.is_dir():
        raise EnhanceKitError(f"output path {output_dir} exists and is not a folder")


def derivation(command: str, model: str, **options: object) -> str:
    """How outputs were made, for formats that record it (a DICOM's Derivation Description, and its new UIDs):
    the command and every option that changes the result."""
    parts = [f"enhancekit {command} --model {model}"]
    for name, value in options.items():
        if value is not None and value is not False:
            flag = "--" + name.replace("_", "-")
            parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)
