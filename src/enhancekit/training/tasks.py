"""Lightning modules of the training engine: paired restoration, and the same with an adversary.

Both validate every epoch with the task's metrics (``enhancekit.metrics``) on whole validation images, so
the monitored score is the one ``enhancekit eval`` reports.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.inference.engine import pad_to_multiple
from enhancekit.losses.adversarial import AdversarialLoss
from enhancekit.losses.composite import CompositeLoss
from enhancekit.metrics import Metric
from enhancekit.training.optim import build_optimizer, build_scheduler


def forward_padded(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for any input size: padded to the model's ``size_multiple``, the output cropped back."""
    scale = int(getattr(model, "scale", 1))
    y = model(pad_to_multiple(x, int(getattr(model, "size_multiple", 1))))
    return y[(..., *(slice(0, n * scale) for n in x.shape[2:]))]


def check_loss_scales(model: nn.Module, loss_scales: Sequence[float] | None) -> list[float] | None:
    """Validated per-scale loss weights (finest first) for a model with multi-scale outputs, or None."""
    if loss_scales is None:
        return None
    weights = [float(w) for w in loss_scales]
    if not weights or any(w < 0 for w in weights) or not any(weights):
        raise EnhanceKitError(f"loss_scales must be non-negative weights, not all zero; got {weights}")
    if "all_scales" not in inspect.signature(model.forward).parameters:
        raise EnhanceKitError(
            f"loss_scales needs a model with multi-scale outputs (forward(x, all_scales=True)); "
            f"{type(model).__name__} has one output"
        )
    return weights


def downsample_like(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``target`` average-pooled to ``output``'s spatial size (a power-of-two reduction), 2D or 3D."""
    if target.shape[2:] == output.shape[2:]:
        return target
    factor = target.shape[-1] // output.shape[-1]
    pool = F.avg_pool2d if target.dim() == 4 else F.avg_pool3d
    return pool(target, factor)[(..., *(slice(0, n) for n in output.shape[2:]))]


class RestorationTask(L.LightningModule):
    """Supervised image-to-image training of ``model`` on (input, target) batches with a composite loss.

    With ``loss_scales`` (ADL's deep supervision) the model returns outputs at x1, x1/2, x1/4, ...; each is
    compared with the target average-pooled to its size, and the loss is the weighted sum over scales.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: CompositeLoss | None,
        *,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any],
        metrics: Sequence[Metric],
        color: str = "rgb",
        crop: int = 0,
        monitor: str = "psnr",
        loss_scales: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.loss_scales = check_loss_scales(model, loss_scales)
        self.optimizer_spec = dict(optimizer)
        self.scheduler_spec = dict(scheduler)
        self.metrics = list(metrics)
        self.color = color
        self.crop = crop
        self.monitor = monitor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def supervised_loss(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The full-resolution output, the loss and its parts (per scale when ``loss_scales`` is set)."""
        if self.loss_scales is None:
            outputs = self.model(inputs)
            total, parts = self.loss(outputs, targets)
            return outputs, total, dict(parts)
        scaled = self.model(inputs, all_scales=True)
        if len(scaled) < len(self.loss_scales):
            raise EnhanceKitError(
                f"loss_scales has {len(self.loss_scales)} weights, the model gives {len(scaled)} outputs"
            )
        total = scaled[0].new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for level, (weight, output) in enumerate(zip(self.loss_scales, scaled, strict=False)):
            value, level_parts = self.loss(output, downsample_like(targets, output))
            total = total + weight * value
            suffix = f"@x1/{2**level}" if level else ""
            parts.update({f"{name}{suffix}": v for name, v in level_parts.items()})
        return scaled[0], total, parts

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        _, total, parts = self.supervised_loss(inputs, targets)
        self._log_train(total, parts, inputs.shape[0])
        return total

    def _log_train(
        self, total: torch.Tensor, parts: Mapping[str, torch.Tensor], batch_size: int, prefix: str = "train"
    ) -> None:
        self.log(f"{prefix}/loss", total.detach(), prog_bar=True, batch_size=batch_size, sync_dist=False)
        for name, value in parts.items():
            self.log(f"{prefix}/{name}", value, batch_size=batch_size)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        outputs = forward_padded(self.model, inputs).clamp(0, 1)
        for output, target in zip(outputs, targets, strict=True):
            # Images as H x W x C; gray volumes as D x H x W, as the volume metrics take them.
            out_np, tgt_np = (
                (t.float()[0] if t.dim() == 4 else t.float().movedim(0, -1)).cpu().numpy()
                for t in (output, target)
            )
            for metric in self.metrics:
                value = metric.fn(out_np, tgt_np, color=self.color, crop=self.crop)
                self.log(
                    f"val/{metric.name}",
                    float(np.nan_to_num(value, posinf=100.0)),
                    on_epoch=True,
                    prog_bar=metric.name == self.monitor,
                    batch_size=1,
                    sync_dist=True,
                )

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.optimizer_spec)
        scheduler = build_scheduler(optimizer, self.scheduler_spec, self.trainer.max_epochs)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": f"val/{self.monitor}"},
        }

    def on_validation_epoch_end(self) -> None:
        # The plateau schedule steps here, before the checkpoints are written at the end of validation:
        # Lightning would step it after them, and does not replay that step when a run resumes.
        if self.trainer.sanity_checking:
            return
        monitored = self.trainer.callback_metrics.get(f"val/{self.monitor}")
        for config in self.trainer.lr_scheduler_configs:
            if (
                isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
                and monitored is not None
            ):
                config.scheduler.step(monitored)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            super().lr_scheduler_step(scheduler, metric)


class AdversarialTask(RestorationTask):
    """Restoration with a discriminator: two optimisers, alternating updates (manual optimisation).

    Training runs in three phases (ADL's schedule; any of the first two may be empty):

    1. ``warmup_epochs`` of generator warm-up: the generator trains on the loss alone;
    2. ``discriminator_warmup_epochs``: the discriminator trains on real targets vs the (frozen) generator's
       outputs, so the adversarial signal is informative when it starts;
    3. adversarial: each step updates the discriminator on real targets vs detached outputs, then the
       generator on ``loss + weight * adversarial``, whose gradient reaches the generator through the
       discriminator's judgement of its outputs.

    Each optimiser's schedule steps once per epoch in which that optimiser trained (a plateau schedule on the
    monitored validation metric).
    """

    def __init__(
        self,
        model: nn.Module,
        discriminator: nn.Module,
        loss: CompositeLoss,
        *,
        adversarial_loss: AdversarialLoss,
        adversarial_weight: float,
        warmup_epochs: int,
        discriminator_optimizer: Mapping[str, Any],
        discriminator_warmup_epochs: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, loss, **kwargs)
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.adversarial_loss = adversarial_loss
        self.adversarial_weight = adversarial_weight
        self.warmup_epochs = warmup_epochs
        self.discriminator_warmup_epochs = discriminator_warmup_epochs
        self.discriminator_optimizer_spec = dict(discriminator_optimizer)

    def phase_of(self, epoch: int) -> str:
        """``"generator"``, ``"discriminator"`` or ``"adversarial"``: what trains in ``epoch``."""
        if epoch < self.warmup_epochs:
            return "generator"
        if epoch < self.warmup_epochs + self.discriminator_warmup_epochs:
            return "discriminator"
        return "adversarial"

    @property
    def phase(self) -> str:
        """The current epoch's phase (:meth:`phase_of`)."""
        return self.phase_of(self.current_epoch)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        opt_g, opt_d = self.optimizers()
        phase = self.phase
        if phase == "discriminator":
            # Frozen means its batch-norm statistics too: in training mode they would drift with every batch.
            self.model.eval()
            with torch.no_grad():
                outputs = self.model(inputs)
            self.model.train()
        else:
            outputs, total, parts = self.supervised_loss(inputs, targets)

        if phase != "generator":
            d_loss = self.adversarial_loss.discriminator(
                self.discriminator(targets), self.discriminator(outputs.detach())
            )
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
            self.log("train/d_loss", d_loss.detach(), prog_bar=True, batch_size=inputs.shape[0])
            if phase == "discriminator":
                return d_loss.detach()

        if phase == "adversarial":
            real_logits = None
            if self.adversarial_loss.kind.startswith("relativistic"):
                # The generator's step only needs the discriminator's view of the reals as a reference.
                with torch.no_grad():
                    real_logits = self.discriminator(targets)
            g_adv = self.adversarial_loss.generator(self.discriminator(outputs), real_logits)
            parts["adversarial"] = g_adv.detach()
            total = total + self.adversarial_weight * g_adv
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opt_g.step()
        self._log_train(total, parts, inputs.shape[0])
        return total

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        monitored = self.trainer.callback_metrics.get(f"val/{self.monitor}")
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        trained = {"generator": (True, False), "discriminator": (False, True), "adversarial": (True, True)}
        # Each schedule follows its own optimiser's training epochs.
        schedulers = [s for s, used in zip(schedulers, trained[self.phase], strict=False) if used]
        for scheduler in schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if monitored is not None:
                    scheduler.step(monitored)
            else:
                scheduler.step()

    def configure_optimizers(self) -> Any:
        max_epochs = self.trainer.max_epochs
        opt_g = build_optimizer(self.model.parameters(), self.optimizer_spec)
        opt_d = build_optimizer(self.discriminator.parameters(), self.discriminator_optimizer_spec)
        schedulers = [
            s
            for s in (build_scheduler(o, self.scheduler_spec, max_epochs) for o in (opt_g, opt_d))
            if s is not None
        ]
        return [opt_g, opt_d], schedulers
