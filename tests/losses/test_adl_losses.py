"""ADL loss terms: every pyramid level counts, the soft histogram is differentiable and position-blind."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from enhancekit.errors import EnhanceKitError
from enhancekit.losses import CompositeLoss
from enhancekit.losses.adl import HistogramLoss, PyramidTexturalLoss, soft_histogram

LOSSES = {
    "pyramid-laplacian": lambda: PyramidTexturalLoss(levels=3, kernel="laplacian"),
    "pyramid-sobel": lambda: PyramidTexturalLoss(levels=3, kernel="sobel", criterion="mse"),
    "histogram-triangular": lambda: HistogramLoss(bins=16),
    "histogram-gaussian": lambda: HistogramLoss(bins=16, sigma=0.05),
}
SHAPES = {"2d": (2, 3, 16, 16), "3d": (2, 1, 8, 8, 8)}


def pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator, dtype=torch.float64)
    output = (target + 0.2 * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return output, target


def shuffled(image: torch.Tensor) -> torch.Tensor:
    flat = image.flatten(2)
    permutation = torch.randperm(flat.shape[2], generator=torch.Generator().manual_seed(3))
    return flat[..., permutation].view_as(image)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("make", LOSSES.values(), ids=LOSSES.keys())
def test_zero_for_identical_positive_otherwise_with_gradient(make, shape):
    loss = make()
    output, target = pair(shape)
    assert loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-12)
    output.requires_grad_(True)
    value = loss(output, target)
    assert value.item() > 0
    value.backward()
    assert torch.isfinite(output.grad).all()
    assert output.grad.abs().sum() > 0


@pytest.mark.parametrize("sigma", [None, 0.05])
def test_histogram_gradient_matches_finite_differences(sigma):
    output, target = pair((1, 2, 4, 4), seed=1)
    loss = HistogramLoss(bins=8, sigma=sigma)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (output.requires_grad_(True),))


def test_histogram_loss_keeps_float32_precision_for_small_differences():
    generator = torch.Generator().manual_seed(4)
    target = torch.rand(1, 1, 32, 64, 64, generator=generator, dtype=torch.float64)
    output = (target + 0.01 * torch.randn(target.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    loss = HistogramLoss()
    exact = loss(output, target).item()
    assert 0 < exact < 1e-4
    assert loss(output.float(), target.float()).item() == pytest.approx(exact, rel=1e-3)


def laplacian_2d(image: torch.Tensor) -> torch.Tensor:
    stencil = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=image.dtype)
    weight = stencil.expand(image.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), weight, groups=image.shape[1])


def level_terms_2d(output: torch.Tensor, target: torch.Tensor, levels: int) -> list[torch.Tensor]:
    terms = []
    for level in range(levels):
        pooled = [F.avg_pool2d(x, 2**level) if level else x for x in (output, target)]
        terms.append((laplacian_2d(pooled[0]) - laplacian_2d(pooled[1])).abs().mean())
    return terms


def test_pyramid_is_the_sum_of_independent_levels():
    output, target = pair((2, 3, 32, 24))
    expected = level_terms_2d(output, target, levels=4)
    value = PyramidTexturalLoss(levels=4)(output, target)
    assert value.item() == pytest.approx(sum(term.item() for term in expected), rel=1e-12)
    # Neither a single level nor a partial sum would pass: every term is of the same order.
    assert min(term.item() for term in expected) > 0.01 * value.item()


def test_pyramid_3d_uses_the_six_neighbour_stencil():
    output, target = pair((1, 2, 8, 8, 8))
    stencil = torch.zeros(3, 3, 3, dtype=torch.float64)
    stencil[1, 1, 1] = -6.0
    for index in [(0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]:
        stencil[index] = 1.0
    weight = stencil.expand(2, 1, 3, 3, 3)

    def laplacian(x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(F.pad(x, (1,) * 6, mode="replicate"), weight, groups=2)

    expected = (
        sum(
            (laplacian(F.avg_pool3d(output, 2**level)) - laplacian(F.avg_pool3d(target, 2**level)))
            .abs()
            .mean()
            for level in range(1, 3)
        )
        + (laplacian(output) - laplacian(target)).abs().mean()
    )
    assert PyramidTexturalLoss(levels=3)(output, target).item() == pytest.approx(expected.item(), rel=1e-12)


def checkerboard(size: int, block: int) -> torch.Tensor:
    index = torch.arange(size) // block
    return ((index[:, None] + index[None, :]) % 2 * 2 - 1).to(torch.float64)


def test_changing_only_the_coarsest_level_changes_the_loss():
    # A strong pixel checkerboard and a strong 2x2-block checkerboard dominate the Laplacians of levels 0 and
    # 1, and are orthogonal there to content that is constant on 4x4 blocks; so two outputs that differ only
    # in that coarse content have equal level-0 and level-1 terms and differ at level 2 alone.
    fine = 20.0 * checkerboard(16, 1) + 4.0 * checkerboard(16, 2)
    coarse = [
        torch.rand(4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        for seed in (1, 2)
    ]
    outputs = [(fine + c.repeat_interleave(4, 0).repeat_interleave(4, 1))[None, None] for c in coarse]
    target = torch.zeros_like(outputs[0])
    loss = PyramidTexturalLoss(levels=3)
    terms = [loss.level_terms(output, target) for output in outputs]
    assert terms[0][0].item() == pytest.approx(terms[1][0].item(), rel=1e-12)
    assert terms[0][1].item() == pytest.approx(terms[1][1].item(), rel=1e-12)
    assert abs(terms[0][2].item() - terms[1][2].item()) > 0.1
    assert abs(loss(outputs[0], target).item() - loss(outputs[1], target).item()) > 0.1


@pytest.mark.parametrize("sigma", [None, 0.02])
def test_soft_histogram_of_a_constant_image_peaks_at_its_bin(sigma):
    # 0.33 lies in bin 3 of ten, off its centre, so the triangular kernel shares it with bin 2.
    image = torch.full((2, 3, 5, 5, 5), 0.33)
    histogram = soft_histogram(image, bins=10, sigma=sigma)
    assert histogram.shape == (2, 3, 10)
    assert torch.allclose(histogram.sum(dim=2), torch.ones(2, 3))
    assert (histogram.argmax(dim=2) == 3).all()
    centred = soft_histogram(torch.full((1, 1, 4, 4), 0.35), bins=10)
    assert centred[0, 0, 3].item() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_histogram_ignores_pixel_positions_but_pyramid_does_not(shape):
    output, target = pair(shape)
    histogram, pyramid = HistogramLoss(bins=16), PyramidTexturalLoss()
    moved = shuffled(output)
    assert histogram(moved, output).item() == pytest.approx(0.0, abs=1e-12)
    assert histogram(moved, target).item() == pytest.approx(histogram(output, target).item(), rel=1e-9)
    assert pyramid(moved, output).item() > 0.1


def test_terms_through_composite_loss():
    output, target = pair((2, 3, 16, 16))
    output.requires_grad_(True)
    loss = CompositeLoss(
        [{"name": "l1"}, {"name": "pyramid", "weight": 0.1}, {"name": "histogram", "weight": 0.1}]
    )
    total, parts = loss(output, target)
    expected = (
        (output - target).abs().mean()
        + 0.1 * PyramidTexturalLoss()(output, target)
        + 0.1 * HistogramLoss()(output, target)
    )
    assert set(parts) == {"l1", "pyramid", "histogram"}
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    total.backward()
    assert output.grad.abs().sum() > 0


def test_bad_arguments_and_inputs_are_reported():
    with pytest.raises(EnhanceKitError, match="edge kernel"):
        PyramidTexturalLoss(kernel="prewitt")
    with pytest.raises(EnhanceKitError, match="sigma"):
        HistogramLoss(sigma=0.0)
    with pytest.raises(EnhanceKitError, match="pyramid needs sizes"):
        PyramidTexturalLoss(levels=4)(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(EnhanceKitError, match="dimensions"):
        HistogramLoss()(torch.zeros(4, 4), torch.zeros(4, 4))
