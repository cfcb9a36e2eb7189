"""CenterNet proposals: head layout, decoding, thresholds, per-level top-k, NMS 0.9, kthvalue top-k with ties."""

from __future__ import annotations

import math

import pytest
import torch

from audiodetic.detector.centernet import CenterNetHead, centernet_proposals, level_grid


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_head_layout_matches_official_key_names():
    head = CenterNetHead(32, 5)
    keys = set(head.state_dict())
    for index in (0, 3, 6, 9):
        assert f"bbox_tower.{index}.weight" in keys  # conv
        assert f"bbox_tower.{index + 1}.weight" in keys  # GroupNorm
    assert {"bbox_pred.weight", "agn_hm.weight", "scales.4.scale"} <= keys
    assert head.state_dict()["scales.0.scale"].shape == (1,)
    assert isinstance(head.bbox_tower[1], torch.nn.GroupNorm) and head.bbox_tower[1].num_groups == 32


def test_head_outputs_per_level_and_nonnegative_regression():
    torch.manual_seed(0)
    head = CenterNetHead(32, 2).eval()
    with torch.no_grad():
        head.scales[1].scale.fill_(0.0)  # the per-level scale multiplies the level's regression
        heatmaps, regressions = head([torch.randn(1, 32, 6, 8), torch.randn(1, 32, 3, 4)])
    assert [h.shape for h in heatmaps] == [(1, 1, 6, 8), (1, 1, 3, 4)]
    assert [r.shape for r in regressions] == [(1, 4, 6, 8), (1, 4, 3, 4)]
    assert torch.all(regressions[0] >= 0)
    assert torch.count_nonzero(regressions[0]) > 0
    assert torch.count_nonzero(regressions[1]) == 0


def test_level_grid_centres_are_row_major_with_half_stride_offset():
    grid = level_grid(2, 3, 8, torch.device("cpu"))
    expected = torch.tensor([[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]], dtype=torch.float32)
    assert torch.equal(grid, expected)


def _single_level(probabilities: torch.Tensor, ltrb: torch.Tensor) -> tuple[list, list]:
    """Head outputs of one level from (H, W) probabilities and (4, H, W) distances in stride units."""
    logits = torch.log(probabilities / (1 - probabilities))[None, None]
    return [logits], [ltrb[None]]


def test_decoding_threshold_and_sqrt_score():
    probabilities = torch.full((2, 3), 0.00005)  # below INFERENCE_TH 1e-4
    probabilities[1, 2] = 0.64
    ltrb = torch.zeros(4, 2, 3)
    ltrb[:, 1, 2] = torch.tensor([1.0, 0.5, 2.0, 0.25])
    boxes, scores = centernet_proposals(*_single_level(probabilities, ltrb), [8])
    # centre of (row 1, col 2) at stride 8: (2*8 + 4, 1*8 + 4) = (20, 12); distances * stride
    torch.testing.assert_close(boxes, torch.tensor([[20 - 8.0, 12 - 4.0, 20 + 16.0, 12 + 2.0]]))
    torch.testing.assert_close(scores, torch.tensor([0.8]))


def test_degenerate_boxes_get_the_hundredth_pixel_guard_and_are_not_clipped():
    probabilities = torch.full((1, 2), 0.5)
    ltrb = torch.zeros(4, 1, 2)
    ltrb[0, 0, 1] = 10.0  # extends far left of the image: stays unclipped
    boxes, _ = centernet_proposals(*_single_level(probabilities, ltrb), [16])
    boxes = sorted(boxes.tolist())
    assert boxes[0] == pytest.approx([24 - 160.0, 8.0, 24.0, 8.01])
    assert boxes[1] == pytest.approx([8.0, 8.0, 8.01, 8.01])


def test_per_level_topk_keeps_the_best_pre_nms_topk():
    torch.manual_seed(0)
    probabilities = torch.rand(40, 40) * 0.5 + 0.25
    ltrb = torch.full((4, 40, 40), 0.2)  # tiny disjoint boxes: NMS removes nothing
    boxes, scores = centernet_proposals(*_single_level(probabilities, ltrb), [8], pre_nms_topk=100, post_nms_topk=1000)
    assert boxes.shape == (100, 4)
    expected = torch.sqrt(probabilities.flatten().topk(100).values)
    torch.testing.assert_close(scores, expected)  # NMS returns score-descending order


def test_nms_suppresses_iou_above_point_nine_only():
    probabilities = torch.tensor([[0.9, 0.8, 0.7]])
    ltrb = torch.zeros(4, 1, 3)
    # all three boxes centred at x = 4, 12, 20 (stride 8) with half-width 100 -> IoU ~ 0.92..0.96 (suppressed)
    ltrb[:, 0, :] = torch.tensor([[100.0], [1.0], [100.0], [1.0]]) / 8
    ltrb[0, 0, 2] = 40.0 / 8  # third box narrower: IoU with the first below 0.9 -> kept
    ltrb[2, 0, 2] = 40.0 / 8
    boxes, scores = centernet_proposals(*_single_level(probabilities, ltrb), [8])
    torch.testing.assert_close(scores, torch.sqrt(torch.tensor([0.9, 0.7])))


def test_post_nms_topk_uses_kthvalue_and_keeps_ties():
    probabilities = torch.full((1, 10), 0.3)
    probabilities[0, :4] = torch.tensor([0.9, 0.8, 0.7, 0.6])
    ltrb = torch.full((4, 1, 10), 0.1)  # disjoint boxes
    boxes, scores = centernet_proposals(*_single_level(probabilities, ltrb), [8], post_nms_topk=5)
    # top 5 would cut inside the six tied 0.3 scores: all ties are kept -> 4 + 6
    assert scores.shape == (10,)
    boxes, scores = centernet_proposals(*_single_level(probabilities, ltrb), [8], post_nms_topk=3)
    torch.testing.assert_close(scores, torch.sqrt(torch.tensor([0.9, 0.8, 0.7])))


def test_levels_are_concatenated_before_nms():
    p0 = torch.tensor([[0.5]])
    p1 = torch.tensor([[0.9]])
    logits = [torch.full((1, 1, 1, 1), _logit(0.5)), torch.full((1, 1, 1, 1), _logit(0.9))]
    regressions = [torch.ones(1, 4, 1, 1), torch.ones(1, 4, 1, 1) * 0.5]  # both boxes 8x8 around (4,4)/(8,8)
    boxes, scores = centernet_proposals(logits, regressions, [8, 16])
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 0.0, 16.0, 16.0], [-4.0, -4.0, 12.0, 12.0]]))
    torch.testing.assert_close(scores, torch.sqrt(torch.cat([p1[0], p0[0]])))


def test_batch_of_two_is_rejected():
    with pytest.raises(ValueError, match="one image"):
        centernet_proposals([torch.zeros(2, 1, 2, 2)], [torch.zeros(2, 4, 2, 2)], [8])
