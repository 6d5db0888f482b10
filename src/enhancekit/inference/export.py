"""Export to ONNX, verified against the torch model with ONNX Runtime before the file is kept."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from enhancekit.errors import EnhanceKitError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def export_onnx(model: nn.Module, path: str | Path, *, size: int = 64, tolerance: float = 1e-4) -> float:
    """Write ``model`` as ONNX (batch, height and width dynamic); returns the max |ORT - torch| on a probe.

    The probe is a random image of ``size`` x ``size`` plus one of another size, so a graph that silently
    fixed the traced shape is caught. Needs ``onnx``, ``onnxscript`` and ``onnxruntime``
    (``pip install enhancekit[export]``).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise EnhanceKitError(
            "ONNX export needs onnxruntime, onnx and onnxscript: pip install 'enhancekit[export]'"
        ) from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float()
    channels = getattr(model, "in_channels", None) or 3
    multiple = int(getattr(model, "size_multiple", 1))
    spatial_dims = int(getattr(model, "spatial_dims", 2))
    side = max(multiple, size - size % multiple)
    # A batch of two: an example batch of one would let the exporter specialise the batch size to 1.
    example = torch.rand(2, channels, *[side] * spatial_dims)
    batch = torch.export.Dim("batch", min=1)
    axes = ("depth", "height", "width")[-spatial_dims:]
    dynamic = {0: batch, **{2 + i: torch.export.Dim(axis, min=multiple) for i, axis in enumerate(axes)}}
    other_size = [side + multiple * (i + 1) for i in range(spatial_dims)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The exporter logs a line for every optional torchvision operator it cannot register.
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                verbose=False,
                dynamic_shapes=(dynamic,),
                external_data=False,
            )
        program.save(str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        max_error = 0.0
        for probe in (example, torch.rand(1, channels, *other_size)):
            with torch.inference_mode():
                expected = model(probe).numpy()
            got = session.run(None, {session.get_inputs()[0].name: probe.numpy()})[0]
            max_error = max(max_error, float(np.abs(got - expected).max()))
        if max_error > tolerance:
            raise EnhanceKitError(
                f"ONNX export of {type(model).__name__} differs from torch by {max_error:.2e}"
            )
        os.replace(tmp, path)
    except EnhanceKitError:
        raise
    except Exception as exc:
        # The exporter's messages carry terminal colour codes and start with a generic line; keep the
        # first line that says something, without the codes.
        lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
        reason = next((line for line in lines if line), type(exc).__name__)
        raise EnhanceKitError(f"cannot export {type(model).__name__} to ONNX: {reason[:300]}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return max_error
