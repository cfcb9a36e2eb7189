"""Pictures as users hand them in: paths, ``PIL.Image`` objects and numpy arrays, read one way everywhere.

Every reader of a user's picture - the detector, example-image prompts, drawing, the CLI's early check - goes
through this module, so orientation, modes and errors are the same on every path:

* a path is opened with Pillow, its EXIF orientation applied (the picture upright as viewers show it, as
  detectron2 reads images), then converted to RGB;
* a ``PIL.Image`` of any mode is converted to RGB (a copy; the caller's object is never modified);
* an array must be ``(H, W, 3)`` uint8 RGB (the convention everywhere in audiodetic; a grayscale or RGBA array is
  refused with a message saying how to convert it, rather than guessed at).

Errors name the argument (``image``, ``image[2]``, ``prompt 'dog'``...) and the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from audiodetic.errors import InputError, InputTypeError, MissingFileError

IMAGE_FORMS = "a file path, a PIL.Image or an (H, W, 3) uint8 RGB numpy array"


def _open_file(path: Path, argument: str) -> Image.Image:
    if not path.is_file():
        raise MissingFileError(f"{argument}: image file not found: {path}")
    try:
        with Image.open(path) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InputError(f"{argument}: cannot read {path} as an image ({error})") from None


def as_pil_rgb(image: Any, *, argument: str = "image") -> Image.Image:
    """``image`` (path, ``PIL.Image`` of any mode, or uint8 array) as a new RGB ``PIL.Image``, upright."""
    if isinstance(image, (str, os.PathLike)):
        return _open_file(Path(image), argument)
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    if isinstance(image, np.ndarray):
        return Image.fromarray(_check_array(image, argument), "RGB")
    raise InputTypeError(f"{argument}: expected {IMAGE_FORMS}, got {type(image).__name__}")


def _check_array(image: np.ndarray, argument: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        hint = ("; stack a grayscale array into 3 channels (np.stack([a] * 3, axis=-1)) or pass a PIL image"
                if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 4)) else "")
        raise InputError(f"{argument}: arrays must be uint8 RGB of shape (H, W, 3) (HxWx3 uint8); got a "
                         f"{image.dtype} array of shape {image.shape}{hint}")
    if min(image.shape[:2]) == 0:
        raise InputError(f"{argument}: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def as_rgb_array(image: Any, *, argument: str = "image") -> np.ndarray:
    """``image`` (see :func:`as_pil_rgb`) as a contiguous ``(H, W, 3)`` uint8 RGB array (an RGB array is used as
    it is, without a copy)."""
    if isinstance(image, np.ndarray):
        return _check_array(image, argument)
    return np.asarray(as_pil_rgb(image, argument=argument))


def is_image_batch(images: Any) -> bool:
    """True when ``images`` is a list/tuple of images (rather than one image)."""
    return isinstance(images, (list, tuple))


def sequence_of_images(images: Sequence[Any], *, argument: str = "image") -> list[np.ndarray]:
    """Each image of a batch as an ``(H, W, 3)`` uint8 array; errors name the index."""
    if not images:
        raise InputError(f"{argument}: the list of images is empty")
    return [as_rgb_array(image, argument=f"{argument}[{i}]") for i, image in enumerate(images)]


def check_image_file(path: str | os.PathLike[str], *, argument: str = "image", max_pixels: int | None = None) -> Path:
    """Open only the header of an image file, so that a bad file fails in a second, naming the file.

    With ``max_pixels``, a picture of more than that many pixels (width x height) is refused from its header,
    before any pixel is decoded; the message gives its size and the limit in megapixels.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{argument}: image file not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise InputError(f"{argument}: cannot read {path} as an image ({error})") from None
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(f"{argument}: {path} is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
                         f"pictures of at most {max_pixels / 1e6:g} megapixels are accepted")
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
