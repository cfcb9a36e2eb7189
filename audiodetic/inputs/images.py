"""Pictures as users hand them in: paths, ``PIL.Image`` objects and numpy arrays, read one way everywhere.

Every reader of a user's picture - the detector, example-image prompts, drawing, the CLI's early check - goes
through this module, so orientation, modes and errors are the same on every path:

* a path (or the bytes of an encoded image file) is opened with Pillow, its size checked against the pixel limit *before* anything is decoded, its EXIF
  orientation applied (the picture upright as viewers show it, as detectron2 reads images), then converted to
  8-bit RGB faithfully whatever its mode and bit depth (:mod:`audiodetic.inputs.pixels`);
* a ``PIL.Image`` of any mode is converted the same way (a copy; the caller's object is never modified);
* an array must be ``(H, W, 3)`` uint8 RGB (the convention everywhere in audiodetic; a grayscale or RGBA array is
  refused with a message saying how to convert it, rather than guessed at).

Errors name the argument (``image``, ``image[2]``, ``prompt 'dog'``...) and the file.

**Pixel limit.** Files with more than :func:`max_image_pixels` pixels are refused before decoding (a small file can
hold a huge picture: a "decompression bomb"). The limit is, in order: the ``max_image_pixels`` argument,
the ``AUDIODETIC_MAX_IMAGE_PIXELS`` environment variable, :data:`DEFAULT_MAX_IMAGE_PIXELS` (Pillow's own refusal
point, about 13,400 x 13,400). The CLI sets it with ``--max-image-pixels``. Decoded, a picture costs about 4 bytes
per pixel while it is read (Pillow keeps RGB as 4 bytes per pixel) plus 3 for the RGB array.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from audiodetic.errors import InputError, InputTypeError, MissingFileError
from audiodetic.inputs.pixels import to_rgb

IMAGE_FORMS = "a file path, encoded image bytes, a PIL.Image or an (H, W, 3) uint8 RGB numpy array"
DEFAULT_MAX_IMAGE_PIXELS = 2 * 89_478_485
"""Pillow's own refusal point (twice its warning limit ``Image.MAX_IMAGE_PIXELS``)."""
ENV_MAX_IMAGE_PIXELS = "AUDIODETIC_MAX_IMAGE_PIXELS"
_PILLOW_LIMIT_LOCK = threading.Lock()
_ORIENTATION_TAG = 0x0112


def max_image_pixels(value: int | None = None) -> int:
    """The pixel limit in force: ``value``, else ``$AUDIODETIC_MAX_IMAGE_PIXELS``, else the default."""
    if value is None:
        text = os.environ.get(ENV_MAX_IMAGE_PIXELS)
        if not text:
            return DEFAULT_MAX_IMAGE_PIXELS
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise InputError(f"{ENV_MAX_IMAGE_PIXELS} must be a whole number of pixels, got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"max_image_pixels must be a positive whole number of pixels, got {value!r}")
    return int(value)


RAISE_PIXEL_LIMIT = (f"a guard against decompression bombs; raise it with --max-image-pixels N, "
                     f"{ENV_MAX_IMAGE_PIXELS}=N or max_image_pixels=N")
"""What the pixel-limit message tells API and CLI users; a surface with its own limit (the demo) passes its own."""


def check_image_pixels(width: int, height: int, *, argument: str = "image", max_pixels: int | None = None,
                       source: str = "the picture", hint: str = RAISE_PIXEL_LIMIT) -> None:
    """Refuse a ``width x height`` picture above the pixel limit; the message gives both sizes and ``hint``."""
    limit = max_image_pixels(max_pixels)
    pixels = width * height
    if pixels > limit:
        raise InputError(f"{argument}: {source} is {width} x {height} = {pixels:,} pixels ({pixels / 1e6:.3g} "
                         f"megapixels), above the limit of {limit:,} pixels ({limit / 1e6:.3g} megapixels); {hint}")


def _open(path: Path | bytes, argument: str, max_pixels: int | None, hint: str = RAISE_PIXEL_LIMIT) -> Image.Image:
    """The lazily opened file or encoded bytes (header read, nothing decoded yet), checked against our own pixel
    limit."""
    name = _name(path)
    if isinstance(path, Path) and not path.is_file():
        raise MissingFileError(f"{argument}: image file not found: {path}")
    try:
        with _PILLOW_LIMIT_LOCK:  # Pillow's global bomb check would refuse before ours could say how to proceed
            pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                opened = Image.open(io.BytesIO(path) if isinstance(path, bytes) else path)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"{argument}: cannot read {name} as an image ({error})") from None
    try:
        check_image_pixels(*opened.size, argument=argument, max_pixels=max_pixels, source=name, hint=hint)
    except InputError:
        opened.close()
        raise
    return opened


def _name(source: Path | bytes) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes) else str(source)


def _read_file(path: Path | bytes, argument: str, max_pixels: int | None) -> Image.Image:
    opened = _open(path, argument, max_pixels)
    try:
        opened.load()  # decodes, and closes the file it opened
    except OSError as error:
        opened.close()
        raise InputError(f"{argument}: cannot read {_name(path)} as an image ({error})") from None
    orientation = opened.getexif().get(_ORIENTATION_TAG, 1)
    upright = ImageOps.exif_transpose(opened) if orientation not in (None, 1) else opened
    return to_rgb(upright, argument=argument)  # no copy when the file already is upright RGB


def as_pil_rgb(image: Any, *, argument: str = "image", max_pixels: int | None = None) -> Image.Image:
    """``image`` (path, ``PIL.Image`` of any mode, or uint8 array) as a new RGB ``PIL.Image``, upright.

    ``max_pixels`` overrides the pixel limit for files (see the module doc)."""
    if isinstance(image, (str, os.PathLike)):
        return _read_file(Path(image), argument, max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _read_file(bytes(image), argument, max_pixels)
    if isinstance(image, Image.Image):
        converted = to_rgb(image, argument=argument)
        return converted.copy() if converted is image else converted
    if isinstance(image, np.ndarray):
        return Image.fromarray(check_rgb_array(image, argument=argument), "RGB")
    raise InputTypeError(f"{argument}: expected {IMAGE_FORMS}, got {type(image).__name__}")


def check_rgb_array(image: np.ndarray, *, argument: str = "image") -> np.ndarray:
    """``image`` as a C-contiguous ``(H, W, 3)`` uint8 RGB array (no copy when it already is one); an
    :class:`InputError` naming the dtype and shape otherwise, or for an empty picture."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        hint = ("; stack a grayscale array into 3 channels (np.stack([a] * 3, axis=-1)) or pass a PIL image"
                if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 4)) else "")
        raise InputError(f"{argument}: arrays must be uint8 RGB of shape (H, W, 3) (HxWx3 uint8); got a "
                         f"{image.dtype} array of shape {image.shape}{hint}")
    if min(image.shape[:2]) == 0:
        raise InputError(f"{argument}: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def as_rgb_array(image: Any, *, argument: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """``image`` (see :func:`as_pil_rgb`) as a contiguous ``(H, W, 3)`` uint8 RGB array (an RGB array is used as
    it is, without a copy)."""
    if isinstance(image, np.ndarray):
        return check_rgb_array(image, argument=argument)
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image, argument=argument))  # np.asarray copies: the caller's image is untouched
    return np.asarray(as_pil_rgb(image, argument=argument, max_pixels=max_pixels))


def as_picture(image: Any, *, argument: str = "image", max_pixels: int | None = None) -> np.ndarray | Image.Image:
    """``image`` in the form the detector reads without a further full-size copy: an ``(H, W, 3)`` uint8 array
    stays that array; a path or ``PIL.Image`` becomes an upright RGB ``PIL.Image`` (the caller's object when it
    already is RGB; it is only read)."""
    if isinstance(image, np.ndarray):
        return check_rgb_array(image, argument=argument)
    if isinstance(image, Image.Image):
        return to_rgb(image, argument=argument)
    return as_pil_rgb(image, argument=argument, max_pixels=max_pixels)


def is_image_batch(images: Any) -> bool:
    """True when ``images`` is a list/tuple of images (rather than one image)."""
    return isinstance(images, (list, tuple))


def sequence_of_images(images: Sequence[Any], *, argument: str = "image",
                       max_pixels: int | None = None) -> list[np.ndarray | Image.Image]:
    """Each image of a batch as :func:`as_picture` gives it; errors name the index."""
    if not images:
        raise InputError(f"{argument}: the list of images is empty")
    return [as_picture(image, argument=f"{argument}[{i}]", max_pixels=max_pixels) for i, image in enumerate(images)]


def check_image_file(path: str | os.PathLike[str], *, argument: str = "image", max_pixels: int | None = None,
                     hint: str = RAISE_PIXEL_LIMIT) -> Path:
    """Read only the header of an image file (format, size, pixel limit), so a bad file fails in a second; ``hint``
    ends the pixel-limit message (default: how to raise the limit)."""
    path = Path(path)
    _open(path, argument, max_pixels, hint).close()
    return path


def check_image_prompt(image: Any, *, argument: str = "image prompt") -> Path | np.ndarray:
    """An example-image prompt, checked now and read later: a path (must exist; kept unread so it is hashed and
    decoded once) or, for a ``PIL.Image`` or array, its ``(H, W, 3)`` uint8 RGB pixels."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise MissingFileError(f"{argument}: image file not found: {path}")
        return path
    return as_rgb_array(image, argument=argument)
