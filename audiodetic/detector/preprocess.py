"""Image preprocessing exactly as Detic's predictor: shortest-edge resize, normalise, zero-pad to 32.

Upstream order (detectron2 ``DefaultPredictor`` + ``GeneralizedRCNN.preprocess_image``):
1. ``ResizeShortestEdge(min_size, max_size)`` output size rule (``int(x + 0.5)`` rounding).
2. PIL bilinear resize on the uint8 RGB image (antialiased when shrinking), back to uint8.
3. float32 ``(x - mean) / std`` per RGB channel.
4. zero-pad (after normalisation) at the bottom/right to multiples of ``size_divisibility``.

Images are RGB here. Callers holding OpenCV-style BGR arrays flip them first (``image[:, :, ::-1]``); neither
the detector nor the public API (``audiodetic.api``) takes BGR input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from audiodetic.errors import InputError
from audiodetic.inputs.images import check_rgb_array


@dataclass(frozen=True)
class PreprocessedImage:
    """The network input of one image.

    Attributes:
        tensor: ``(1, 3, Hp, Wp)`` float32 normalised RGB, zero-padded to multiples of the size divisibility.
        resized_size: ``(h, w)`` of the resized image before padding (the frame of proposals and boxes).
        original_size: ``(H, W)`` of the caller's image.
    """

    tensor: torch.Tensor
    resized_size: tuple[int, int]
    original_size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """``(scale_x, scale_y) = (W / w, H / h)``: multiply resized-frame coordinates to get original pixels."""
        return (self.original_size[1] / self.resized_size[1], self.original_size[0] / self.resized_size[0])


def resized_shape(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """Output ``(h, w)`` of detectron2's ``ResizeShortestEdge`` for an ``height x width`` image."""
    size = float(min_size)
    scale = size / min(height, width)
    if height < width:
        new_h, new_w = size, scale * width
    else:
        new_h, new_w = scale * height, size
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h = new_h * scale
        new_w = new_w * scale
    # a very thin strip (e.g. 2 x 5000 px) would round its short side to 0: keep at least one pixel row/column
    return max(1, int(new_h + 0.5)), max(1, int(new_w + 0.5))


def check_image(image: object) -> np.ndarray | Image.Image:
    """Validate an ``(H, W, 3)`` uint8 RGB numpy image (returned C-contiguous) or an RGB ``PIL.Image`` (returned as
    it is: resizing straight from it spares a full-size copy of a large picture). Raises ``InputError``."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB" or min(image.size) < 1:
            raise InputError(f"PIL images given to the detector must be non-empty RGB, got mode {image.mode!r} "
                             f"and size {image.size} (audiodetic.inputs.as_pil_rgb converts any picture)")
        return image
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"image must be an (H, W, 3) uint8 RGB numpy array, got {type(image).__name__} "
            "(load paths or PIL images with audiodetic.api)"
        )
    return check_rgb_array(image)


def resize_image(image: np.ndarray | Image.Image, min_size: int, max_size: int) -> np.ndarray:
    """Shortest-edge resize of an ``(H, W, 3)`` uint8 image (or RGB PIL image) with PIL bilinear; returns
    ``(h, w, 3)`` uint8."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    new_h, new_w = resized_shape(picture.height, picture.width, min_size, max_size)
    return np.asarray(picture.resize((new_w, new_h), Image.Resampling.BILINEAR))


def normalize_and_pad(
    image: np.ndarray, pixel_mean: torch.Tensor, pixel_std: torch.Tensor, size_divisibility: int
) -> torch.Tensor:
    """``(h, w, 3)`` uint8 -> ``(1, 3, Hp, Wp)`` float32: ``(x - mean) / std``, then zero-pad bottom/right.

    ``pixel_mean``/``pixel_std`` are ``(3, 1, 1)`` float32 tensors on the target device.
    """
    tensor = torch.as_tensor(image.astype("float32").transpose(2, 0, 1)).to(pixel_mean.device)
    tensor = (tensor - pixel_mean) / pixel_std
    height, width = tensor.shape[-2:]
    if size_divisibility > 1:
        padded_h = (height + size_divisibility - 1) // size_divisibility * size_divisibility
        padded_w = (width + size_divisibility - 1) // size_divisibility * size_divisibility
        tensor = F.pad(tensor, (0, padded_w - width, 0, padded_h - height), value=0.0)
    return tensor.unsqueeze(0)


def preprocess_image(
    image: np.ndarray | Image.Image,
    *,
    min_size: int,
    max_size: int,
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    size_divisibility: int = 32,
) -> PreprocessedImage:
    """Turn an ``(H, W, 3)`` uint8 RGB image into the detector input (see module docstring for the steps)."""
    image = check_image(image)
    original = (image.height, image.width) if isinstance(image, Image.Image) else image.shape[:2]
    resized = resize_image(image, min_size, max_size)
    tensor = normalize_and_pad(resized, pixel_mean, pixel_std, size_divisibility)
    return PreprocessedImage(
        tensor=tensor,
        resized_size=(int(resized.shape[0]), int(resized.shape[1])),
        original_size=(int(original[0]), int(original[1])),
    )
