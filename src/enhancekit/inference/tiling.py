"""Tiled (sliding-window) inference for images and volumes larger than memory allows in one pass.

Default blending (``blend="cut"``): hard cut at the middle of each overlap. Along every axis, consecutive
tiles overlap by at least ``overlap`` pixels; each output pixel is taken from exactly one tile: the one on its
side of the overlap's midpoint. The kept part ("core") of a tile therefore stays at least ``overlap // 2``
pixels away from every tile edge that is not an image border, so for a fully convolutional model whose
receptive-field radius ``r`` satisfies ``r <= overlap / 2`` every kept pixel sees exactly the inputs (and, at
image borders, exactly the padding) it would see in an untiled pass: the tiled result equals the untiled one
up to the float rounding of differently sized convolutions. The hard cut needs no extra buffer and writes
every output pixel once.

Feathered blending (``blend="ramp"``): across a band of ``overlap`` pixels centred on each of those cuts,
the two tiles are mixed with weights that change linearly from one to the other (normalised per pixel; a
tile's weight is the product of its per-axis weights); outside the bands it equals the hard cut. It is for
models whose receptive field is far wider than any affordable overlap (deep UNets) or that are not local at
all (global pooling, normalisation over the input): there the two tiles disagree at a cut, and a hard cut
turns the disagreement into a step along a straight line, a visible seam, while the ramp spreads it across
the band. It is not exact even for local models with ``r <= overlap / 2`` (band pixels up to
``overlap / 2`` past the cut come from the neighbouring tile's margin), which is why it is opt-in; larger
tiles remain the way to get closer to the untiled result. The grid of tiles is the product of per-axis
spans, so the per-pixel normaliser is the product of per-axis sums and no full-size weight buffer is needed:
only the zero-initialised output accumulates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from enhancekit.errors import EnhanceKitError

BLENDS = ("cut", "ramp")


def check_tile_blend(blend: str) -> None:
    """Raise :class:`EnhanceKitError` unless ``blend`` is one of :data:`BLENDS`."""
    if blend not in BLENDS:
        raise EnhanceKitError(f"unknown tile blend {blend!r}; use one of {', '.join(BLENDS)}")


def check_tile_overlap(tile: int, overlap: int) -> None:
    """Raise :class:`EnhanceKitError` unless ``tile`` and ``overlap`` allow tiles to advance."""
    if overlap < 0:
        raise EnhanceKitError(f"tile overlap must be >= 0, got {overlap}")
    if tile <= overlap:
        raise EnhanceKitError(f"tile size ({tile}) must be larger than the tile overlap ({overlap})")


class _Span(NamedTuple):
    """One tile along one axis: it reads ``[start, start + size)`` and contributes ``[lo, hi)``."""

    start: int
    lo: int
    hi: int


def _spans(length: int, size: int, step: int) -> list[_Span]:
    """Tiles along one axis, the last aligned to the end so none is partial; overlaps cut at midpoints."""
    starts = [0]
    while starts[-1] + size < length:
        starts.append(min(starts[-1] + step, length - size))
    cuts = [start + (prev + size - start) // 2 for prev, start in itertools.pairwise(starts)]
    return [_Span(*span) for span in zip(starts, [0, *cuts], [*cuts, length], strict=True)]


def _ramps(spans: list[_Span], size: int, overlap: int, scale: int) -> dict[_Span, Tensor]:
    """Per-tile feathering weights along one axis, in output pixels, normalised to sum to 1 at every pixel.

    Each weight ramps linearly across ``overlap`` pixels centred on the tile's hard cuts. Every tile advances
    by at most ``size - overlap``, so the ramp fits inside both tiles; where the end-aligned last tile
    overlaps more, the extra pixels near tile edges (the least reliable ones) keep zero weight. The tile that
    owns a pixel under the hard cut weighs at least 1/2 there, so no normaliser is zero; a width of at least
    one pixel makes ``overlap=0`` the hard cut itself.
    """
    side = size * scale
    width = max(overlap * scale, 1)
    centre = torch.arange(side, dtype=torch.float64) + 0.5
    profiles = {}
    for k, span in enumerate(spans):
        weight = torch.ones(side, dtype=torch.float64)
        if k > 0:
            weight = torch.minimum(weight, (centre - (span.lo - span.start) * scale) / width + 0.5)
        if k + 1 < len(spans):
            weight = torch.minimum(weight, ((span.hi - span.start) * scale - centre) / width + 0.5)
        profiles[span] = weight.clamp(min=0)
    total = torch.zeros(spans[-1].hi * scale, dtype=torch.float64)
    for span, weight in profiles.items():
        total[span.start * scale : span.start * scale + side] += weight
    return {
        span: weight / total[span.start * scale : span.start * scale + side]
        for span, weight in profiles.items()
    }


def _tile_weight(profiles: list[Tensor], like: Tensor) -> Tensor:
    """Outer product of one tile's per-axis weights, broadcastable to the tile, on ``like``'s device."""
    dims = len(profiles)
    weight = profiles[0].reshape(-1, *[1] * (dims - 1))
    for axis, profile in enumerate(profiles[1:], start=1):
        weight = weight * profile.reshape(-1, *[1] * (dims - 1 - axis))
    return weight.to(like.device, like.dtype)


def _layout(x: Tensor) -> torch.memory_format:
    """The input's memory format, for the output buffer.

    Numpy ``H x W x C`` images arrive channels-last; an output in the same layout converts back to numpy
    without another full-size copy.
    """
    channels_last = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
    return channels_last if x.is_contiguous(memory_format=channels_last) else torch.contiguous_format


def tiled_forward(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    tile: int,
    overlap: int,
    scale: int = 1,
    spatial_dims: int = 2,
    batch_tiles: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    blend: str = "cut",
) -> Tensor:
    """Apply ``fn`` to ``x`` tile by tile and stitch the outputs (see the module docstring for the scheme).

    Args:
        fn: maps a batch of tiles ``(B, C, *tile_shape)`` to ``(B, C_out, *(tile_shape * scale))``; it may run
            on another device than ``x`` (tiles are handed over as they are, outputs copied back).
        x: ``(N, C, *spatial)`` with ``spatial_dims`` spatial axes.
        tile: tile side in input pixels, the same on every axis; clamped to the image where it is smaller.
        overlap: minimum overlap of neighbouring tiles; exact for receptive-field radius ``<= overlap / 2``.
        scale: output size / input size of ``fn``.
        spatial_dims: 2 for images, 3 for volumes.
        batch_tiles: how many tiles go through ``fn`` per call (the ``N`` images of ``x`` each count once).
        on_progress: called with (tiles done, tiles in all) after every call of ``fn``, for progress bars.
        blend: ``"cut"`` (hard cut at the overlap midpoints, exact for local models) or ``"ramp"`` (linear
            cross-fade over ``overlap`` pixels centred on those cuts; hides the seams of models with a wide or
            global receptive field).

    Returns:
        ``(N, C_out, *(spatial * scale))`` on ``x``'s device with ``x``'s dtype and memory layout; only this
        buffer, the input and one batch of tiles are alive at once, so memory beyond them grows with ``tile``.
    """
    check_tile_overlap(tile, overlap)
    check_tile_blend(blend)
    if batch_tiles < 1:
        raise EnhanceKitError(f"batch_tiles must be >= 1, got {batch_tiles}")
    if x.ndim != spatial_dims + 2:
        raise EnhanceKitError(
            f"expected a tensor with {spatial_dims} spatial dims (N, C, ...), got shape {tuple(x.shape)}"
        )
    n = x.shape[0]
    spatial = x.shape[2:]
    sizes = [min(tile, length) for length in spatial]
    axes = [_spans(length, size, size - overlap) for length, size in zip(spatial, sizes, strict=True)]
    tiles = list(itertools.product(*axes))
    ramps = (
        [_ramps(spans, size, overlap, scale) for spans, size in zip(axes, sizes, strict=True)]
        if blend == "ramp"
        else []
    )
    expected = [size * scale for size in sizes]
    out: Tensor | None = None
    for first in range(0, len(tiles), batch_tiles):
        group = tiles[first : first + batch_tiles]
        inputs = [
            x[(..., *[slice(sp.start, sp.start + size) for sp, size in zip(spans, sizes, strict=True)])]
            for spans in group
        ]
        y = fn(inputs[0] if len(inputs) == 1 else torch.cat(inputs))
        if y.ndim != x.ndim or y.shape[0] != n * len(group) or list(y.shape[2:]) != expected:
            raise EnhanceKitError(
                f"model output {tuple(y.shape)} does not match {n * len(group)} tiles of "
                f"{tuple(sizes)} x scale {scale}; check the model's `scale` attribute"
            )
        if out is None:
            # Allocated lazily because the output channel count is only known from the model's output.
            shape = (n, y.shape[1], *[length * scale for length in spatial])
            out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=_layout(x))
            if ramps:
                out.zero_()  # ramp tiles accumulate; cut tiles overwrite every pixel
        for i, spans in enumerate(group):
            part = y[i * n : (i + 1) * n]
            if ramps:
                weight = _tile_weight([ramp[sp] for ramp, sp in zip(ramps, spans, strict=True)], out)
                dst = [
                    slice(sp.start * scale, (sp.start + size) * scale)
                    for sp, size in zip(spans, sizes, strict=True)
                ]
                out[(..., *dst)].addcmul_(part.to(out.device, out.dtype), weight)
            else:
                dst = [slice(sp.lo * scale, sp.hi * scale) for sp in spans]
                src = [slice((sp.lo - sp.start) * scale, (sp.hi - sp.start) * scale) for sp in spans]
                out[(..., *dst)].copy_(part[(..., *src)])
        if on_progress is not None:
            on_progress(first + len(group), len(tiles))
    assert out is not None  # the grid always has at least one tile
    return out
