"""DetectorPredictor: set_image once, predict many vocabularies; equal to one-shot detect; boxes never move."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiodetic.detector.boxes import clip_boxes
from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.model import build_detector
from audiodetic.detector.predictor import DetectorPredictor
from audiodetic.detector.roi_heads import class_weight_matrix
from audiodetic.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(1)
    return build_detector(DetectorConfig.tiny())


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (100, 140, 3), dtype=np.uint8)
    picture[10:70, 20:90] = (250, 250, 20)
    return picture


def _vocabulary(count: int, seed: int) -> Vocabulary:
    rng = np.random.default_rng(seed)
    return Vocabulary(tuple(f"c{seed}_{i}" for i in range(count)), rng.normal(size=(count, 512)).astype(np.float32))


def _same(a, b) -> None:
    assert a.names == b.names and a.image_size == b.image_size
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.class_ids, b.class_ids)
    assert (a.masks is None and b.masks is None) or np.array_equal(a.masks, b.masks)


def test_predict_equals_one_shot_detect(detector, image):
    predictor = DetectorPredictor(detector)
    predictor.set_image(image)
    assert predictor.is_image_set and predictor.image_size == (100, 140)
    for seed, kwargs in [(1, {}), (2, {"score_threshold": 0.0, "max_detections": 40}), (3, {"score_threshold": 0.0, "all_classes": True, "max_detections": 40}),
                         (4, {"score_threshold": 0.0, "with_masks": False, "max_detections": 5})]:
        vocabulary = _vocabulary(4, seed)
        _same(predictor.predict(vocabulary, **kwargs), detector.detect(image, vocabulary, **kwargs))


def test_changing_the_vocabulary_never_moves_boxes(detector, image):
    predictor = DetectorPredictor(detector)
    predictor.set_image(image)
    encoding = predictor.encoding
    height, width = encoding.original_size
    # the only boxes any vocabulary can produce: each proposal's final box, clipped, scaled, clipped
    candidates = clip_boxes(encoding.boxes, encoding.resized_size)
    candidates[:, 0::2] *= width / encoding.resized_size[1]
    candidates[:, 1::2] *= height / encoding.resized_size[0]
    candidates = clip_boxes(candidates, (height, width)).numpy()
    seen_sets = []
    for seed in range(5):
        result = predictor.predict(_vocabulary(3 + seed, 10 + seed), score_threshold=0.0, all_classes=True,
                                   with_masks=False)
        assert len(result) > 0
        matches = (result.boxes[:, None, :] == candidates[None, :, :]).all(axis=2)
        assert matches.any(axis=1).all()  # every box is bit-identical to its proposal's box
        seen_sets.append({tuple(box) for box in result.boxes.tolist()})
    assert len(set.union(*seen_sets)) > 1
    # and per proposal index: the classifier only selects rows of the encoding
    heads = detector.roi_heads
    for seed in (20, 21):
        embeddings = torch.from_numpy(np.array(_vocabulary(6, seed).embeddings))
        chosen = heads.classify(encoding.regions, class_weight_matrix(embeddings), score_threshold=0.0)
        expected = clip_boxes(encoding.boxes, encoding.resized_size)[chosen.proposal_index]
        assert torch.equal(chosen.boxes, expected)


def test_predict_before_set_image_raises(detector):
    predictor = DetectorPredictor(detector)
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict(_vocabulary(2, 0))
    predictor.set_image(np.zeros((40, 40, 3), np.uint8), input_size=(160, 200))
    predictor.reset_image()
    assert not predictor.is_image_set


def test_set_image_validates_and_keeps_no_stale_state(detector, image):
    predictor = DetectorPredictor(detector)
    predictor.set_image(image)
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(image.astype(np.float32))
    assert not predictor.is_image_set  # a failed set_image never leaves the previous image behind


def test_masks_of_a_proposal_are_computed_once_and_reused(detector, image, monkeypatch):
    predictor = DetectorPredictor(detector)
    predictor.set_image(image)
    calls = []
    original = detector.roi_heads.mask_probabilities

    def counting(features, boxes):
        calls.append(boxes.shape[0])
        return original(features, boxes)

    monkeypatch.setattr(detector.roi_heads, "mask_probabilities", counting)
    first = predictor.predict(_vocabulary(3, 30), score_threshold=0.0, max_detections=12)
    assert calls and calls[0] <= 12
    again = predictor.predict(_vocabulary(3, 30), score_threshold=0.0, max_detections=12)
    assert len(calls) == 1  # every mask came from the cache
    _same(first, again)
    wider = predictor.predict(_vocabulary(3, 31), score_threshold=0.0, all_classes=True, max_detections=30)
    assert sum(calls) == int(predictor.encoding.mask_ready.sum())  # each proposal's mask computed at most once
    monkeypatch.undo()
    _same(wider, detector.detect(image, _vocabulary(3, 31), score_threshold=0.0, all_classes=True, max_detections=30))
