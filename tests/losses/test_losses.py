"""Loss terms: the training SSIM agrees with the metric, composites weight and squash their terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enhancekit.errors import EnhanceKitError
from enhancekit.losses import CompositeLoss, ssim_torch
from enhancekit.losses.adversarial import AdversarialLoss
from enhancekit.metrics import ssim


def test_torch_ssim_matches_metric(butterfly):
    rng = np.random.default_rng(1)
    output = np.clip(butterfly + rng.normal(0, 0.05, butterfly.shape), 0, 1)
    as_tensor = lambda a: torch.from_numpy(a.transpose(2, 0, 1)[None].copy())  # noqa: E731
    value = ssim_torch(as_tensor(output), as_tensor(butterfly)).item()
    assert value == pytest.approx(ssim(output, butterfly), abs=1e-6)


def test_composite_weights_squash_and_gradient():
    torch.manual_seed(0)
    output = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32)
    loss = CompositeLoss(
        [
            {"name": "mse", "weight": 0.8, "squash": "sigmoid"},
            {"name": "ssim", "weight": 0.5},
            {"name": "l1", "weight": 2.0},
        ]
    )
    total, parts = loss(output, target)
    expected = (
        0.8 * torch.sigmoid(((output - target) ** 2).mean())
        + 0.5 * (1 - ssim_torch(output, target))
        + 2.0 * (output - target).abs().mean()
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"mse", "ssim", "l1"}
    total.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_composite_rejects_unknown_terms():
    with pytest.raises(EnhanceKitError, match="unknown loss term"):
        CompositeLoss([{"name": "lpips"}])
    with pytest.raises(EnhanceKitError, match="unknown squash"):
        CompositeLoss([{"name": "l1", "squash": "tanh"}])


@pytest.mark.parametrize(
    "kind, real, fake",
    [("vanilla", 3.0, -3.0), ("lsgan", 1.0, 0.0), ("hinge", 3.0, -3.0), ("relativistic_hinge", 3.0, -3.0)],
)
def test_adversarial_losses_push_in_the_right_direction(kind, real, fake):
    adv = AdversarialLoss(kind)
    confident = (torch.full((4, 1), real), torch.full((4, 1), fake))  # D separates real from fake
    undecided = (real + fake) / 2
    fooled = (torch.full((4, 1), undecided), torch.full((4, 1), undecided))
    # The discriminator's loss is lower when it separates; the generator's is higher when it is caught.
    assert adv.discriminator(*confident) < adv.discriminator(*fooled)
    assert adv.generator(confident[1], confident[0]) > adv.generator(fooled[1], fooled[0])
    multi = adv.discriminator([confident[0]] * 2, [confident[1]] * 2)
    assert multi.item() == pytest.approx(2 * adv.discriminator(*confident).item())


@pytest.mark.parametrize("name", ["ssim", "structure"])
def test_ssim_losses_on_patches_smaller_than_the_window_are_one_line_errors(name):
    from enhancekit.losses.ssim import SSIMLoss, StructureLoss

    loss = SSIMLoss() if name == "ssim" else StructureLoss()
    small = torch.rand(2, 3, 10, 32)
    with pytest.raises(EnhanceKitError, match="at least 11x11 pixels, got 10x32"):
        loss(small, small)
    assert float(loss(torch.rand(2, 3, 11, 11), torch.rand(2, 3, 11, 11))) > 0
