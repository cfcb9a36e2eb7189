"""Class-agnostic mask head and detectron2-exact mask pasting into the original image.

Speed (CPU): the four 3x3 convs run as ``kernels.Conv3x3`` (NNPACK Winograd over the batch of regions) and the
2x2 deconv + 1x1 predictor as two chunked GEMMs (``MaskHead.upsample_and_predict``, oneDNN through
``kernels.gemm``); both change mask probabilities by float rounding only (~1e-6).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiodetic.kernels import Conv3x3, gemm
from audiodetic.rle_masks import ColumnRunEncoder, RleMasks

UPSAMPLE_CHUNK = 16  # regions per GEMM pair in MaskHead.upsample_and_predict


class MaskHead(nn.Module):
    """``mask_fcn1..N`` (Conv3x3 + ReLU) -> ``deconv`` (2x2, stride 2) -> ReLU -> ``predictor`` (1x1 -> 1 channel).

    Input ``(M, C, 14, 14)`` pooled features; output ``(M, 1, 28, 28)`` mask logits.
    """

    def __init__(self, channels: int, *, num_convs: int = 4) -> None:
        super().__init__()
        self.num_convs = num_convs
        for index in range(1, num_convs + 1):
            self.add_module(f"mask_fcn{index}", Conv3x3(channels, channels))
        self.deconv = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.predictor = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, self.num_convs + 1):
            x = getattr(self, f"mask_fcn{index}")(x).relu_()
        return self.upsample_and_predict(x)

    def upsample_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        """``predictor(relu(deconv(x)))``: ``(M, C, S, S)`` -> ``(M, K, 2S, 2S)`` logits, as two matrix products.

        A 2x2/stride-2 transposed convolution writes each input pixel to its own 2x2 output block:
        ``out[m, o, 2i+a, 2j+b] = bias[o] + sum_c x[m, c, i, j] * W[c, o, a, b]``; so it is one GEMM of the
        ``(M*S*S, C)`` pixels with ``W`` as ``(4*O, C)`` rows ``(a, b, o)`` (bias and ReLU fused, ``kernels.gemm``),
        and the 1x1 predictor is a second one over ``O``. Regions go ``UPSAMPLE_CHUNK`` at a time so the
        ``(pixels, 4*O)`` intermediate stays in cache (13 MB for 256 channels) instead of a fresh 180 MB map for
        225 regions. Same values as the convolutions up to float summation order (~1e-6 on the logits).
        """
        deconv, predictor = self.deconv, self.predictor
        if deconv.kernel_size != (2, 2) or deconv.stride != (2, 2) or deconv.padding != (0, 0) or deconv.groups != 1:
            return predictor(torch.relu(deconv(x)))
        if predictor.kernel_size != (1, 1) or predictor.groups != 1 or deconv.output_padding != (0, 0):
            return predictor(torch.relu(deconv(x)))
        count, channels, height, width = x.shape
        out_channels, classes = deconv.out_channels, predictor.out_channels
        weight = deconv.weight.permute(2, 3, 1, 0).reshape(4 * out_channels, channels)  # rows (a, b, o)
        bias = None if deconv.bias is None else deconv.bias.repeat(4)
        predictor_weight = predictor.weight.reshape(classes, out_channels)
        logits = x.new_empty((count, height, width, 2, 2, classes))
        for start in range(0, count, UPSAMPLE_CHUNK):
            stop = min(start + UPSAMPLE_CHUNK, count)
            pixels = x[start:stop].permute(0, 2, 3, 1).reshape(-1, channels)  # (R*S*S, C)
            upsampled = gemm(pixels, weight, bias, activation="relu").view(-1, out_channels)
            part = gemm(upsampled, predictor_weight, predictor.bias)
            logits[start:stop] = part.view(stop - start, height, width, 2, 2, classes)
        # (M, S, S, a, b, K) -> (M, K, S, a, S, b) = (M, K, 2S, 2S)
        return logits.permute(0, 5, 1, 3, 2, 4).reshape(count, classes, 2 * height, 2 * width)


def _paste_region(box: torch.Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the pixels ``[floor(x0) - 1, ceil(x1) + 1)`` (likewise y) around ``box``, clamped."""
    x0_int = max(math.floor(float(box[0])) - 1, 0)
    y0_int = max(math.floor(float(box[1])) - 1, 0)
    x1_int = min(math.ceil(float(box[2])) + 1, width)
    y1_int = min(math.ceil(float(box[3])) + 1, height)
    return y0_int, y1_int, x0_int, x1_int


def _sample(mask: torch.Tensor, box: torch.Tensor, rows: tuple[int, int], columns: tuple[int, int]) -> torch.Tensor:
    """Sample one ``(S, S)`` probability mask at the pixel centres of ``rows x columns`` of the image.

    Pixel centres ``(i + 0.5)`` are mapped to ``[-1, 1]`` across the box (``(4,)`` xyxy, original frame) and
    sampled with bilinear ``grid_sample`` (``align_corners=False``, zero padding); returns ``(rows, columns)``
    float32. Each output pixel depends only on its own coordinates, so sampling a region in bands gives the same
    values as sampling it whole.
    """
    img_y = torch.arange(rows[0], rows[1], dtype=torch.float32, device=mask.device) + 0.5
    img_x = torch.arange(columns[0], columns[1], dtype=torch.float32, device=mask.device) + 0.5
    img_y = (img_y - box[1]) / (box[3] - box[1]) * 2 - 1
    img_x = (img_x - box[0]) / (box[2] - box[0]) * 2 - 1
    grid = img_x.new_empty((1, img_y.shape[0], img_x.shape[0], 2))
    grid[0, :, :, 0] = img_x[None, :]  # broadcast copies: torch.stack of expanded views is ~20x slower
    grid[0, :, :, 1] = img_y[:, None]
    return F.grid_sample(mask[None, None].float(), grid, align_corners=False)[0, 0]


def paste_masks(
    masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste ``(M, S, S)`` mask probabilities into ``(M, H, W)`` bool masks (``>= threshold``).

    ``boxes``: ``(M, 4)`` float32 xyxy in the target image (``image_size = (H, W)``). Equals detectron2's
    ``paste_masks_in_image`` on CPU (one mask at a time over the box's neighbourhood; pixels outside it are
    False). The loop runs over final detections only (at most ``detections_per_image``). The result costs
    ``M * H * W`` bytes; :func:`paste_masks_rle` gives the same masks as RLE without full-size arrays.
    """
    height, width = image_size
    if masks.device.type == "cpu":  # calloc'd: untouched pages cost nothing (most of each mask is outside its box)
        out = torch.from_numpy(np.zeros((masks.shape[0], height, width), dtype=np.bool_))
    else:
        out = torch.zeros((masks.shape[0], height, width), dtype=torch.bool, device=masks.device)
    boxes = boxes.float()
    for index in range(masks.shape[0]):
        y0, y1, x0, x1 = _paste_region(boxes[index], height, width)
        region = _sample(masks[index], boxes[index], (y0, y1), (x0, x1))
        out[index, y0:y1, x0:x1] = region >= threshold
    return out


def paste_masks_rle(
    masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int], threshold: float = 0.5, *,
    band_pixels: int = 1 << 20,
) -> RleMasks:
    """The masks of :func:`paste_masks` (pixel for pixel) as :class:`~audiodetic.rle_masks.RleMasks`.

    Each box region is sampled in bands of whole columns of at most ``band_pixels`` pixels (about
    16 bytes each while a band is sampled: grid, probabilities, switches; 16 MB at the default), so memory stays
    bounded however large the image or box; what is kept is a few bytes per column of each box. The time is that
    of :func:`paste_masks`: one bilinear sample per pixel of each box.
    """
    height, width = image_size
    boxes = boxes.float()
    counts = []
    for index in range(masks.shape[0]):
        y0, y1, x0, x1 = _paste_region(boxes[index], height, width)
        encoder = ColumnRunEncoder((height, width))
        step = max(1, int(band_pixels) // max(y1 - y0, 1))
        for x in range(x0, x1, step):
            band = _sample(masks[index], boxes[index], (y0, y1), (x, min(x + step, x1))) >= threshold
            encoder.add_columns(band.cpu().numpy().T, y0, x)
        counts.append(encoder.finish())
    return RleMasks(counts, (height, width))
