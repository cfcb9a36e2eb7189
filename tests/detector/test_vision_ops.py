"""``vision_ops`` calls torchvision's compiled kernels without the package import, with torchvision's results."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from audiodetic.detector import vision_ops


def _boxes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    corners = torch.rand(count, 2, generator=gen) * 200
    sizes = torch.rand(count, 2, generator=gen) * 60 + 1
    scores = torch.rand(count, generator=gen)
    classes = torch.randint(0, 5, (count,), generator=gen)
    return torch.cat([corners, corners + sizes], dim=1), scores, classes


def test_loading_and_detecting_import_neither_torchvision_nor_dynamo() -> None:
    """Both cost about as long as importing torch (a cold start): no detector step may pull them in."""
    code = ("import sys, numpy as np; from audiodetic.detector.convert import load_detector; "
            "from audiodetic.testing.detic_checkpoints import make_detic_state_dict; "
            "detector = load_detector(make_detic_state_dict('tiny-swin', seed=0)); "
            "load_detector(make_detic_state_dict('tiny', seed=0)).detect(np.zeros((64, 80, 3), np.uint8), "
            "np.ones((2, detector.config.embed_dim), np.float32)); "
            "detector.detect(np.zeros((64, 80, 3), np.uint8), np.ones((2, detector.config.embed_dim), np.float32)); "
            "print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("count", [0, 40, 1500])  # 1500 boxes = 6000 coordinates: torchvision's per-class loop
def test_batched_nms_equals_torchvision(count: int) -> None:
    import torchvision

    boxes, scores, classes = _boxes(count, seed=count)
    ours = vision_ops.batched_nms(boxes, scores, classes, 0.5)
    assert ours.dtype == torch.int64
    assert torch.equal(ours, torchvision.ops.batched_nms(boxes, scores, classes, 0.5))
    assert torch.equal(vision_ops.nms(boxes, scores, 0.7), torchvision.ops.nms(boxes, scores, 0.7))


def test_roi_align_equals_torchvision() -> None:
    import torchvision

    features = torch.randn(1, 8, 30, 40)
    boxes, _, _ = _boxes(12, seed=3)
    rois = torch.cat([torch.zeros(12, 1), boxes], dim=1)
    ours = vision_ops.roi_align(features, rois, 7, 1 / 8, 0, True)
    assert ours.shape == (12, 8, 7, 7)
    assert torch.equal(ours, torchvision.ops.roi_align(features, rois, (7, 7), 1 / 8, 0, True))
