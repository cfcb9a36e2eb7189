"""Any picture mode Pillow opens, as faithful 8-bit RGB.

8-bit modes (``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGBA``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``...) go through
Pillow's own ``convert("RGB")`` (alpha dropped, as detectron2 reads images). Modes with more than 8 bits per
sample are scaled by their range instead of being clipped (``convert("RGB")`` clips a 16-bit value of 55000 to
255):

=====================  ======================================================================================
mode                   range mapped linearly onto 0..255
=====================  ======================================================================================
``I;16`` ``I;16B/L/N``  0..65535
``I`` (32-bit int)     TIFF: from its ``BitsPerSample``/``SampleFormat`` tags (unsigned 0..2^b-1, signed
                       -2^(b-1)..2^(b-1)-1); other formats (PNG, PGM/PPM) hold 16-bit samples in ``I``: 0..65535
``F`` (32-bit float)   0..1 (the nominal range of float pictures); values outside are clipped, NaN becomes 0
=====================  ======================================================================================

Values are rounded to the nearest level. Conversion runs in bands of rows, so the temporary arrays stay small
whatever the picture's size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from audiodetic.errors import InputError

_BAND_ROWS = 512
_TIFF_BITS, _TIFF_SAMPLE_FORMAT = 258, 339


def sample_range(image: Image.Image) -> tuple[float, float] | None:
    """``(low, high)`` of the samples of a high-bit-depth mode (``I;16*``, ``I``, ``F``), else ``None``."""
    mode = image.mode
    if mode.startswith("I;16"):
        return 0.0, 65535.0
    if mode == "F":
        return 0.0, 1.0
    if mode != "I":
        return None
    tags = getattr(image, "tag_v2", None)
    if image.format == "TIFF" and tags is not None and _TIFF_BITS in tags:
        bits = int(np.max(np.atleast_1d(tags[_TIFF_BITS])))
        signed = int(np.max(np.atleast_1d(tags.get(_TIFF_SAMPLE_FORMAT, 1)))) == 2
        if signed:
            return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
        return 0.0, 2.0 ** bits - 1
    return 0.0, 65535.0


def to_rgb(image: Image.Image, *, argument: str = "image") -> Image.Image:
    """``image`` as an RGB ``PIL.Image`` (the same object when it already is RGB; otherwise a new one)."""
    if image.mode == "RGB":
        return image
    bounds = sample_range(image)
    if bounds is None:
        try:
            return image.convert("RGB")
        except ValueError:
            try:
                return image.convert("RGBA").convert("RGB")
            except ValueError:
                raise InputError(f"{argument}: pictures in Pillow mode {image.mode!r} cannot be converted to RGB; "
                                 f"save it as an 8-bit RGB or grayscale PNG/JPEG") from None
    low, high = bounds
    width, height = image.size
    gray = np.empty((height, width), np.uint8)
    samples = np.asarray(image)
    for top in range(0, height, _BAND_ROWS):
        band = samples[top:top + _BAND_ROWS].astype(np.float64)
        band = np.nan_to_num(band, nan=low, posinf=high, neginf=low)
        scaled = (np.clip(band, low, high) - low) * (255.0 / (high - low))
        gray[top:top + _BAND_ROWS] = np.rint(scaled).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")
