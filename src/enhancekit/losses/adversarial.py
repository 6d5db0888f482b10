"""Adversarial objectives for GAN training, each with its generator and discriminator side.

Discriminators may return one logit tensor or a list of them (multi-scale); the loss is summed over scales.

- ``vanilla``: the non-saturating GAN of Goodfellow et al. 2014 (BCE with logits; the generator maximises
  log D(fake)).
- ``lsgan``: least squares GAN (Mao et al., ICCV 2017), as CycleGAN uses.
- ``hinge``: hinge loss (Lim & Ye 2017; Miyato et al. 2018).
- ``relativistic_hinge``: relativistic average hinge (Jolicoeur-Martineau, ICLR 2019), as UEGAN uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from enhancekit.errors import EnhanceKitError

Logits = torch.Tensor | Sequence[torch.Tensor]
KINDS = ("vanilla", "lsgan", "hinge", "relativistic_hinge")


def _scales(logits: Logits) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


class AdversarialLoss:
    """Generator and discriminator losses of one GAN objective (see the module docstring)."""

    def __init__(self, kind: str = "vanilla") -> None:
        if kind not in KINDS:
            raise EnhanceKitError(f"unknown adversarial loss {kind!r}; available: {', '.join(KINDS)}")
        self.kind = kind

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        """Loss of the discriminator given its logits on real and (detached) fake samples."""
        return sum(self._d_one(r, f) for r, f in zip(_scales(real), _scales(fake), strict=True))

    def generator(self, fake: Logits, real: Logits | None = None) -> torch.Tensor:
        """Loss of the generator given the discriminator's logits on fakes (and on reals if relativistic)."""
        fakes = _scales(fake)
        reals = _scales(real) if real is not None else [None] * len(fakes)
        return sum(self._g_one(f, r) for f, r in zip(fakes, reals, strict=True))

    def _d_one(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        if self.kind == "lsgan":
            return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
        if self.kind == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return F.relu(1 - (real - fake.mean())).mean() + F.relu(1 + (fake - real.mean())).mean()

    def _g_one(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.kind == "lsgan":
            return ((fake - 1) ** 2).mean()
        if self.kind == "hinge":
            return -fake.mean()
        if real is None:
            raise ValueError("the relativistic loss needs the discriminator's logits on real samples")
        return F.relu(1 + (real - fake.mean())).mean() + F.relu(1 - (fake - real.mean())).mean()
