"""CenterNet proposal generator of CenterNet2/Detic (class-agnostic heatmap, ``ONLY_PROPOSAL`` mode).

The head is shared over P3..P7; its inference (per level: threshold, unsorted top-k, box decode; then NMS 0.9 and a
``kthvalue`` top-k that keeps ties) follows ``UPSTREAM_ARCHITECTURE.md`` A.3 operation by operation so that
the proposals (and their order) equal upstream's on the same weights.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from audiodetic.detector.vision_ops import batched_nms
from audiodetic.errors import InputError
from audiodetic.kernels import Conv3x3


class Scale(nn.Module):
    """One learnable scalar multiplying the regression output of one pyramid level (``scale`` shape ``(1,)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class CenterNetHead(nn.Module):
    """``bbox_tower`` = ``num_convs`` x [Conv3x3 -> GroupNorm -> ReLU], then ``agn_hm`` (1 ch) and ``bbox_pred`` (4 ch).

    Args:
        channels: FPN width (256 for released models).
        num_levels: pyramid levels sharing the head (5: P3..P7), one ``Scale`` each.
        num_convs: tower depth (4).
        gn_groups: GroupNorm groups (32).
    """

    def __init__(self, channels: int, num_levels: int, *, num_convs: int = 4, gn_groups: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers += [Conv3x3(channels, channels), nn.GroupNorm(gn_groups, channels), nn.ReLU(inplace=True)]
        self.bbox_tower = nn.Sequential(*layers)
        self.bbox_pred = nn.Conv2d(channels, 4, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in range(num_levels))
        self.agn_hm = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``features``: P3..P7, each ``(B, C, H_l, W_l)``.

        Returns ``(heatmap_logits, regressions)``: per level ``(B, 1, H_l, W_l)`` agnostic heatmap logits and
        ``(B, 4, H_l, W_l)`` non-negative ``(l, t, r, b)`` distances in units of the level's stride.
        """
        heatmaps, regressions = [], []
        for level, feature in enumerate(features):
            tower = self.bbox_tower(feature)
            heatmaps.append(self.agn_hm(tower))
            regressions.append(torch.relu(self.scales[level](self.bbox_pred(tower))))
        return heatmaps, regressions


def level_grid(height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
    """``(height*width, 2)`` float32 ``(x, y)`` centres ``(i*stride + stride//2)`` of one level, row-major."""
    shifts_x = torch.arange(0, width * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0, height * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    return torch.stack((shift_x.reshape(-1), shift_y.reshape(-1)), dim=1) + stride // 2


def _level_candidates(
    heatmap_logits: torch.Tensor, regression: torch.Tensor, stride: int, score_threshold: float, pre_nms_topk: int,
    min_box_side: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate boxes ``(n, 4)`` and heatmap probabilities ``(n,)`` of one level of one image."""
    _, _, height, width = heatmap_logits.shape
    # decoded in float32 also when the head ran under float16 autocast (NMS needs one dtype; pixels need the range)
    heatmap = heatmap_logits.float().sigmoid()[0].permute(1, 2, 0).reshape(-1, 1)  # (HW, 1)
    deltas = (regression.float() * stride)[0].permute(1, 2, 0).reshape(-1, 4)  # (HW, 4) in pixels
    candidates = heatmap > score_threshold
    probabilities = heatmap[candidates]
    locations = candidates.nonzero()[:, 0]
    deltas = deltas[locations]
    grid = level_grid(height, width, stride, heatmap.device)[locations]
    count = int(candidates.sum())
    if count > pre_nms_topk:
        probabilities, top = probabilities.topk(pre_nms_topk, sorted=False)
        deltas = deltas[top]
        grid = grid[top]
    boxes = torch.stack(
        [grid[:, 0] - deltas[:, 0], grid[:, 1] - deltas[:, 1], grid[:, 0] + deltas[:, 2], grid[:, 1] + deltas[:, 3]],
        dim=1,
    )
    boxes[:, 2] = torch.max(boxes[:, 2], boxes[:, 0] + min_box_side)
    boxes[:, 3] = torch.max(boxes[:, 3], boxes[:, 1] + min_box_side)
    return boxes, probabilities


def centernet_proposals(
    heatmap_logits: Sequence[torch.Tensor],
    regressions: Sequence[torch.Tensor],
    strides: Sequence[int],
    *,
    score_threshold: float = 0.0001,
    pre_nms_topk: int = 1000,
    nms_threshold: float = 0.9,
    post_nms_topk: int = 256,
    min_box_side: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposals of one image from the head outputs (batch size 1).

    Returns:
        boxes: ``(N, 4)`` float32 xyxy in the resized (unpadded) input frame, **not** clipped to the image.
        scores: ``(N,)`` float32 ``sqrt(sigmoid(agn_hm))``, in NMS order (score-descending). ``N`` is at most
            ``post_nms_topk`` unless scores tie at the cut.
    """
    boxes_per_level, scores_per_level = [], []
    for logits, regression, stride in zip(heatmap_logits, regressions, strides):
        if logits.shape[0] != 1:
            raise InputError(f"centernet_proposals handles one image at a time, got batch {logits.shape[0]}")
        boxes, probabilities = _level_candidates(
            logits, regression, int(stride), score_threshold, pre_nms_topk, min_box_side
        )
        boxes_per_level.append(boxes)
        scores_per_level.append(torch.sqrt(probabilities))
    boxes = torch.cat(boxes_per_level)
    scores = torch.cat(scores_per_level)
    keep = batched_nms(boxes.float(), scores, torch.zeros_like(scores, dtype=torch.int64), nms_threshold)
    boxes, scores = boxes[keep], scores[keep]
    count = scores.shape[0]
    if count > post_nms_topk:
        threshold, _ = torch.kthvalue(scores.float().cpu(), count - post_nms_topk + 1)
        keep = torch.nonzero(scores >= threshold.item()).squeeze(1)
        boxes, scores = boxes[keep], scores[keep]
    return boxes, scores
