"""Network families, one file each. Importing this package registers every model by name."""

from enhancekit.models import (  # noqa: F401
    adl,
    classical,
    classical_denoise,
    cyclegan,
    dncnn,
    lowlight_unet,
    srcnn,
    uegan,
)
