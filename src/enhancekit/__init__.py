"""enhancekit: super-resolution, denoising (2D/3D), low-light and unsupervised image enhancement."""

from enhancekit.errors import EnhanceKitError
from enhancekit.registry import create_model, get_model_entry, list_models

__version__ = "0.1.0"

__all__ = ["EnhanceKitError", "create_model", "get_model_entry", "list_models", "__version__"]
