"""Detic's 3-stage cascade ROI heads, split into a vocabulary-independent ``encode`` and a cheap ``classify``.

Why the split is exact: in Detic's ``DeticCascadeROIHeads._forward_box`` stage ``k > 0`` pools the boxes that
stage ``k - 1``'s ``predict_boxes`` decoded from its ``proposal_deltas`` alone; with ``CLS_AGNOSTIC_BBOX_REG`` those
deltas come from the ``bbox_pred`` MLP on the box-head features and never see the classifier weights. So every
stage's boxes, pooled features and projected region embeddings are functions of the image only; the vocabulary
enters solely through ``logits_k = (50 * normalize(linear_k(x_k))) @ W`` (``W`` = normalised class embeddings
plus a zero background column), after which the cascade only averages ``sigmoid(logits_k)`` over stages.
``encode`` therefore stores the final boxes and the per-stage unit region embeddings; ``classify`` reproduces
the upstream score combination, thresholding and NMS from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiodetic.detector.boxes import MultiLevelROIAlign, apply_deltas, clip_boxes
from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.masks import MaskHead
from audiodetic.detector.vision_ops import batched_nms
from audiodetic.errors import InputError
from audiodetic.kernels import linear


class BoxHead(nn.Module):
    """Flatten ``(N, C, 7, 7)`` -> ``fc1`` -> ReLU -> ``fc2`` -> ReLU -> ``(N, dim)``."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, start_dim=1)
        return linear(self.fc2, linear(self.fc1, x, activation="relu"), activation="relu")


class ZeroShotProjection(nn.Module):
    """The learned half of Detic's ``ZeroShotClassifier``: ``linear`` (dim -> embed_dim). Class weights are inputs."""

    def __init__(self, dim: int, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, dim)`` box features -> ``(N, embed_dim)`` float32 unit-L2 region embeddings (also under autocast)."""
        return F.normalize(linear(self.linear, x).float(), p=2, dim=1)


class BoxPredictor(nn.Module):
    """One stage's outputs: ``cls_score`` (region embedding) and class-agnostic ``bbox_pred`` MLP (dim -> 4)."""

    def __init__(self, dim: int, embed_dim: int) -> None:
        super().__init__()
        self.cls_score = ZeroShotProjection(dim, embed_dim)
        self.bbox_pred = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 4))

    def deltas(self, x: torch.Tensor) -> torch.Tensor:
        """``bbox_pred(x)``: ``(N, dim)`` box features -> ``(N, 4)`` class-agnostic box deltas."""
        return linear(self.bbox_pred[2], linear(self.bbox_pred[0], x, activation="relu"))


@dataclass
class RegionEncoding:
    """Vocabulary-independent cascade output for the proposals of one image.

    Attributes:
        boxes: ``(N, 4)`` float32 final boxes (stage-2 deltas on stage-2 inputs), resized frame, not yet clipped.
        embeddings: ``(S, N, D)`` float32 unit-L2 region embeddings of the ``S`` stages.
        proposal_scores: ``(N,)`` float32 CenterNet ``sqrt(sigmoid(agn_hm))`` of each proposal.
        resized_size: ``(h, w)`` of the resized input (clipping frame).
    """

    boxes: torch.Tensor
    embeddings: torch.Tensor
    proposal_scores: torch.Tensor
    resized_size: tuple[int, int]


@dataclass
class ClassifiedBoxes:
    """Detections after thresholding and class-wise NMS, in score order (resized frame, clipped).

    Attributes: ``boxes (M, 4)`` float32, ``scores (M,)`` float32, ``class_ids (M,)`` int64,
    ``proposal_index (M,)`` int64 (row of the proposal each detection came from).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    class_ids: torch.Tensor
    proposal_index: torch.Tensor


def class_weight_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """``(C, D)`` class embeddings -> ``(D, C + 1)`` classifier: columns L2-normalised, zero background column last."""
    weights = embeddings.t().float()
    weights = torch.cat([weights, weights.new_zeros((weights.shape[0], 1))], dim=1)
    return F.normalize(weights, p=2, dim=0)


class CascadeROIHeads(nn.Module):
    """``box_head.{k}``, ``box_predictor.{k}`` for ``k`` in the cascade stages, and the class-agnostic ``mask_head``."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.fpn_channels
        pooled = channels * config.pooler_resolution**2
        self.box_head = nn.ModuleList(BoxHead(pooled, config.box_head_dim) for _ in range(config.num_stages))
        self.box_predictor = nn.ModuleList(
            BoxPredictor(config.box_head_dim, config.embed_dim) for _ in range(config.num_stages)
        )
        self.mask_head = MaskHead(channels, num_convs=config.mask_num_convs) if config.mask_on else None
        self.box_pooler = MultiLevelROIAlign(
            config.pooler_resolution, config.pooler_strides, config.pooler_canonical_size, config.pooler_canonical_level
        )
        self.mask_pooler = MultiLevelROIAlign(
            config.mask_resolution, config.pooler_strides, config.pooler_canonical_size, config.pooler_canonical_level
        )

    def encode(
        self,
        features: list[torch.Tensor],
        proposal_boxes: torch.Tensor,
        proposal_scores: torch.Tensor,
        resized_size: tuple[int, int],
    ) -> RegionEncoding:
        """Run every stage's box regression and projection.

        ``features``: P3..P5 ``(1, C, H_l, W_l)``; ``proposal_boxes``: ``(N, 4)`` CenterNet proposals (unclipped,
        resized frame); stage 0 pools them as they are, later stages pool the previous stage's boxes clipped to
        ``resized_size = (h, w)`` (no empty-box filtering at test time, as upstream).
        """
        boxes = proposal_boxes
        embeddings = []
        for stage, (head, predictor) in enumerate(zip(self.box_head, self.box_predictor)):
            if stage > 0:
                boxes = clip_boxes(boxes, resized_size)
            x = head(self.box_pooler(features, boxes))
            embeddings.append(predictor.cls_score(x))
            boxes = apply_deltas(
                predictor.deltas(x), boxes, self.config.cascade_bbox_reg_weights[stage], self.config.bbox_scale_clamp
            )
        return RegionEncoding(
            boxes=boxes, embeddings=torch.stack(embeddings), proposal_scores=proposal_scores, resized_size=resized_size
        )

    def class_scores(
        self, encoding: RegionEncoding, class_weights: torch.Tensor, *, one_class_per_proposal: bool = True
    ) -> torch.Tensor:
        """``(N, C + 1)`` final probabilities (background column last) for ``(D, C + 1)`` ``class_weights``.

        ``sqrt(mean_k sigmoid(50 * e_k @ W) * s_prop)``; with ``one_class_per_proposal`` every entry that is not
        equal to the row's maximum over the ``C`` real classes is zeroed (ties keep all tied classes).
        """
        temperature = self.config.norm_temperature
        total = None
        class_weights = class_weights.float()
        with torch.autocast(class_weights.device.type, enabled=False):  # logits up to 50 need float32 resolution
            for stage_embeddings in encoding.embeddings.float():
                probabilities = torch.mm(temperature * stage_embeddings, class_weights).sigmoid()
                total = probabilities if total is None else total + probabilities
        scores = total * (1.0 / encoding.embeddings.shape[0])
        scores = (scores * encoding.proposal_scores.float()[:, None]) ** 0.5
        if one_class_per_proposal:
            scores = scores * (scores == scores[:, :-1].max(dim=1)[0][:, None]).float()
        return scores

    def classify(
        self,
        encoding: RegionEncoding,
        class_weights: torch.Tensor,
        *,
        score_threshold: float,
        one_class_per_proposal: bool = True,
        max_detections: int = 300,
    ) -> ClassifiedBoxes:
        """Scores, strict ``> score_threshold``, class-wise NMS (``test_nms_threshold``), top ``max_detections``."""
        scores = self.class_scores(encoding, class_weights, one_class_per_proposal=one_class_per_proposal)
        boxes = encoding.boxes
        rows = torch.arange(boxes.shape[0], device=boxes.device)
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
        if not bool(valid.all()):
            boxes, scores, rows = boxes[valid], scores[valid], rows[valid]
        scores = scores[:, :-1]
        boxes = clip_boxes(boxes, encoding.resized_size)
        keep_mask = scores > score_threshold
        indices = keep_mask.nonzero()
        boxes = boxes[indices[:, 0]]
        scores = scores[keep_mask]
        keep = batched_nms(boxes, scores, indices[:, 1], self.config.test_nms_threshold)[:max_detections]
        return ClassifiedBoxes(
            boxes=boxes[keep], scores=scores[keep], class_ids=indices[keep, 1], proposal_index=rows[indices[keep, 0]]
        )

    def mask_probabilities(self, features: list[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        """``(M, 28, 28)`` float32 mask probabilities for ``(M, 4)`` boxes (resized frame) on P3..P5."""
        if self.mask_head is None:
            raise InputError("this detector has no mask head (config.mask_on is False)")
        if boxes.shape[0] == 0:
            side = 2 * self.config.mask_resolution
            return boxes.new_zeros((0, side, side))
        return self.mask_head(self.mask_pooler(features, boxes)).float().sigmoid()[:, 0]  # float32 under autocast too
