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


def _paste_one(mask: torch.Tensor, box: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, int, int]:
    """Sample one ``(S, S)`` probability mask over the pixels around ``box`` (``(4,)`` original frame).

    Samples pixel centres ``(i + 0.5)`` mapped to ``[-1, 1]`` across the box with bilinear ``grid_sample``
    (``align_corners=False``, zero padding) inside ``[floor(x0) - 1, ceil(x1) + 1)`` (likewise y), clamped to the
    image. Returns the sampled region and its top-left ``(y0, x0)``.
    """
    x0_int = max(math.floor(float(box[0])) - 1, 0)
    y0_int = max(math.floor(float(box[1])) - 1, 0)
    x1_int = min(math.ceil(float(box[2])) + 1, width)
    y1_int = min(math.ceil(float(box[3])) + 1, height)
    img_y = torch.arange(y0_int, y1_int, dtype=torch.float32, device=mask.device) + 0.5
    img_x = torch.arange(x0_int, x1_int, dtype=torch.float32, device=mask.device) + 0.5
    img_y = (img_y - box[1]) / (box[3] - box[1]) * 2 - 1
    img_x = (img_x - box[0]) / (box[2] - box[0]) * 2 - 1
    grid_x = img_x[None, :].expand(img_y.shape[0], img_x.shape[0])
    grid_y = img_y[:, None].expand(img_y.shape[0], img_x.shape[0])
    grid = torch.stack([grid_x, grid_y], dim=2)[None]
    sampled = F.grid_sample(mask[None, None].float(), grid.to(torch.float32), align_corners=False)
    return sampled[0, 0], y0_int, x0_int


def paste_masks(
    masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste ``(M, S, S)`` mask probabilities into ``(M, H, W)`` bool masks (``>= threshold``).

    ``boxes``: ``(M, 4)`` float32 xyxy in the target image (``image_size = (H, W)``). Equals detectron2's
    ``paste_masks_in_image`` on CPU (one mask at a time over the box's neighbourhood; pixels outside it are
    False). The loop runs over final detections only (at most ``detections_per_image``).
    """
    height, width = image_size
    if masks.device.type == "cpu":  # calloc'd: untouched pages cost nothing (most of each mask is outside its box)
        out = torch.from_numpy(np.zeros((masks.shape[0], height, width), dtype=np.bool_))
    else:
        out = torch.zeros((masks.shape[0], height, width), dtype=torch.bool, device=masks.device)
    boxes = boxes.float()
    for index in range(masks.shape[0]):
        region, y0, x0 = _paste_one(masks[index], boxes[index], height, width)
        out[index, y0 : y0 + region.shape[0], x0 : x0 + region.shape[1]] = region >= threshold
    return out
