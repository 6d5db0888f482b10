"""Optimisers and learning-rate schedules named in recipes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from enhancekit.errors import EnhanceKitError

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``{name: adam|adamw|sgd, lr, ...}``: remaining keys are the optimiser's keyword arguments."""
    spec = dict(spec)
    name = spec.pop("name", "adam")
    if name not in _OPTIMIZERS:
        raise EnhanceKitError(f"unknown optimizer {name!r}; available: {', '.join(_OPTIMIZERS)}")
    lr = spec.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or not lr >= 0):
        raise EnhanceKitError(f"the learning rate must be a number >= 0, got {lr!r}")
    if "betas" in spec:
        spec["betas"] = tuple(spec["betas"])
    try:
        return _OPTIMIZERS[name](params, **spec)
    except (TypeError, ValueError) as exc:  # a mistyped argument or a value the optimiser rejects
        raise EnhanceKitError(f"optimizer {name}: {exc}") from exc


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """An epoch-wise schedule, or None.

    - ``plateau``: ReduceLROnPlateau on the monitored validation metric (``factor``, ``patience``,
      ``min_lr``).
    - ``linear_decay``: constant until ``start_epoch``, then linear to zero at ``max_epochs`` (as CycleGAN
      and UEGAN schedule it).
    - ``step``: multiply by ``gamma`` every ``step_size`` epochs.
    """
    spec = dict(spec)
    name = spec.pop("name", "none")
    if name == "none":
        return None
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=spec.pop("mode", "max"),
            factor=spec.pop("factor", 0.5),
            patience=spec.pop("patience", 5),
            min_lr=spec.pop("min_lr", 0.0),
        )
    if name == "linear_decay":
        start = int(spec.pop("start_epoch"))
        span = max(1, max_epochs - start)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 - max(0, epoch - start) / span)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=spec.pop("step_size"), gamma=spec.pop("gamma", 0.5)
        )
    raise EnhanceKitError(f"unknown scheduler {name!r}; available: none, plateau, linear_decay, step")
