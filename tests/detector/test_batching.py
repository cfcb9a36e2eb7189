"""Backbone batching (audiodetic.detector.batching) gives the encodings and detections of one image at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiodetic.detector.batching import encode_batch, shape_groups
from audiodetic.detector.convert import load_detector
from audiodetic.testing.detic_checkpoints import make_detic_state_dict


@pytest.fixture(scope="module")
def detector():
    return load_detector(make_detic_state_dict("tiny", seed=0)).eval()


def _pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    shapes = [(90, 120), (90, 120), (60, 100), (90, 120), (120, 90), (60, 100)]  # three input shapes, mixed
    pictures = []
    for height, width in shapes:
        picture = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        picture[height // 4 : height // 2, width // 5 : width // 2] = rng.integers(150, 256, 3)
        pictures.append(picture)
    return pictures


def test_groups_follow_input_shapes_and_the_batch_limit(detector):
    inputs = [detector.preprocess(p, input_size=(128, 160)) for p in _pictures()]
    assert shape_groups(inputs, 8) == [[0, 1, 3], [2, 5], [4]]
    assert shape_groups(inputs, 2) == [[0, 1], [2, 5], [3], [4]]
    with pytest.raises(ValueError, match="batch size"):
        shape_groups(inputs, 0)


def _compare(detector, max_batch, exact):
    pictures = _pictures()
    vocabulary = np.random.default_rng(1).normal(size=(6, 512)).astype(np.float32)
    inputs = [detector.preprocess(p, input_size=(128, 160)) for p in pictures]
    batched = encode_batch(detector, inputs, max_batch=max_batch)
    for picture, encoding in zip(pictures, batched):
        alone = detector.encode(picture, input_size=(128, 160))
        assert encoding.original_size == alone.original_size and encoding.resized_size == alone.resized_size
        pairs = [*zip(encoding.features, alone.features), (encoding.proposal_boxes, alone.proposal_boxes),
                 (encoding.boxes, alone.boxes), (encoding.embeddings, alone.embeddings)]
        for ours, theirs in pairs:
            if exact:
                assert torch.equal(ours, theirs)
            else:
                torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
        ours = detector.classify(encoding, vocabulary, score_threshold=0.0, max_detections=20)
        theirs = detector.classify(alone, vocabulary, score_threshold=0.0, max_detections=20)
        assert len(ours) == len(theirs) > 0
        np.testing.assert_array_equal(ours.class_ids, theirs.class_ids)
        if exact:
            np.testing.assert_array_equal(ours.boxes, theirs.boxes)
            np.testing.assert_array_equal(ours.scores, theirs.scores)
            assert ours.rle_masks.counts == theirs.rle_masks.counts
        else:
            np.testing.assert_allclose(ours.boxes, theirs.boxes, rtol=1e-4, atol=1e-3)
            np.testing.assert_allclose(ours.scores, theirs.scores, rtol=0, atol=1e-5)
            flipped = np.logical_xor(ours.masks, theirs.masks).sum(axis=(1, 2))
            assert np.all(flipped <= 2)  # a pixel whose probability lies within rounding of the threshold


@pytest.mark.parametrize("max_batch", [2, 8])
def test_batched_encodings_are_bit_identical_where_convolutions_are(detector, max_batch):
    """Without oneDNN, PyTorch's CPU convolutions compute every image of a batch the same way as alone."""
    with torch.backends.mkldnn.flags(enabled=False):
        _compare(detector, max_batch, exact=True)


def test_batched_detections_equal_one_at_a_time_with_default_kernels(detector):
    """oneDNN picks other kernels for batches (strided 3x3 convolutions differ by ~1e-6): same detections."""
    _compare(detector, 4, exact=False)
