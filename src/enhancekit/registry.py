"""Model registry: name -> factory, task, default hyper-parameters and shipped weights.

Adding a network is one file in ``models/`` plus one :func:`register_model` call there. Shipped weights
live in ``enhancekit/weights/<name>.safetensors`` with a model card ``<name>.json`` (training data, recipe,
steps, commit, measured scores) that ``enhancekit models`` reads.

Models expose a few optional attributes that the inference engine reads instead of knowing each network:
``scale`` (output size / input size, default 1), ``size_multiple`` (input sides must be a multiple of it,
default 1), ``in_channels`` (``None`` = any channel count) and ``spatial_dims`` (2 or 3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from enhancekit.errors import EnhanceKitError

# safetensors metadata keys under which `enhancekit train` records the model name and constructor arguments.
WEIGHTS_MODEL_KEY = "enhancekit.model"
WEIGHTS_ARGS_KEY = "enhancekit.args"
# The key under which training checkpoints (.ckpt) carry the same card: {"model": name, "args": {...}}.
CHECKPOINT_CARD_KEY = "enhancekit_model"

TASKS = ("sr", "denoise", "lowlight", "enhance")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model name."""

    name: str
    factory: Callable[..., nn.Module]
    task: str
    defaults: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    description: str = ""
    #: "enhancer" for models that map images to images; "discriminator" for GAN critics (training only)
    role: str = "enhancer"

    def weights_path(self) -> Path | None:
        """Path of the shipped safetensors file, or None when this entry ships no weights."""
        if self.weights is None:
            return None
        return Path(str(resources.files("enhancekit") / "weights" / self.weights))

    def card(self) -> dict[str, Any] | None:
        """The model card (JSON next to the weights), or None."""
        path = self.weights_path()
        if path is None:
            return None
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            return None
        return json.loads(card_path.read_text())


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    task: str,
    weights: str | None = None,
    description: str = "",
    role: str = "enhancer",
    **defaults: Any,
) -> ModelEntry:
    """Register ``factory`` under ``name`` with default keyword arguments (and shipped weights, if any)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")
    doc = (factory.__doc__ or "").strip().splitlines()
    if role not in ("enhancer", "discriminator"):
        raise ValueError(f"unknown role {role!r}; expected 'enhancer' or 'discriminator'")
    entry = ModelEntry(
        name, factory, task, dict(defaults), weights, description or (doc[0] if doc else ""), role
    )
    _REGISTRY[name] = entry
    return entry


def _ensure_models_imported() -> None:
    # Importing the package runs every family's register_model calls.
    import enhancekit.models  # noqa: F401


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally only those of one task."""
    _ensure_models_imported()
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an :class:`EnhanceKitError` naming the choices if unknown."""
    _ensure_models_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EnhanceKitError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def _first_reason(exc: Exception) -> str:
    # load_state_dict lists every problem on its own line after a header; the first one is enough.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("Error(s) in loading")]
    reason = (reasons or lines or [type(exc).__name__])[0]
    return reason if len(reason) <= 200 else reason[:197] + "..."


def read_weights_file(path: Path) -> Any:
    """The raw contents of a ``.safetensors`` file or a torch checkpoint (tensors only, no pickled code);
    a damaged file is a one-line :class:`EnhanceKitError`."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and header errors of a damaged file
        raise EnhanceKitError(f"cannot read weights {path}: {_first_reason(exc)}") from exc


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors (or torch ``state_dict``/Lightning checkpoint) file into ``model``, strictly."""
    path = Path(path)
    if not path.is_file():
        raise EnhanceKitError(f"weights file not found: {path}")
    state = read_weights_file(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = {
            k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")
        }
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # a mismatched or non-dict file becomes one clear line
        raise EnhanceKitError(f"cannot load weights {path}: {_first_reason(exc)}") from exc


def weights_card(weights: str | Path) -> dict[str, Any]:
    """The card of a weights file: ``<weights>.json``, ``<weights>.model.json`` (as ``training_logs/`` keeps a
    run's files) or the ``model.json`` that ``enhancekit train`` writes beside ``model.safetensors``; else the
    model name and arguments ``enhancekit train`` embeds in a safetensors file's metadata or a checkpoint
    (``.ckpt``); else ``{}``.
    An unreadable card counts as none (a damaged weights file fails later, when loaded)."""
    path = Path(weights)
    if path.suffix == ".ckpt":
        return _checkpoint_card(path)
    for card_path in (path.with_suffix(".json"), path.with_suffix(".model.json"), path.parent / "model.json"):
        if card_path.is_file():
            try:
                card = json.loads(card_path.read_text())
            except (OSError, ValueError):
                return {}
            return card if isinstance(card, dict) else {}
    return _embedded_card(path)


def weights_card_args(name: str, weights: str | Path) -> dict[str, Any]:
    """Constructor arguments recorded in the card of a weights file (see :func:`weights_card`) when the card
    is for model ``name``; else ``{}``.

    Trained weights are thereby self-describing: ``--weights runs/x/model.safetensors`` rebuilds the network
    with the widths and depth it was trained with.
    """
    card = weights_card(weights)
    return dict(card["args"]) if card.get("model") == name and isinstance(card.get("args"), dict) else {}


def _checkpoint_card(path: Path) -> dict[str, Any]:
    """The card ``enhancekit train`` stores in its checkpoints; ``{}`` for other or unreadable files."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a checkpoint, or a damaged one: load_weights names the problem
        return {}
    card = checkpoint.get(CHECKPOINT_CARD_KEY) if isinstance(checkpoint, dict) else None
    return dict(card) if isinstance(card, dict) else {}


def _embedded_card(path: Path) -> dict[str, Any]:
    """The model name and constructor arguments ``enhancekit train`` writes into a safetensors file."""
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        args = json.loads(metadata.get(WEIGHTS_ARGS_KEY, "null"))
    except Exception:  # unreadable header or metadata: no card, and load_weights names the problem
        return {}
    return {"model": metadata.get(WEIGHTS_MODEL_KEY), "args": args} if WEIGHTS_MODEL_KEY in metadata else {}


def create_model(
    name: str, *, pretrained: bool = True, weights: str | Path | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model: its defaults, updated by the arguments recorded with ``weights`` (if any)
    and then by ``kwargs``; then weights loaded.

    ``weights`` (a file path) overrides the shipped weights; ``pretrained=False`` skips the shipped ones.
    """
    entry = get_model_entry(name)
    card_args = weights_card_args(name, weights) if weights is not None else {}
    params = {**entry.defaults, **card_args, **kwargs}
    try:
        model = entry.factory(**params)
    except (TypeError, ValueError) as exc:
        raise EnhanceKitError(f"bad arguments for model {name!r}: {exc}") from exc
    if weights is not None:
        load_weights(model, weights)
    elif pretrained and entry.weights is not None:
        load_weights(model, entry.weights_path())
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
