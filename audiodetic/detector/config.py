"""``DetectorConfig``: every hyperparameter of the Detic CenterNet2 inference graph, as literal values.

The defaults are those of the released Detic configs (``Base-C2_L_R5021k_640b64_4x.yaml`` and the detectron2 defaults
it inherits), see ``shared/reference/UPSTREAM_ARCHITECTURE.md`` part A. Derive variants with
``dataclasses.replace`` (e.g. ``replace(DetectorConfig.r50(), min_size=640, max_size=640)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from audiodetic.errors import InputError

BACKBONES = ("resnet50", "swin_b")


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture and inference constants of one Detic detector.

    Attributes (grouped by stage):
        backbone: ``"resnet50"`` (timm ResNet-50, FrozenBN) or ``"swin_b"`` (Swin-B).
        resnet_layers, resnet_width: ResNet blocks per stage and stem width (64 -> C3..C5 of 512/1024/2048 ch).
        swin_*: Swin transformer dimensions.
        fpn_channels: FPN output width (P3..P7), also the CenterNet tower and mask head width.
        min_size, max_size: shortest-edge resize target and cap (detectron2 ``ResizeShortestEdge``).
        pixel_mean, pixel_std: RGB normalisation of 0..255 pixels.
        size_divisibility: the normalised image is zero-padded bottom/right to a multiple of this.
        centernet_*: proposal head (4 conv+GN+ReLU towers) and its inference thresholds.
        pooler_resolution: ROIAlignV2 output size of the box head (7x7 on P3..P5).
        box_head_dim: width of fc1/fc2 and of the class-agnostic ``bbox_pred`` MLP.
        embed_dim: width of the zero-shot classifier's projection (512 = CLIP ViT-B/32 text space).
        norm_temperature: scale applied to the L2-normalised region embedding before the dot product.
        cascade_bbox_reg_weights: ``Box2BoxTransform`` weights of the three cascade stages.
        bbox_scale_clamp: upper clamp of the decoded log-width/height deltas.
        test_nms_threshold: class-wise NMS IoU of the final detections.
        detections_per_image: maximum detections kept after NMS.
        mask_on, mask_resolution, mask_num_convs: the class-agnostic mask head (14x14 pooling -> 28x28 mask).
        mask_threshold: pasted mask probabilities ``>=`` this are foreground.
    """

    backbone: str = "resnet50"
    resnet_layers: tuple[int, ...] = (3, 4, 6, 3)
    resnet_width: int = 64
    swin_embed_dim: int = 128
    swin_depths: tuple[int, ...] = (2, 2, 18, 2)
    swin_num_heads: tuple[int, ...] = (4, 8, 16, 32)
    swin_window_size: int = 7
    swin_mlp_ratio: float = 4.0
    fpn_channels: int = 256

    min_size: int = 800
    max_size: int = 1333
    pixel_mean: tuple[float, float, float] = (123.675, 116.280, 103.530)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    size_divisibility: int = 32

    centernet_num_convs: int = 4
    centernet_gn_groups: int = 32
    centernet_strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    centernet_score_threshold: float = 0.0001
    centernet_pre_nms_topk: int = 1000
    centernet_nms_threshold: float = 0.9
    centernet_post_nms_topk: int = 256
    centernet_min_box_side: float = 0.01

    pooler_resolution: int = 7
    pooler_strides: tuple[int, ...] = (8, 16, 32)
    pooler_canonical_size: int = 224
    pooler_canonical_level: int = 4
    box_head_dim: int = 1024
    embed_dim: int = 512
    norm_temperature: float = 50.0
    cascade_bbox_reg_weights: tuple[tuple[float, float, float, float], ...] = (
        (10.0, 10.0, 5.0, 5.0),
        (20.0, 20.0, 10.0, 10.0),
        (30.0, 30.0, 15.0, 15.0),
    )
    bbox_scale_clamp: float = math.log(1000.0 / 16)
    test_nms_threshold: float = 0.5
    detections_per_image: int = 300

    mask_on: bool = True
    mask_resolution: int = 14
    mask_num_convs: int = 4
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise InputError(f"DetectorConfig.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.min_size <= 0 or self.max_size <= 0:
            raise InputError(
                f"DetectorConfig input size must be positive (min_size, max_size), got ({self.min_size}, {self.max_size})"
            )
        if self.fpn_channels % self.centernet_gn_groups:
            raise InputError(
                f"DetectorConfig.fpn_channels ({self.fpn_channels}) must be a multiple of "
                f"centernet_gn_groups ({self.centernet_gn_groups})"
            )
        if len(self.cascade_bbox_reg_weights) < 1:
            raise InputError("DetectorConfig.cascade_bbox_reg_weights needs at least one stage")

    @property
    def num_stages(self) -> int:
        """Number of cascade stages (3 for every released Detic model)."""
        return len(self.cascade_bbox_reg_weights)

    @classmethod
    def r50(cls) -> "DetectorConfig":
        """``Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size`` / ``BoxSup-C2_L_CLIP_R5021k_640b64_4x``."""
        return cls(backbone="resnet50")

    @classmethod
    def swin_b(cls) -> "DetectorConfig":
        """``Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size``."""
        return cls(backbone="swin_b")

    @classmethod
    def tiny(cls, backbone: str = "resnet50") -> "DetectorConfig":
        """A very small random-weight model for tests: same graph and thresholds, tiny widths and inputs."""
        return cls(
            backbone=backbone,
            resnet_layers=(1, 1, 1, 1),
            resnet_width=8,
            swin_embed_dim=16,
            swin_depths=(2, 2, 2, 2),
            swin_num_heads=(1, 2, 4, 8),
            fpn_channels=32,
            box_head_dim=64,
            min_size=160,
            max_size=256,
        )

    def with_input_size(self, min_size: int, max_size: int) -> "DetectorConfig":
        """A copy with another resize target (e.g. ``640, 640`` as in Detic's real-time table)."""
        return replace(self, min_size=int(min_size), max_size=int(max_size))
