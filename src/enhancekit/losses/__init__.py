"""Composable loss terms; recipes name them and give their weights."""

from enhancekit.losses.composite import LOSS_TERMS, CompositeLoss, register_loss_term
from enhancekit.losses.pixel import CharbonnierLoss
from enhancekit.losses.ssim import SSIMLoss, ssim_torch

__all__ = ["LOSS_TERMS", "CharbonnierLoss", "CompositeLoss", "SSIMLoss", "register_loss_term", "ssim_torch"]
