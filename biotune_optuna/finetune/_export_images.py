"""An image file as the model's preprocessing takes it: its pixels, high bit depths scaled.

The training data are 8-bit RGB images (``ImageFolder`` converts every file to RGB). An image
to predict is read the same way, except where that conversion would misread it: 16-bit integer
images (PIL modes ``I;16*``, and 32-bit ``I`` with values in ``[0, 65535]``) are scaled by
``1 / 65535`` to ``[0, 1]``; floating-point images (mode ``F``) must hold values in ``[0, 1]``,
taken as they are; both are then rounded to the 8 bits of the training files. Other 32-bit or
float images are refused, as are images of more than PIL's ``Image.MAX_IMAGE_PIXELS`` pixels
(decompression bombs).
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any
import warnings

import numpy as np
import torch


__all__ = ["image_pixels", "open_image"]

#: The 16-bit integer modes of PIL.
_MODES_16 = ("I;16", "I;16L", "I;16B", "I;16N")


def open_image(path: Path) -> Any:
    """The image at ``path`` as a decoded PIL image, in its own mode.

    Raises:
        ValueError: In one line, if there is no such file, it is not an image, or it has more
            than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels.
    """
    from PIL import Image
    from PIL import UnidentifiedImageError

    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():  # refused below, with a message that says what to do
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and image.width * image.height > limit:
            raise Image.DecompressionBombError(f"({image.width * image.height} pixels)")
        image.load()
    except Image.DecompressionBombError as error:  # Image.open raises it beyond twice the limit
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{found[1]} pixels" if found else "too many pixels"
        raise ValueError(
            f"{path} is too large an image ({size}; at most {Image.MAX_IMAGE_PIXELS}): "
            "resize it first"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        reason = " ".join(str(error).split())
        raise ValueError(f"{path} is not an image ({reason[:120]})") from None
    return image


def image_pixels(image: Any, where: str = "the image") -> Any:
    """``image`` as the preprocessing takes it: a tensor passes; a PIL image becomes 8-bit RGB,
    16-bit and float modes scaled to ``[0, 1]`` first (so that a 16-bit copy of an 8-bit image,
    ``v * 257``, is read as that image).

    Args:
        image: A PIL image or a ``(C, H, W)`` tensor.
        where: How an error names the image (its path).

    Raises:
        ValueError: In one line, for a 32-bit or float image outside the ranges above.
    """
    from PIL import Image

    mode = getattr(image, "mode", None)
    if mode is None or isinstance(image, torch.Tensor):
        return image
    if mode in _MODES_16 or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode != "F" or not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            if mode == "F":
                raise ValueError(
                    f"{where} is a floating-point image with values outside [0, 1] (min "
                    f"{np.nanmin(values):.4g}, max {np.nanmax(values):.4g}); save it with "
                    "values in [0, 1] or as an 8- or 16-bit image"
                )
            if values.min() < 0 or values.max() > 65535:
                raise ValueError(
                    f"{where} is a 32-bit integer image with values outside [0, 65535]; save "
                    "it as an 8- or 16-bit image"
                )
            values = values / 65535.0
        image = Image.fromarray(np.round(values * 255).astype(np.uint8))  # 8 bits, as trained
    return image if image.mode == "RGB" else image.convert("RGB")
