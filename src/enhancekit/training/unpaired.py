"""Unpaired GAN training: UEGAN (one generator, quality / consistency / identity losses) and CycleGAN (two
generators, cycle and identity losses), with image pools whose state is checkpointed.

Batches are ``(low, high)`` from :class:`~enhancekit.data.datasets.UnpairedImageDataset`: two unrelated
patches. Validation (paired, optional) scores ``model`` (the low -> high generator) like every other task.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.losses.adversarial import AdversarialLoss
from enhancekit.training.optim import build_optimizer, build_scheduler
from enhancekit.training.tasks import RestorationTask


class ImagePool:
    """The history buffer of Shrivastava et al. (CVPR 2017) as CycleGAN and UEGAN use it: the discriminator
    sees generated images from earlier steps too, which damps oscillation. Once ``size`` images are stored,
    each new image is, with probability 1/2, swapped for a random stored one. ``state_dict`` holds the
    images and the random generator, so a resumed run draws exactly what the uninterrupted one would."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Images for the discriminator: this batch, some of its images swapped for stored ones."""
        if self.size <= 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image.cpu().clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                slot = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[slot].to(image.device))
                self.images[slot] = image.cpu().clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "images": [i.clone() for i in self.images],
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.size = int(state["size"])
        self.images = [i.clone() for i in state["images"]]
        self.generator.set_state(state["rng"])


def multiscale_l1(output: torch.Tensor, target: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Mean L1 over ``scales`` dyadic scales (x1, x1/2, ...): UEGAN's identity loss."""
    total = F.l1_loss(output, target)
    for _ in range(1, scales):
        output, target = F.avg_pool2d(output, 2), F.avg_pool2d(target, 2)
        total = total + F.l1_loss(output, target)
    return total / scales


class UnpairedGANTask(RestorationTask):
    """Shared machinery: manual optimisation with one generator and one discriminator optimiser, image
    pools saved in checkpoints, schedules stepped once per epoch after validation."""

    pool_names: tuple[str, ...] = ()

    def __init__(
        self,
        model: nn.Module,
        *,
        adversarial_loss: AdversarialLoss,
        discriminator_optimizer: Mapping[str, Any],
        pool_size: int = 50,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, None, **kwargs)
        self.automatic_optimization = False
        self.adversarial_loss = adversarial_loss
        self.discriminator_optimizer_spec = dict(discriminator_optimizer)
        self.pools = {name: ImagePool(pool_size, seed + i) for i, name in enumerate(self.pool_names)}

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["image_pools"] = {name: pool.state_dict() for name, pool in self.pools.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, state in checkpoint.get("image_pools", {}).items():
            self.pools[name].load_state_dict(state)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        monitored = self.trainer.callback_metrics.get(f"val/{self.monitor}")
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if monitored is not None:
                    scheduler.step(monitored)
            else:
                scheduler.step()

    def configure_optimizers(self) -> Any:
        opt_g = build_optimizer(self.generator_parameters(), self.optimizer_spec)
        opt_d = build_optimizer(self.discriminator_parameters(), self.discriminator_optimizer_spec)
        schedulers = [
            build_scheduler(o, self.scheduler_spec, self.trainer.max_epochs) for o in (opt_g, opt_d)
        ]
        return [opt_g, opt_d], [s for s in schedulers if s is not None]


class UEGANTask(UnpairedGANTask):
    """UEGAN's objective (Ni et al., IEEE TIP 2020).

    - Discriminator: the adversarial loss (relativistic hinge in UEGAN) on real high-quality patches vs
      pooled enhanced low-quality patches.
    - Generator: ``quality * adversarial + consistency * content(G(low), low) + identity * L1_ms(G(high),
      high)``; ``content`` is VGG19 feature distance (UEGAN's, when the weights are available) or the
      weight-free :class:`~enhancekit.losses.ssim.StructureLoss`.
    """

    pool_names = ("fake_high",)

    def __init__(
        self,
        model: nn.Module,
        discriminator: nn.Module,
        content_loss: nn.Module,
        *,
        quality_weight: float = 0.1,
        consistency_weight: float = 1.0,
        identity_weight: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.discriminator = discriminator
        self.content_loss = content_loss
        self.quality_weight = quality_weight
        self.consistency_weight = consistency_weight
        self.identity_weight = identity_weight

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def generate_both(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """G(low) and G(high), from one forward pass when the crops have the same shape.

        With batch norm in the generator (UEGAN's), a low-only batch and a high-only batch would each be
        normalised by their own statistics, which removes exactly the global brightness and contrast
        difference the generator must see to enhance a poor image and leave a good one alone. One joint batch
        shares the statistics, as inference's running statistics do.
        """
        if low.shape[1:] != high.shape[1:]:
            return self.model(low), self.model(high)
        enhanced, high_through = self.model(torch.cat([low, high])).split([low.shape[0], high.shape[0]])
        return enhanced, high_through

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        low, high = batch
        opt_g, opt_d = self.optimizers()
        enhanced, high_through = self.generate_both(low, high)

        d_loss = self.adversarial_loss.discriminator(
            self.discriminator(high), self.discriminator(self.pools["fake_high"].query(enhanced))
        )
        self.step(opt_d, d_loss)

        relativistic = self.adversarial_loss.kind.startswith("relativistic")
        with torch.no_grad():
            real_logits = self.discriminator(high) if relativistic else None
        quality = self.adversarial_loss.generator(self.discriminator(enhanced), real_logits)
        consistency = self.content_loss(enhanced, low)
        identity = multiscale_l1(high_through, high)
        total = (
            self.quality_weight * quality
            + self.consistency_weight * consistency
            + self.identity_weight * identity
        )
        self.step(opt_g, total)
        parts = {"d_loss": d_loss.detach(), "quality": quality.detach(), "consistency": consistency.detach()}
        self._log_train(total.detach(), {**parts, "identity": identity.detach()}, low.shape[0])
        return total.detach()


class CycleGANTask(UnpairedGANTask):
    """CycleGAN's objective (Zhu et al., ICCV 2017): generators low -> high (``model``, the one exported) and
    high -> low, a discriminator per domain, LSGAN adversarial terms, cycle consistency (L1, weight
    ``cycle_weight``) and identity (L1, weight ``identity_weight * cycle_weight``), pools per domain."""

    pool_names = ("fake_high", "fake_low")

    def __init__(
        self,
        model: nn.Module,
        inverse: nn.Module,
        discriminator_high: nn.Module,
        discriminator_low: nn.Module,
        *,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.inverse = inverse
        self.discriminator_high = discriminator_high
        self.discriminator_low = discriminator_low
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.model.parameters(), self.inverse.parameters())

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.discriminator_high.parameters(), self.discriminator_low.parameters())

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        low, high = batch
        opt_g, opt_d = self.optimizers()
        adv = self.adversarial_loss
        fake_high, fake_low = self.model(low), self.inverse(high)
        cycle = F.l1_loss(self.inverse(fake_high), low) + F.l1_loss(self.model(fake_low), high)
        identity = F.l1_loss(self.model(high), high) + F.l1_loss(self.inverse(low), low)
        g_adv = adv.generator(self.discriminator_high(fake_high)) + adv.generator(
            self.discriminator_low(fake_low)
        )
        total = g_adv + self.cycle_weight * (cycle + self.identity_weight * identity)
        self.step(opt_g, total)

        d_loss = adv.discriminator(
            self.discriminator_high(high), self.discriminator_high(self.pools["fake_high"].query(fake_high))
        ) + adv.discriminator(
            self.discriminator_low(low), self.discriminator_low(self.pools["fake_low"].query(fake_low))
        )
        self.step(opt_d, d_loss)
        parts = {"d_loss": d_loss.detach(), "adversarial": g_adv.detach(), "cycle": cycle.detach()}
        self._log_train(total.detach(), {**parts, "identity": identity.detach()}, low.shape[0])
        return total.detach()
