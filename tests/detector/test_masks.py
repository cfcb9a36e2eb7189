"""Mask head layout and pasting (equal to a full-image grid_sample paste, threshold >= 0.5)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from audiodetic.detector.masks import MaskHead, paste_masks


def _full_image_paste(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sample every pixel centre of the image through each box's [-1, 1] grid (no region cropping)."""
    out = []
    for mask, (x0, y0, x1, y1) in zip(masks, boxes):
        ys = (torch.arange(height, dtype=torch.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
        xs = (torch.arange(width, dtype=torch.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
        grid = torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=2)
        out.append(F.grid_sample(mask[None, None], grid[None], align_corners=False)[0, 0] >= 0.5)
    return torch.stack(out)


def test_mask_head_layout_and_output_size():
    head = MaskHead(32)
    keys = set(head.state_dict())
    assert {f"mask_fcn{i}.weight" for i in range(1, 5)} <= keys
    assert head.deconv.weight.shape == (32, 32, 2, 2)
    assert head.predictor.weight.shape == (1, 32, 1, 1)
    with torch.no_grad():
        assert head(torch.randn(3, 32, 14, 14)).shape == (3, 1, 28, 28)


def test_paste_equals_full_image_sampling():
    torch.manual_seed(0)
    masks = torch.rand(6, 28, 28)
    masks[0] = 1.0  # saturated mask: the border pixels decide ">= 0.5" exactly at the box edge
    boxes = torch.tensor(
        [
            [10.0, 12.0, 40.0, 33.0],
            [0.0, 0.0, 79.0, 59.0],
            [3.3, 7.7, 5.1, 9.9],  # smaller than a pixel or two
            [70.5, 50.5, 80.0, 60.0],  # touches the bottom-right corner
            [20.25, 0.0, 21.0, 60.0],
            [13.6, 22.4, 55.9, 41.2],
        ]
    )
    pasted = paste_masks(masks, boxes, (60, 80))
    assert pasted.dtype == torch.bool and pasted.shape == (6, 60, 80)
    assert torch.equal(pasted, _full_image_paste(masks, boxes, 60, 80))
    # a saturated mask covers exactly the pixels whose centres lie in the box
    ys, xs = torch.nonzero(pasted[0], as_tuple=True)
    assert xs.min() == 10 and xs.max() == 39 and ys.min() == 12 and ys.max() == 32


def test_paste_of_nothing():
    assert paste_masks(torch.zeros(0, 28, 28), torch.zeros(0, 4), (5, 7)).shape == (0, 5, 7)


def test_rle_paste_equals_dense_paste_in_any_band_width():
    from audiodetic.detector.masks import paste_masks_rle
    from audiodetic.rle_masks import RleMasks

    torch.manual_seed(1)
    masks = torch.rand(7, 28, 28)
    masks[0] = 1.0  # full-height box of a saturated mask: runs go on from one column into the next
    boxes = torch.tensor(
        [
            [5.0, 0.0, 30.0, 60.0],
            [0.0, 0.0, 79.0, 59.0],
            [3.3, 7.7, 5.1, 9.9],
            [70.5, 50.5, 80.0, 60.0],
            [20.25, 0.0, 21.0, 60.0],
            [13.6, 22.4, 55.9, 41.2],
            [-4.0, -3.0, 90.0, 70.0],  # larger than the image
        ]
    )
    dense = paste_masks(masks, boxes, (60, 80)).numpy()
    for band_pixels in (1, 61, 500, 1 << 22):  # one column per band .. the whole region at once
        rle = paste_masks_rle(masks, boxes, (60, 80), band_pixels=band_pixels)
        assert isinstance(rle, RleMasks) and rle.image_size == (60, 80)
        np.testing.assert_array_equal(rle.to_dense(), dense)
        assert rle.counts == RleMasks.from_dense(dense).counts  # the same strings pycocotools writes
    assert len(paste_masks_rle(torch.zeros(0, 28, 28), torch.zeros(0, 4), (5, 7))) == 0
