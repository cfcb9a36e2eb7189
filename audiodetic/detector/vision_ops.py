"""torchvision's compiled ``nms`` and ``roi_align`` kernels, reached without importing the torchvision package.

``import torchvision`` imports ``torch._dynamo`` (through ``torchvision.ops``) and every model definition: about as
long as importing torch itself, for two kernels. This module loads only torchvision's compiled extension library
(the one that registers ``torch.ops.torchvision.*``) and calls those operators directly, which is what
``torchvision.ops.nms`` / ``roi_align`` do for plain tensors. When that library cannot be found or loaded (an
unusual build), it falls back to ``import torchvision``, which registers the same operators. If torchvision is
already imported, its registration is used as it is.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading

import torch

__all__ = ["batched_nms", "nms", "roi_align"]

_LIBRARY_NAMES = ("_C_stable", "_C")  # torchvision >= 0.25 ships the stable-ABI build, older ones ``_C``
_lock = threading.Lock()
_ready = False


def _register_torchvision_ops() -> None:
    """Make ``torch.ops.torchvision.nms``/``roi_align`` available (once per process)."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        if "torchvision" not in sys.modules and not _load_extension_library():
            import torchvision  # noqa: F401  (registers the operators the usual way)
        _ready = True


def _load_extension_library() -> bool:
    spec = importlib.util.find_spec("torchvision")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return False
    loader = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    for folder in spec.submodule_search_locations:
        finder = importlib.machinery.FileFinder(os.fspath(folder), loader)
        for name in _LIBRARY_NAMES:
            found = finder.find_spec(name)
            if found is None or found.origin is None:
                continue
            try:
                torch.ops.load_library(found.origin)
                torch.ops.torchvision.nms  # noqa: B018  (raises if this library did not register the kernels)
                torch.ops.torchvision.roi_align  # noqa: B018
            except (OSError, AttributeError, RuntimeError):
                continue
            return True
    return False


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices (int64, score-descending) of the ``(N, 4)`` xyxy ``boxes`` kept by greedy NMS (IoU ``> threshold`` drops)."""
    _register_torchvision_ops()
    return torch.ops.torchvision.nms(boxes, scores, float(iou_threshold))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category ``idxs`` ``(N,)``; returns kept indices (int64) in decreasing score order.

    Takes the same route as ``torchvision.ops.batched_nms`` so that ties and rounding resolve identically: above
    4000 box coordinates on the CPU (100 000 on a GPU) one NMS per category, else one NMS over boxes shifted apart
    by ``category * (max coordinate + 1)``.
    """
    if boxes.numel() > (4000 if boxes.device.type == "cpu" else 100_000):
        keep = torch.zeros_like(scores, dtype=torch.bool)
        for category in torch.unique(idxs):
            members = torch.where(idxs == category)[0]
            keep[members[nms(boxes[members], scores[members], iou_threshold)]] = True
        kept = torch.where(keep)[0]
        return kept[scores[kept].sort(descending=True)[1]]
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int = 0,
    aligned: bool = True,
) -> torch.Tensor:
    """``(K, C, S, S)`` RoIAlign of ``(B, C, H, W)`` ``features`` over ``(K, 5)`` rois ``(batch index, x0, y0, x1, y1)``."""
    _register_torchvision_ops()
    return torch.ops.torchvision.roi_align(
        features, rois, float(spatial_scale), int(output_size), int(output_size), int(sampling_ratio), bool(aligned)
    )
