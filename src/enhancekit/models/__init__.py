"""Network families, one file each. Importing this package registers every model by name."""

from enhancekit.models import adl, classical, classical_denoise, dncnn, lowlight_unet, srcnn  # noqa: F401
