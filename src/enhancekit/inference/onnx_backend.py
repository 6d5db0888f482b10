"""ONNX Runtime as an inference backend: the model exported once (dynamic sizes), cached, run by ORT.

On this project's CPUs ONNX Runtime runs SRCNN 1.15-1.24x faster than eager PyTorch (benchmarks/
srcnn_speed.py), mainly in the 3-channel first convolution. Exporting costs several seconds, so the graph
is cached under ``$ENHANCEKIT_CACHE/onnx`` (default ``~/.cache/enhancekit/onnx``), keyed by the model's
class, settings and weights: only the first run of a model pays it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from enhancekit.errors import EnhanceKitError
from enhancekit.inference.export import export_onnx


def cache_dir() -> Path:
    """Where exported graphs are kept."""
    root = os.environ.get("ENHANCEKIT_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "enhancekit"


def model_fingerprint(model: nn.Module) -> str:
    """A hash of what determines the model's function: class, plain settings, parameters and buffers."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    settings = {k: v for k, v in vars(model).items() if isinstance(v, bool | int | float | str | tuple)}
    digest.update(repr(sorted(settings.items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def onnxruntime_runner(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """A function running ``model`` through ONNX Runtime on the CPU (exported on first use, then cached)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise EnhanceKitError(
            "the onnxruntime backend needs onnxruntime, onnx and onnxscript: pip install 'enhancekit[export]'"
        ) from exc
    path = cache_dir() / "onnx" / f"{type(model).__name__.lower()}-{model_fingerprint(model)}.onnx"
    if not path.is_file():
        export_onnx(model.cpu().float(), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: Tensor) -> Tensor:
        array = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return torch.from_numpy(session.run(None, {input_name: array})[0])

    return run
