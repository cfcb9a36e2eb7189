"""Cascade ROI heads: box decoding, pooler level rule, encode (class-agnostic stages), score combination, NMS."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import roi_align

from audiodetic.detector.boxes import MultiLevelROIAlign, apply_deltas, assign_levels, clip_boxes
from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.roi_heads import CascadeROIHeads, RegionEncoding, class_weight_matrix

CONFIG = DetectorConfig.tiny()


def test_apply_deltas_identity_and_known_values():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    torch.testing.assert_close(apply_deltas(torch.zeros(1, 4), boxes, (10, 10, 5, 5)), boxes)
    # dx = 1 (after /10) shifts by one width; dw = log 2 (after /5) doubles the width
    deltas = torch.tensor([[10.0, 0.0, 5 * math.log(2.0), 0.0]])
    torch.testing.assert_close(apply_deltas(deltas, boxes, (10, 10, 5, 5)), torch.tensor([[20.0, 20.0, 60.0, 60.0]]))


def test_apply_deltas_clamps_log_scale():
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    out = apply_deltas(torch.tensor([[0.0, 0.0, 1e4, 1e4]]), boxes, (1, 1, 1, 1))
    torch.testing.assert_close(out, torch.tensor([[-492.0, -492.0, 508.0, 508.0]]))  # width 16 * 1000/16


def test_clip_boxes_uses_w_and_h_not_minus_one():
    clipped = clip_boxes(torch.tensor([[-5.0, -1.0, 105.0, 61.0]]), (60, 100))
    assert clipped.tolist() == [[0.0, 0.0, 100.0, 60.0]]


def test_level_assignment_rule():
    sides = torch.tensor([16.0, 111.9, 112.0, 224.0, 447.9, 448.0, 2000.0])
    boxes = torch.stack([torch.zeros(7), torch.zeros(7), sides, sides], dim=1)
    assert assign_levels(boxes, 3, 5).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_pooler_routes_each_box_to_its_level():
    torch.manual_seed(0)
    features = [torch.randn(1, 4, 32, 32), torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8)]
    boxes = torch.tensor([[3.0, 4.0, 40.0, 50.0], [10.0, 10.0, 250.0, 240.0], [0.0, 0.0, 600.0, 500.0]])
    pooled = MultiLevelROIAlign(7, (8, 16, 32))(features, boxes)
    assert pooled.shape == (3, 4, 7, 7)
    for row, (level, scale) in enumerate([(0, 1 / 8), (1, 1 / 16), (2, 1 / 32)]):
        rois = torch.cat([torch.zeros(1, 1), boxes[row : row + 1]], dim=1)
        expected = roi_align(features[level], rois, (7, 7), scale, 0, True)
        torch.testing.assert_close(pooled[row : row + 1], expected, rtol=0, atol=0)


def _heads() -> CascadeROIHeads:
    torch.manual_seed(0)
    return CascadeROIHeads(CONFIG).eval()


def _features() -> list[torch.Tensor]:
    torch.manual_seed(1)
    return [torch.randn(1, 32, 20, 28), torch.randn(1, 32, 10, 14), torch.randn(1, 32, 5, 7)]


def test_state_dict_names_match_official_layout():
    keys = set(_heads().state_dict())
    expected = {
        "box_head.2.fc1.weight", "box_head.0.fc2.bias", "box_predictor.1.cls_score.linear.weight",
        "box_predictor.0.bbox_pred.0.weight", "box_predictor.2.bbox_pred.2.bias", "mask_head.mask_fcn4.weight",
        "mask_head.deconv.weight", "mask_head.predictor.bias",
    }
    assert expected <= keys
    assert not any("zs_weight" in key for key in keys)


def test_encode_runs_stages_on_previous_boxes_clipped_after_stage_zero():
    heads = _heads()
    features = _features()
    image_size = (150, 220)
    proposals = torch.tensor([[-30.0, -20.0, 80.0, 90.0], [100.0, 40.0, 260.0, 170.0], [5.0, 6.0, 7.0, 8.0]])
    scores = torch.tensor([0.9, 0.7, 0.6])
    with torch.no_grad():
        encoding = heads.encode(features, proposals, scores, image_size)
        # independent re-derivation of the cascade
        boxes, expected_embeddings = proposals, []
        for stage in range(3):
            pooled = heads.box_pooler(features, boxes if stage == 0 else clip_boxes(boxes, image_size))
            x = heads.box_head[stage](pooled)
            z = heads.box_predictor[stage].cls_score.linear(x)
            expected_embeddings.append(z / z.norm(dim=1, keepdim=True))
            deltas = heads.box_predictor[stage].bbox_pred(x)
            boxes = apply_deltas(deltas, boxes if stage == 0 else clip_boxes(boxes, image_size),
                                 CONFIG.cascade_bbox_reg_weights[stage])
    assert encoding.embeddings.shape == (3, 3, CONFIG.embed_dim)
    torch.testing.assert_close(encoding.embeddings, torch.stack(expected_embeddings))
    torch.testing.assert_close(encoding.boxes, boxes)
    torch.testing.assert_close(encoding.embeddings.norm(dim=2), torch.ones(3, 3))
    assert encoding.proposal_scores is scores


def test_class_weight_matrix_normalises_columns_and_appends_zero_background():
    weights = class_weight_matrix(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    torch.testing.assert_close(weights, torch.tensor([[0.6, 0.0, 0.0], [0.8, 1.0, 0.0]]))
    assert torch.count_nonzero(weights[:, 2]) == 0


def _encoding(embeddings: torch.Tensor, proposal_scores: torch.Tensor, boxes: torch.Tensor) -> RegionEncoding:
    return RegionEncoding(boxes, embeddings, proposal_scores, (100, 100))


def test_class_scores_formula():
    heads = _heads()
    torch.manual_seed(3)
    embeddings = torch.nn.functional.normalize(torch.randn(3, 4, 512), dim=2)
    proposal_scores = torch.tensor([0.9, 0.5, 0.2, 0.7])
    classes = torch.randn(5, 512)
    encoding = _encoding(embeddings, proposal_scores, torch.zeros(4, 4))
    weights = class_weight_matrix(classes)
    scores = heads.class_scores(encoding, weights, one_class_per_proposal=False)
    unit = classes / classes.norm(dim=1, keepdim=True)
    probabilities = torch.sigmoid(50.0 * embeddings @ unit.t()).mean(dim=0)
    expected = torch.sqrt(probabilities * proposal_scores[:, None])
    torch.testing.assert_close(scores[:, :5], expected)
    torch.testing.assert_close(scores[:, 5], torch.sqrt(0.5 * proposal_scores))  # background logit exactly 0


def test_one_class_per_proposal_keeps_ties_and_zeroes_background():
    heads = _heads()
    embeddings = torch.zeros(3, 2, 512)
    embeddings[:, :, 0] = 1.0
    classes = torch.zeros(3, 512)
    classes[:, 0] = torch.tensor([1.0, 1.0, -1.0])  # classes 0 and 1 tie
    classes[2, 1] = 0.1
    encoding = _encoding(embeddings, torch.ones(2), torch.zeros(2, 4))
    scores = heads.class_scores(encoding, class_weight_matrix(classes))
    assert torch.all(scores[:, 0] > 0) and torch.equal(scores[:, 0], scores[:, 1])
    assert torch.all(scores[:, 2:] == 0)


def test_classify_thresholds_strictly_clips_and_runs_classwise_nms():
    heads = _heads()
    embeddings = torch.zeros(3, 3, 512)
    embeddings[:, :, 0] = 1.0
    embeddings[:, 2, 0] = -1.0  # proposal 2 scores low for class 0
    classes = torch.zeros(2, 512)
    classes[0, 0] = 1.0
    classes[1, 0] = -1.0
    boxes = torch.tensor([[-10.0, 0.0, 50.0, 50.0], [1.0, 0.0, 50.0, 50.0], [60.0, 60.0, 90.0, 90.0]])
    encoding = _encoding(embeddings, torch.tensor([1.0, 0.81, 0.64]), boxes)
    weights = class_weight_matrix(classes)
    scores = heads.class_scores(encoding, weights)
    result = heads.classify(encoding, weights, score_threshold=0.0)
    # proposals 0 and 1 (class 0) overlap with IoU 0.98 -> proposal 1 suppressed; proposal 2 is class 1
    assert result.proposal_index.tolist() == [0, 2]
    assert result.class_ids.tolist() == [0, 1]
    assert result.boxes[0].tolist() == [0.0, 0.0, 50.0, 50.0]  # clipped before NMS
    assert result.scores.tolist() == [scores[0, 0].item(), scores[2, 1].item()]
    exact = heads.classify(encoding, weights, score_threshold=float(scores[2, 1]))
    assert exact.proposal_index.tolist() == [0]  # strict '>'
    assert heads.classify(encoding, weights, score_threshold=0.0, max_detections=1).proposal_index.tolist() == [0]
    every = heads.classify(encoding, weights, score_threshold=0.0, one_class_per_proposal=False)
    assert sorted(every.proposal_index.tolist()) == [0, 0, 2, 2]  # proposal 1 suppressed in both classes


def test_mask_probabilities_shape_and_range():
    heads = _heads()
    with torch.no_grad():
        masks = heads.mask_probabilities(_features(), torch.tensor([[0.0, 0.0, 30.0, 40.0], [10.0, 5.0, 90.0, 99.0]]))
        empty = heads.mask_probabilities(_features(), torch.zeros(0, 4))
    assert masks.shape == (2, 28, 28) and empty.shape == (0, 28, 28)
    assert torch.all((masks >= 0) & (masks <= 1))


@pytest.mark.parametrize("strides", [(8, 32), (8, 24)])
def test_pooler_rejects_non_consecutive_levels(strides):
    with pytest.raises(ValueError, match="consecutive"):
        MultiLevelROIAlign(7, strides)
