"""Perceptual (VGG19 feature) loss term, named ``vgg`` in recipes."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from enhancekit.errors import EnhanceKitError
from enhancekit.models.vgg import VGG19Features
from enhancekit.pretrained import load_vgg19_features, random_vgg19_features

CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
}


class PerceptualLoss(nn.Module):
    """``criterion(phi(output), phi(target))`` with ``phi`` the ImageNet VGG19 features up to ``layer``:
    the feature reconstruction loss of Johnson, Alahi and Fei-Fei, "Perceptual Losses for Real-Time Style
    Transfer and Super-Resolution" (ECCV 2016), on the VGG19 of Simonyan and Zisserman (ICLR 2015) as in
    SRGAN (Ledig et al., CVPR 2017).

    Images are RGB (or gray) in [0, 1]. The extractor is loaded when the term is built, so a recipe without
    the weights stops at start-up rather than mid-training: ``weights`` is a checkpoint path, or ``None`` to
    search as :func:`~enhancekit.pretrained.find_vgg19_weights` does (``download=True`` fetches it when
    absent). ``weights="random"`` uses fixed random VGG19 weights instead: a stand-in to exercise the
    plumbing without the ImageNet file, which does NOT measure perceptual similarity. ``criterion`` is
    ``mse`` or ``l1``.

    The extractor is frozen and kept outside this module's tree, so it has no parameters, buffers or
    state-dict entries: nothing of VGG19 is trained, optimised or written into the checkpoints of the
    model whose loss this is.
    """

    def __init__(
        self,
        layer: str = "relu5_4",
        weights: str | None = None,
        download: bool = False,
        criterion: str = "mse",
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise EnhanceKitError(
                f"unknown perceptual criterion {criterion!r}; available: {', '.join(CRITERIA)}"
            )
        self.layer = layer
        self.criterion = criterion
        self.source = "random" if weights == "random" else (weights or "ImageNet")
        extractor = (
            random_vgg19_features(layer)
            if weights == "random"
            else load_vgg19_features(layer, weights, download)
        )
        # Held in a tuple so nn.Module does not register it: as a submodule its ~20M frozen parameters
        # would enter CompositeLoss's and hence the Lightning task's state_dict (every checkpoint), DDP's
        # parameter broadcast and model summaries. The price is that .to()/.cuda() on the parent skip it,
        # so forward moves it to the data's device itself.
        self._extractor: tuple[VGG19Features] = (extractor,)

    @property
    def extractor(self) -> VGG19Features:
        """The frozen VGG19 feature extractor."""
        return self._extractor[0]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        extractor = self.extractor
        weight = extractor.features[0].weight
        if weight.device != output.device:
            extractor.to(output.device)  # in place, so only the first call on a device pays
        # Features are computed in the extractor's float32 (autocast still applies): casting the weights to
        # the data's dtype instead would lose precision for good after one bfloat16 batch.
        with torch.no_grad():  # the target needs no graph: saves the activations' memory
            target_features = extractor(target.to(weight.dtype))
        return CRITERIA[self.criterion](extractor(output.to(weight.dtype)), target_features)

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, weights={self.source!r}, criterion={self.criterion!r}"
