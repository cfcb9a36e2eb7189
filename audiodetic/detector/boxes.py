"""Box utilities of the cascade: delta decoding, clipping, and the multi-level ROIAlignV2 pooler.

All boxes are float32 ``(N, 4)`` xyxy tensors in the resized (unpadded) network-input frame unless stated otherwise.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from audiodetic.detector.vision_ops import roi_align
from audiodetic.errors import InputError


def apply_deltas(
    deltas: torch.Tensor,
    boxes: torch.Tensor,
    weights: Sequence[float],
    scale_clamp: float = math.log(1000.0 / 16),
) -> torch.Tensor:
    """Decode class-agnostic ``(N, 4)`` deltas ``(dx, dy, dw, dh)`` against ``(N, 4)`` boxes (R-CNN parametrisation).

    ``dx, dy`` are divided by ``weights[0:2]`` and scaled by the box size, ``dw, dh`` by ``weights[2:4]``, clamped
    above at ``scale_clamp`` and exponentiated. No +1 pixel convention. Returns ``(N, 4)`` float32 xyxy.
    """
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = torch.clamp(deltas[:, 2::4] / ww, max=scale_clamp)
    dh = torch.clamp(deltas[:, 3::4] / wh, max=scale_clamp)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = torch.exp(dw) * widths[:, None]
    pred_h = torch.exp(dh) * heights[:, None]
    decoded = torch.stack(
        (pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h, pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h),
        dim=-1,
    )
    return decoded.reshape(deltas.shape)


def clip_boxes(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Clamp x to ``[0, w]`` and y to ``[0, h]`` (``image_size = (h, w)``); returns a new ``(N, 4)`` tensor."""
    height, width = image_size
    return torch.stack(
        (
            boxes[:, 0].clamp(min=0, max=width),
            boxes[:, 1].clamp(min=0, max=height),
            boxes[:, 2].clamp(min=0, max=width),
            boxes[:, 3].clamp(min=0, max=height),
        ),
        dim=-1,
    )


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """``(N,)`` bool: width and height both strictly greater than ``threshold``."""
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def assign_levels(
    boxes: torch.Tensor, min_level: int, max_level: int, canonical_size: int = 224, canonical_level: int = 4
) -> torch.Tensor:
    """FPN level index (offset from ``min_level``) of each box: ``floor(k0 + log2(sqrt(area)/224 + 1e-8))``."""
    sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_size + 1e-8))
    levels = torch.clamp(levels, min=min_level, max=max_level)
    return levels.to(torch.int64) - min_level


class MultiLevelROIAlign:
    """ROIAlignV2 (``aligned=True``, adaptive sampling) over several pyramid levels, boxes of one image.

    Args:
        output_size: pooled side (7 for boxes, 14 for masks).
        strides: strides of the pooled levels (8, 16, 32 -> P3..P5); levels must be consecutive powers of two.
    """

    def __init__(self, output_size: int, strides: Sequence[int], canonical_size: int = 224, canonical_level: int = 4):
        self.output_size = int(output_size)
        self.scales = [1.0 / s for s in strides]
        self.min_level = int(round(-math.log2(self.scales[0])))
        self.max_level = int(round(-math.log2(self.scales[-1])))
        if self.max_level - self.min_level + 1 != len(strides):
            raise InputError(f"pooler strides must be consecutive powers of two, got {tuple(strides)}")
        self.canonical_size = canonical_size
        self.canonical_level = canonical_level

    def __call__(self, features: Sequence[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        """``features``: per level ``(1, C, H_l, W_l)``; ``boxes``: ``(N, 4)``. Returns ``(N, C, S, S)``."""
        channels = features[0].shape[1]
        size = self.output_size
        output = features[0].new_zeros((boxes.shape[0], channels, size, size))
        if boxes.shape[0] == 0:
            return output
        rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)
        levels = assign_levels(boxes, self.min_level, self.max_level, self.canonical_size, self.canonical_level)
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            indices = torch.nonzero(levels == level, as_tuple=True)[0]
            if indices.numel() == 0:
                continue
            if feature.dtype in (torch.float32, torch.float64):
                pooled = roi_align(feature, rois[indices].to(feature.dtype), size, scale, 0, True)
            else:  # float16/bfloat16 under autocast: pool in float32 (as torchvision's autocast kernel does on CUDA)
                pooled = roi_align(feature.float(), rois[indices].float(), size, scale, 0, True)
            output.index_put_((indices,), pooled.to(output.dtype))
        return output
