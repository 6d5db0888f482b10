"""Weighted sum of loss terms, built from a recipe.

A recipe lists terms, e.g.::

    loss:
      - {name: mse, weight: 1.0}
      - {name: ssim, weight: 0.5}
      - {name: l1, weight: 1.0, squash: sigmoid}

``squash`` maps a term's value before weighting (``sigmoid`` reproduces recipes that squash unbounded terms
into (0, 1)). Each term's value is reported separately so logs show what the optimiser trades off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.losses.adl import HistogramLoss, PyramidTexturalLoss
from enhancekit.losses.perceptual import PerceptualLoss
from enhancekit.losses.pixel import CharbonnierLoss
from enhancekit.losses.ssim import SSIMLoss, StructureLoss

LOSS_TERMS: dict[str, Callable[..., nn.Module]] = {
    "l1": nn.L1Loss,
    "mse": nn.MSELoss,
    "charbonnier": CharbonnierLoss,
    "ssim": SSIMLoss,
    "vgg": PerceptualLoss,
    "pyramid": PyramidTexturalLoss,
    "histogram": HistogramLoss,
    "structure": StructureLoss,
}

SQUASHES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda value: value,
    "sigmoid": torch.sigmoid,
}


def register_loss_term(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make a loss term available to recipes by name (later systems add perceptual, pyramid, ...)."""
    if name in LOSS_TERMS:
        raise ValueError(f"loss term {name!r} is already registered")
    LOSS_TERMS[name] = factory


class CompositeLoss(nn.Module):
    """``sum_i weight_i * squash_i(term_i(output, target))``; ``forward`` returns (total, parts)."""

    def __init__(self, terms: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        if not terms:
            raise EnhanceKitError("the loss needs at least one term")
        self.names: list[str] = []
        self.weights: list[float] = []
        self.squashes: list[str] = []
        modules = []
        for spec in terms:
            spec = dict(spec)
            name = spec.pop("name", None)
            if name not in LOSS_TERMS:
                raise EnhanceKitError(f"unknown loss term {name!r}; available: {', '.join(LOSS_TERMS)}")
            squash = spec.pop("squash", "none")
            if squash not in SQUASHES:
                raise EnhanceKitError(f"unknown squash {squash!r}; available: {', '.join(SQUASHES)}")
            weight = float(spec.pop("weight", 1.0))
            if not weight >= 0:
                # A negative weight would train the model to make the term worse.
                raise EnhanceKitError(f"loss term {name!r}: weight must not be negative, got {weight}")
            self.weights.append(weight)
            self.squashes.append(squash)
            self.names.append(name)
            try:
                modules.append(LOSS_TERMS[name](**spec))
            except TypeError as exc:
                raise EnhanceKitError(f"loss term {name!r}: {exc}") from None
        self.terms = nn.ModuleList(modules)

    def forward(
        self, output: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts: dict[str, torch.Tensor] = {}
        total = output.new_zeros(())
        for name, weight, squash, term in zip(
            self.names, self.weights, self.squashes, self.terms, strict=True
        ):
            value = term(output, target)
            parts[name] = value.detach()
            total = total + weight * SQUASHES[squash](value)
        return total, parts
