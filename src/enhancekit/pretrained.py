"""Third-party pretrained weights, which enhancekit does not ship: finding, reading and loading them.

- VGG19's ImageNet checkpoint (torchvision's ``vgg19-dcbb9e9d.pth``) for the perceptual loss: an explicit
  path, ``$ENHANCEKIT_VGG19_WEIGHTS`` or torch hub's cache, or a hash-checked download on request.
- NIMA checkpoints (VGG16 backbone) for the NIMA metric: a file the user supplies.

Kept apart from :mod:`enhancekit.models`, whose networks do no I/O. Every failure (missing, damaged or
mismatched file; no network) is a one-line :class:`~enhancekit.errors.EnhanceKitError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.models.nima import NIMA
from enhancekit.models.vgg import VGG19Features
from enhancekit.registry import read_weights_file

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
VGG19_ENV = "ENHANCEKIT_VGG19_WEIGHTS"
NIMA_ENV = "ENHANCEKIT_NIMA_WEIGHTS"
NIMA_HELP = (
    "NIMA needs published weights, which enhancekit does not ship: e.g. the VGG16 NIMA checkpoint of the "
    "PyTorch port 'kentsyx/Neural-IMage-Assessment' (trained on AVA); pass it with --nima-weights PATH or "
    f"set {NIMA_ENV}=PATH. NIQE (--metrics niqe) needs no weights."
)


def _hub_file() -> Path:
    # Looked up at call time so TORCH_HOME (and tests) can move the cache.
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _search() -> Path | None:
    env = os.environ.get(VGG19_ENV)
    for candidate in ([Path(env).expanduser()] if env else []) + [_hub_file()]:
        if candidate.is_file():
            return candidate
    return None


def find_vgg19_weights(path: str | Path | None = None) -> Path:
    """The VGG19 ImageNet checkpoint: ``path`` if given, else ``$ENHANCEKIT_VGG19_WEIGHTS``, else torch
    hub's cache (``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``, where torchvision keeps it)."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise EnhanceKitError(f"VGG19 weights file not found: {explicit}")
        return explicit
    found = _search()
    if found is not None:
        return found
    env = os.environ.get(VGG19_ENV)
    env_state = f"${VGG19_ENV}={env} (missing)" if env else f"${VGG19_ENV} (unset)"
    hub = _hub_file()
    raise EnhanceKitError(
        f"the VGG19 perceptual loss needs torchvision's ImageNet weights {VGG19_FILE}, not found "
        f"(looked at: an explicit path (none given), {env_state}, {hub}); give its path (loss term "
        f"`weights: PATH`), set {VGG19_ENV}=PATH, copy it to {hub}, or let enhancekit download it from "
        f"{VGG19_URL} (loss term `download: true`)"
    )


def _first_line(exc: BaseException) -> str:
    # EnhanceKitError messages are one line; library exceptions may span several or be empty.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _download() -> dict[str, Any]:
    hub = _hub_file()
    try:
        # check_hash compares the file against the hash prefix in its name (dcbb9e9d).
        return torch.hub.load_state_dict_from_url(
            VGG19_URL, model_dir=str(hub.parent), map_location="cpu", check_hash=True, weights_only=True
        )
    except (OSError, RuntimeError) as exc:  # URLError, timeouts, disk errors; RuntimeError: bad hash
        raise EnhanceKitError(
            f"cannot download {VGG19_URL}: {_first_line(exc)}; "
            f"place the file at {hub} or set {VGG19_ENV}=PATH"
        ) from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways (pickle, zip, EOF) on a damaged file
        raise EnhanceKitError(f"cannot read VGG19 weights {path}: {_first_line(exc)}") from exc
    if not isinstance(state, dict):
        raise EnhanceKitError(f"cannot read VGG19 weights {path}: not a state dict")
    return state


def _frozen(module: VGG19Features) -> VGG19Features:
    module.requires_grad_(False)
    return module.eval()


def load_vgg19_features(
    layer: str = "relu5_4", path: str | Path | None = None, download: bool = False
) -> VGG19Features:
    """Frozen (no gradients, eval mode) VGG19 features up to ``layer`` with the ImageNet weights.

    The checkpoint is searched as :func:`find_vgg19_weights` does; with ``download=True`` and no local copy
    (and no explicit ``path``) it is fetched from download.pytorch.org into torch hub's cache, hash-checked.
    ``classifier.*`` entries, and layers past ``layer``, are ignored.
    """
    if download and path is None and _search() is None:
        state, source = _download(), VGG19_URL
    else:
        source_path = find_vgg19_weights(path)
        state, source = _read(source_path), str(source_path)
    module = VGG19Features(layer)
    wanted = module.state_dict()
    missing = [key for key in wanted if key not in state]
    if missing:
        raise EnhanceKitError(f"{source} is not a VGG19 checkpoint: no {missing[0]!r}")
    try:
        module.load_state_dict({key: state[key] for key in wanted})
    except RuntimeError as exc:
        raise EnhanceKitError(f"{source} is not a VGG19 checkpoint: shapes differ") from exc
    return _frozen(module)


def random_vgg19_features(layer: str = "relu5_4", seed: int = 0) -> VGG19Features:
    """Frozen VGG19 features with fixed random weights: a stand-in for plumbing tests and for runs without
    the ImageNet file. Random features do not measure perceptual similarity; do not train with them.

    He-normal weights (He et al., ICCV 2015) keep activations from vanishing across the 16 layers; the
    forked random state leaves the caller's global random stream untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = VGG19Features(layer)
        for conv in module.features:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
    return _frozen(module)


def load_nima(path: str | Path | None = None) -> NIMA:
    """NIMA in eval mode with the weights at ``path`` (``.pth``/``.pt`` state dict or ``.safetensors``), or
    at ``$ENHANCEKIT_NIMA_WEIGHTS``; a missing or mismatched file is a one-line :class:`EnhanceKitError`."""
    chosen = path if path is not None else os.environ.get(NIMA_ENV)
    if not chosen:
        raise EnhanceKitError(NIMA_HELP)
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise EnhanceKitError(f"NIMA weights file not found: {path}. {NIMA_HELP}")
    state = read_weights_file(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EnhanceKitError(f"cannot read NIMA weights {path}: not a state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = NIMA()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EnhanceKitError(
            f"{path} is not a VGG16 NIMA checkpoint (expected features.* and classifier.1.* entries)"
        ) from exc
    return model.eval().requires_grad_(False)
