"""``Detector``: Detic's CenterNet2 inference graph with the vocabulary as a call argument.

``encode(image)`` does all vocabulary-independent work once (preprocess, backbone, FPN, CenterNet proposals, the
three class-agnostic cascade stages); ``classify(encoding, vocabulary)`` scores the stored region embeddings
against any vocabulary, thresholds, runs class-wise NMS and the mask head on the survivors only.
``detect(image, vocabulary) == classify(encode(image), vocabulary)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL.Image import Image as PILImage
from torch import nn

from audiodetic import inputs
from audiodetic.detector.boxes import clip_boxes, nonempty
from audiodetic.detector.centernet import CenterNetHead, centernet_proposals
from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.masks import paste_masks_rle
from audiodetic.detector.preprocess import PreprocessedImage, preprocess_image
from audiodetic.detector.roi_heads import CascadeROIHeads, RegionEncoding, class_weight_matrix
from audiodetic.errors import InputError
from audiodetic.structures import Detections


@dataclass
class ImageEncoding:
    """Everything about one image that does not depend on the vocabulary (tensors on the detector's device).

    Attributes:
        original_size: ``(H, W)`` of the caller's image (the frame of the returned ``Detections``).
        resized_size: ``(h, w)`` of the resized network input (the frame of all boxes below).
        features: P3..P5 ``(1, C, h_l, w_l)`` float32 maps (pooled by the mask head).
        proposal_boxes: ``(N, 4)`` float32 CenterNet proposals, unclipped.
        proposal_scores: ``(N,)`` float32 ``sqrt(sigmoid(agn_hm))`` of each proposal.
        boxes: ``(N, 4)`` float32 final cascade boxes of each proposal (unclipped; clipped when classified).
        embeddings: ``(S, N, D)`` float32 unit-L2 region embeddings of the ``S`` cascade stages.
        mask_cache: ``(N, 28, 28)`` float32 mask probabilities of proposals whose mask was already needed, with
            ``mask_ready (N,)`` bool. A proposal's final box, hence its mask, is the same for every vocabulary, so
            ``classify`` fills this lazily and re-prompting reuses it (same values as computing afresh: the mask
            head treats every region independently).
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    features: list[torch.Tensor]
    proposal_boxes: torch.Tensor
    proposal_scores: torch.Tensor
    boxes: torch.Tensor
    embeddings: torch.Tensor
    mask_cache: torch.Tensor | None = None
    mask_ready: torch.Tensor | None = None

    @property
    def regions(self) -> RegionEncoding:
        return RegionEncoding(self.boxes, self.embeddings, self.proposal_scores, self.resized_size)


def class_embeddings(vocabulary: Any, names: Sequence[str] | None, dim: int) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Normalise the vocabulary argument: a ``Vocabulary`` or a ``(C, D)`` array/tensor -> (tensor, names)."""
    from audiodetic.vocabulary import Vocabulary

    if isinstance(vocabulary, Vocabulary):
        vocabulary.check_compatible(dim=dim)
        matrix = torch.from_numpy(np.array(vocabulary.embeddings, dtype=np.float32))
        names = vocabulary.names if names is None else tuple(names)
    else:
        if isinstance(vocabulary, torch.Tensor):
            matrix = vocabulary.detach().to("cpu", torch.float32)
        elif isinstance(vocabulary, np.ndarray) or isinstance(vocabulary, (list, tuple)):
            matrix = torch.as_tensor(np.asarray(vocabulary, dtype=np.float32))
        else:
            raise InputError(
                f"vocabulary must be a Vocabulary or a (C, {dim}) array/tensor, got {type(vocabulary).__name__}"
            )
        if matrix.ndim != 2 or matrix.shape[1] != dim or matrix.shape[0] < 1:
            raise InputError(f"vocabulary embeddings must have shape (C, {dim}) with C >= 1, got {tuple(matrix.shape)}")
        if not bool(torch.isfinite(matrix).all()):
            raise InputError("vocabulary embeddings must be finite")
        names = tuple(f"class_{i}" for i in range(matrix.shape[0])) if names is None else tuple(names)
    if len(names) != matrix.shape[0]:
        raise InputError(f"got {len(names)} names for {matrix.shape[0]} vocabulary embeddings; they must match")
    return matrix, names


class Detector(nn.Module):
    """Detic CenterNet2 detector (inference only). Build with :func:`build_detector` or ``convert.load_detector``.

    Submodules (names match ``convert.py``'s key table): ``backbone``, ``fpn``, ``centernet``, ``roi_heads``.
    """

    def __init__(self, config: DetectorConfig, backbone: nn.Module, fpn: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.fpn = fpn
        self.centernet = CenterNetHead(
            config.fpn_channels,
            len(config.centernet_strides),
            num_convs=config.centernet_num_convs,
            gn_groups=config.centernet_gn_groups,
        )
        self.roi_heads = CascadeROIHeads(config)
        # derived from the config, not the checkpoint: real CPU tensors even when built under torch.device("meta")
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean, device="cpu").view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std, device="cpu").view(3, 1, 1), persistent=False)
        self.checkpoint_info: dict[str, Any] = {}
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # -- vocabulary-independent part ---------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, image: np.ndarray | PILImage, *, input_size: tuple[int, int] | None = None) -> ImageEncoding:
        """Encode one ``(H, W, 3)`` uint8 RGB image, or an RGB ``PIL.Image`` (see :class:`ImageEncoding`).

        ``input_size = (min_size, max_size)`` overrides the config's shortest-edge resize for this call
        (e.g. ``(640, 640)`` as Detic's real-time table). Equals ``encode_inputs(preprocess(image, ...))``.
        """
        return self.encode_inputs(self.preprocess(image, input_size=input_size))

    @torch.inference_mode()
    def preprocess(self, image: np.ndarray | PILImage, *, input_size: tuple[int, int] | None = None
                   ) -> PreprocessedImage:
        """Resize, normalise and pad one ``(H, W, 3)`` uint8 RGB image (or RGB PIL image) into the network input.

        Uses no model weights, so it may run in other threads while the model encodes earlier images.
        """
        min_size, max_size = check_input_size(input_size, self.config)
        return preprocess_image(image, min_size=min_size, max_size=max_size, pixel_mean=self.pixel_mean,
                                pixel_std=self.pixel_std, size_divisibility=self.config.size_divisibility)

    @torch.inference_mode()
    def encode_inputs(self, inputs: PreprocessedImage, pyramid: Sequence[torch.Tensor] | None = None
                      ) -> ImageEncoding:
        """Encode a preprocessed image. ``pyramid``: the FPN maps of ``inputs.tensor`` (``(1, C, h_l, w_l)``
        each), computed here unless given (:mod:`audiodetic.detector.batching` computes them for several images
        in one backbone pass)."""
        config = self.config
        if pyramid is None:
            pyramid = self.fpn(self.backbone(inputs.tensor))
        heatmaps, regressions = self.centernet(pyramid)
        proposal_boxes, proposal_scores = centernet_proposals(
            heatmaps,
            regressions,
            config.centernet_strides,
            score_threshold=config.centernet_score_threshold,
            pre_nms_topk=config.centernet_pre_nms_topk,
            nms_threshold=config.centernet_nms_threshold,
            post_nms_topk=config.centernet_post_nms_topk,
            min_box_side=config.centernet_min_box_side,
        )
        features = list(pyramid[: len(config.pooler_strides)])
        regions = self.roi_heads.encode(features, proposal_boxes, proposal_scores, inputs.resized_size)
        return ImageEncoding(
            original_size=inputs.original_size,
            resized_size=inputs.resized_size,
            features=features,
            proposal_boxes=proposal_boxes,
            proposal_scores=proposal_scores,
            boxes=regions.boxes,
            embeddings=regions.embeddings,
        )

    # -- vocabulary-dependent part -----------------------------------------------------------------------------
    @torch.inference_mode()
    def classify(
        self,
        encoding: ImageEncoding,
        vocabulary: Any,
        *,
        names: Sequence[str] | None = None,
        score_threshold: float = 0.5,
        all_classes: bool = False,
        with_masks: bool = True,
        max_detections: int = 300,
    ) -> Detections:
        """Detections of an encoded image for a vocabulary.

        Args:
            encoding: from :meth:`encode` on this detector.
            vocabulary: a ``Vocabulary``, or its ``(C, D)`` class embeddings as a tensor/array (rows normalised
                here as upstream does).
            names: ``C`` class names (default: the vocabulary's, or ``class_0..``).
            score_threshold: keep scores strictly greater than this (Detic's demo default 0.5).
            all_classes: score every class of a proposal instead of only its best one(s).
            with_masks: compute and paste instance masks (ignored when the model has no mask head).
            max_detections: keep at most this many detections after NMS (300 upstream).

        Returns:
            ``Detections`` in the original image frame, sorted by score (boxes float32 xyxy pixels); masks as
            COCO RLE (a few bytes per column of each box; ``.masks`` decodes them to ``(N, H, W)`` bool).
        """
        _check_options(score_threshold, max_detections)
        matrix, names = class_embeddings(vocabulary, names, self.config.embed_dim)
        weights = class_weight_matrix(matrix.to(self.device))
        result = self.roi_heads.classify(
            encoding.regions,
            weights,
            score_threshold=float(score_threshold),
            one_class_per_proposal=not all_classes,
            max_detections=int(max_detections),
        )
        return self._postprocess(
            encoding, result.boxes, result.scores, result.class_ids, result.proposal_index, names, with_masks
        )

    def detect(
        self, image: np.ndarray, vocabulary: Any, *, input_size: tuple[int, int] | None = None, **kwargs: Any
    ) -> Detections:
        """``classify(encode(image, input_size=...), vocabulary, **kwargs)`` — one-shot detection.

        Keyword options are those of :meth:`classify`; they are validated before the image is encoded.
        """
        _check_options(kwargs.get("score_threshold", 0.5), kwargs.get("max_detections", 300))
        # fail before the heavy part, and hand classify the checked matrix rather than converting it again
        matrix, names = class_embeddings(vocabulary, kwargs.pop("names", None), self.config.embed_dim)
        check_input_size(input_size, self.config)
        return self.classify(self.encode(image, input_size=input_size), matrix, names=names, **kwargs)

    def forward(self, image: np.ndarray, vocabulary: Any, **kwargs: Any) -> Detections:
        return self.detect(image, vocabulary, **kwargs)

    def _postprocess(
        self,
        encoding: ImageEncoding,
        boxes: torch.Tensor,
        scores: torch.Tensor,
        class_ids: torch.Tensor,
        proposal_index: torch.Tensor,
        names: tuple[str, ...],
        with_masks: bool,
    ) -> Detections:
        """Scale resized-frame boxes to the original image, clip, drop empty boxes, paste masks as RLE (as
        detectron2's ``detector_postprocess``, without full-size arrays).

        ``boxes`` ``(M, 4)`` are the clipped resized-frame boxes of proposals ``proposal_index`` ``(M,)``.
        """
        height, width = encoding.original_size
        scale_x, scale_y = width / encoding.resized_size[1], height / encoding.resized_size[0]
        scaled = boxes.clone()
        scaled[:, 0::2] *= scale_x
        scaled[:, 1::2] *= scale_y
        scaled = clip_boxes(scaled, (height, width))
        keep = nonempty(scaled)
        masks = None
        if with_masks and self.roi_heads.mask_head is not None:
            probabilities = self._mask_probabilities(encoding, boxes[keep], proposal_index[keep])
            masks = paste_masks_rle(probabilities, scaled[keep], (height, width), self.config.mask_threshold)
        return Detections(
            boxes=scaled[keep].cpu().numpy(),
            scores=scores[keep].cpu().numpy(),
            class_ids=class_ids[keep].cpu().numpy(),
            names=names,
            image_size=(height, width),
            masks=masks,
        )

    def _mask_probabilities(
        self, encoding: ImageEncoding, boxes: torch.Tensor, proposal_index: torch.Tensor
    ) -> torch.Tensor:
        """``(M, 28, 28)`` mask probabilities of the given proposals, computing only those not cached yet."""
        count = encoding.boxes.shape[0]
        if encoding.mask_cache is None or encoding.mask_ready is None:
            side = 2 * self.config.mask_resolution
            encoding.mask_cache = encoding.boxes.new_zeros((count, side, side))
            encoding.mask_ready = torch.zeros(count, dtype=torch.bool, device=encoding.boxes.device)
        missing = ~encoding.mask_ready[proposal_index]
        if bool(missing.any()):
            # one proposal can appear several times (several classes): compute each once
            rows, first = _unique_first(proposal_index[missing])
            fresh = self.roi_heads.mask_probabilities(encoding.features, boxes[missing][first])
            encoding.mask_cache[rows] = fresh
            encoding.mask_ready[rows] = True
        return encoding.mask_cache[proposal_index]


def _unique_first(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique ``values`` and the position of the first occurrence of each in ``values``."""
    unique, inverse = torch.unique(values, return_inverse=True)
    positions = torch.arange(values.shape[0], device=values.device)
    first = torch.full_like(unique, values.shape[0]).scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first


def check_input_size(input_size: Any, config: DetectorConfig) -> tuple[int, int]:
    """``(min_size, max_size)`` from an override (checked by :func:`audiodetic.inputs.check_input_size`) or the
    config's own."""
    if input_size is None:
        return config.min_size, config.max_size
    return inputs.check_input_size(input_size)


def _check_options(score_threshold: Any, max_detections: Any) -> None:
    inputs.check_threshold(score_threshold)
    inputs.check_positive_int(max_detections, argument="max_detections")


def build_detector(config: DetectorConfig | None = None) -> Detector:
    """A randomly initialised :class:`Detector` for ``config`` (default ``DetectorConfig.r50()``), in eval mode.

    Load weights with ``audiodetic.detector.convert.load_detector`` (released checkpoints) instead.
    """
    from audiodetic.detector.fpn import FPN

    config = DetectorConfig.r50() if config is None else config
    if config.backbone == "resnet50":
        from audiodetic.detector.resnet import ResNetBackbone

        backbone: nn.Module = ResNetBackbone(layers=tuple(config.resnet_layers), width=config.resnet_width)
    else:
        from audiodetic.detector.swin import SwinBackbone

        backbone = SwinBackbone(
            embed_dim=config.swin_embed_dim,
            depths=tuple(config.swin_depths),
            num_heads=tuple(config.swin_num_heads),
            window_size=config.swin_window_size,
            mlp_ratio=config.swin_mlp_ratio,
        )
    fpn = FPN(in_channels=tuple(backbone.out_channels), out_channels=config.fpn_channels)
    return Detector(config, backbone, fpn)
