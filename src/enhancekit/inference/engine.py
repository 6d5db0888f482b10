"""Array-in/array-out enhancement with any enhancekit model.

The engine knows no network. It reads a few optional model attributes: ``scale`` (output size / input size,
default 1), ``size_multiple`` (input sides must be a multiple of it, default 1), ``min_size`` (the smallest
side the model takes, default 1; smaller inputs are padded), ``in_channels`` (``None`` =
any), ``spatial_dims`` (2 for images, 3 for volumes, default 2) and ``tile_blend`` (how tiles are joined,
``"cut"`` or ``"ramp"``, default ``"cut"``).

Outputs are float32 and deliberately not clipped to [0, 1]: evaluation code should score what the model
produced, and the image writers clip when they quantise.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from enhancekit.errors import EnhanceKitError
from enhancekit.inference.tiling import check_tile_blend, check_tile_overlap, tiled_forward
from enhancekit.inference.tta import tta_forward


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; an unavailable CUDA device is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise EnhanceKitError(f"unknown device {device!r}") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise EnhanceKitError(f"device {str(device)!r} requested but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise EnhanceKitError(
                f"device {str(device)!r} requested but only {torch.cuda.device_count()} GPU(s)"
            )
    return resolved


def pad_to_multiple(x: Tensor, multiple: int, minimum: int = 1) -> Tensor:
    """Pad the spatial axes of ``(N, C, *spatial)`` at their ends up to a multiple of ``multiple``, and to at
    least ``minimum``.

    Reflect padding keeps image statistics near the border (zeros would read as a dark frame); it needs the
    pad to be smaller than the side, so tiny images fall back to replicate padding.
    """
    spatial = x.shape[2:]
    pads = [math.ceil(max(length, minimum) / multiple) * multiple - length for length in spatial]
    if not any(pads):
        return x
    mode = "reflect" if all(p < length for p, length in zip(pads, spatial, strict=True)) else "replicate"
    # F.pad lists (before, after) pairs starting from the last axis.
    return F.pad(x, [v for p in reversed(pads) for v in (0, p)], mode=mode)


class Enhancer:
    """Run a model on numpy images/volumes (or tensors), with optional tiling and test-time augmentation.

    Args:
        model: an ``nn.Module`` mapping ``(N, C, *spatial)`` in [0, 1] to ``(N, C_out, *(spatial * scale))``.
            It is moved to ``device`` and put in eval mode in place.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        tile: tile side in pixels for tiled inference (``None`` = whole image at once); rounded up to a
            multiple of the model's ``size_multiple``; ignored for models that set ``tileable = False``.
        tile_overlap: minimum overlap of neighbouring tiles; tiling is exact for fully convolutional models
            whose receptive-field radius is at most half of it (see :mod:`enhancekit.inference.tiling`).
        tile_blend: ``"cut"`` (exact for local models) or ``"ramp"`` (feathered, hides the seams of models
            with a receptive field wider than the overlap); ``None`` = the model's ``tile_blend`` attribute,
            else ``"cut"``.
        tta: average over 8 symmetries (see :mod:`enhancekit.inference.tta`); 8x slower.
        amp: fp16 autocast, used only on CUDA (CPU autocast is slower or unsupported on many CPUs).
        channels_last: on the CPU, run 2D models in channels-last memory format (faster with oneDNN).
        on_progress: called with (tiles done, tiles in all) while a tiled image runs, for progress bars.
        backend: ``"torch"``, or ``"onnxruntime"`` (CPU only; the model exported once and cached, see
            :mod:`enhancekit.inference.onnx_backend`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        tile: int | None = None,
        tile_overlap: int = 32,
        tile_blend: str | None = None,
        tta: bool = False,
        amp: bool = True,
        channels_last: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
        backend: str = "torch",
    ) -> None:
        self.scale: int = getattr(model, "scale", 1)
        self.size_multiple: int = getattr(model, "size_multiple", 1)
        self.min_size: int = getattr(model, "min_size", 1)
        self.in_channels: int | None = getattr(model, "in_channels", None)
        self.spatial_dims: int = getattr(model, "spatial_dims", 2)
        if self.spatial_dims not in (2, 3):
            raise EnhanceKitError(f"model spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if not getattr(model, "tileable", True):
            # Whole-image methods (adaptive gamma, CLAHE, LIME) would give each tile its own statistics.
            tile = None
        if tile is not None:
            check_tile_overlap(tile, tile_overlap)
            # Tiles must be valid model inputs; the padded image is a multiple, so clamped tiles are too.
            tile = math.ceil(max(tile, self.min_size) / self.size_multiple) * self.size_multiple
            # Tiles must also start on the model's downsampling grid, or a strided network sees each tile
            # shifted against the untiled pass: the advance is rounded down to a multiple (at least one),
            # so the overlap only grows.
            step = max((tile - tile_overlap) // self.size_multiple, 1) * self.size_multiple
            tile_overlap = tile - step
        if tile_blend is None:
            tile_blend = getattr(model, "tile_blend", "cut")
        check_tile_blend(tile_blend)
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.tile_blend = tile_blend
        self.tta = tta
        self.on_progress = on_progress
        self.device = resolve_device(device)
        self.amp = amp and self.device.type == "cuda"
        self.channels_last = channels_last and self.device.type == "cpu" and self.spatial_dims == 2
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._onnx: Callable[[Tensor], Tensor] | None = None
        if backend == "onnxruntime":
            if self.device.type != "cpu":
                raise EnhanceKitError("the onnxruntime backend runs on the CPU; use --device cpu")
            from enhancekit.inference.onnx_backend import onnxruntime_runner

            self._onnx = onnxruntime_runner(model)
        elif backend != "torch":
            raise EnhanceKitError(f"unknown backend {backend!r}; use torch or onnxruntime")

    def _forward(self, x: Tensor) -> Tensor:
        """One model call on the model's device; returns float32 there."""
        if self._onnx is not None:
            return self._onnx(x)
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        x = x.to(self.device, memory_format=memory_format)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()
        with autocast:
            return self.model(x).float()

    def _run(self, x: Tensor) -> Tensor:
        """Pad to ``size_multiple``, run (tiled and/or with TTA), crop back; ``x`` has the model channels."""
        spatial = x.shape[2:]
        x = pad_to_multiple(x, self.size_multiple, self.min_size)
        fn = self._forward
        if self.tta:
            # TTA goes inside the tile function so that tiling still bounds memory and stays exact.
            fn = functools.partial(tta_forward, self._forward, spatial_dims=self.spatial_dims)
        if self.tile is None:
            y = fn(x)
        else:
            y = tiled_forward(
                fn,
                x,
                tile=self.tile,
                overlap=self.tile_overlap,
                scale=self.scale,
                spatial_dims=self.spatial_dims,
                on_progress=self.on_progress,
                blend=self.tile_blend,
            )
        return y[(..., *[slice(0, length * self.scale) for length in spatial])]

    def enhance_tensor(self, x: Tensor) -> Tensor:
        """Enhance ``(N, C, *spatial)`` float in [0, 1]; returns float32 on ``x``'s device, not clipped.

        Channels are adapted to ``model.in_channels``: a 1-channel model runs on each channel separately
        (channels become batch items); a multi-channel model on a 1-channel input gets the channel replicated
        and its output averaged back to one channel. With tiling, the full-size buffers stay on ``x``'s device
        and only tiles visit the model's device, so a CPU tensor bounds GPU memory by the tile size.
        The result is an inference tensor (made under :func:`torch.inference_mode`): no autograd through it.
        """
        if x.ndim != self.spatial_dims + 2:
            raise EnhanceKitError(
                f"expected (N, C, ...) with {self.spatial_dims} spatial dims, got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise EnhanceKitError(f"expected a float tensor in [0, 1], got {x.dtype}")
        with torch.inference_mode():
            home = x.device
            x = x.float()
            n, c, *spatial = x.shape
            if self.in_channels is None or self.in_channels == c:
                y = self._run(x)
            elif self.in_channels == 1:
                y = self._run(x.reshape(n * c, 1, *spatial))
                y = y.reshape(n, -1, *y.shape[2:])
            elif c == 1:
                y = self._run(x.expand(n, self.in_channels, *spatial)).mean(dim=1, keepdim=True)
            else:
                raise EnhanceKitError(f"model expects {self.in_channels} channel(s), the input has {c}")
            return y.to(home)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Enhance an ``H x W x C`` (or ``H x W``) image, or a ``D x H x W`` (or ``D x H x W x C``) volume.

        The input is float in [0, 1]; the output is float32 with the same layout (channel axis present
        exactly when the input had one), sides multiplied by ``scale``, values not clipped.
        """
        image = np.asarray(image)
        if not np.issubdtype(image.dtype, np.floating):
            raise EnhanceKitError(
                f"expected a float image in [0, 1], got dtype {image.dtype} (scale integer images to [0, 1])"
            )
        dims = self.spatial_dims
        if image.ndim not in (dims, dims + 1):
            layout = "H x W [x C]" if dims == 2 else "D x H x W [x C]"
            raise EnhanceKitError(f"expected an array of shape {layout}, got {image.shape}")
        has_channels = image.ndim == dims + 1
        array = np.ascontiguousarray(image if has_channels else image[..., None], dtype=np.float32)
        x = torch.from_numpy(array).movedim(-1, 0)[None]
        y = self.enhance_tensor(x)[0].movedim(0, -1).cpu().numpy()
        return np.ascontiguousarray(y if has_channels else y[..., 0])
