import json

import numpy as np
import pytest

from audiodetic.structures import Detections, concatenate


def make(n=3, with_masks=True, size=(20, 30)):
    rng = np.random.default_rng(0)
    x1 = rng.uniform(0, 10, n)
    y1 = rng.uniform(0, 8, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, 15, n), y1 + rng.uniform(1, 10, n)], 1)
    masks = None
    if with_masks:
        masks = np.zeros((n, *size), bool)
        for i, (a, b, c, d) in enumerate(boxes.astype(int)):
            masks[i, b:d, a:c] = True
    return Detections(boxes, rng.uniform(0, 1, n), np.arange(n) % 2, ("dog", "siren"), size, masks)


def test_validation_and_dtypes():
    det = make()
    assert det.boxes.dtype == np.float32 and det.scores.dtype == np.float32 and det.class_ids.dtype == np.int64
    assert det.masks.dtype == bool and det.masks.shape == (3, 20, 30)
    assert det.labels == ["dog", "siren", "dog"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(boxes=np.zeros((2, 3))), "shape \\(N, 4\\)"),
        (dict(scores=np.zeros(3)), "scores has shape"),
        (dict(class_ids=np.array([0, 5])), "must lie in \\[0, 2\\)"),
        (dict(boxes=np.array([[5, 0, 1, 1], [0, 0, 1, 1]])), "x1 <= x2"),
        (dict(boxes=np.array([[np.nan, 0, 1, 1], [0, 0, 1, 1]])), "finite"),
        (dict(masks=np.zeros((2, 4, 4), bool)), "masks must have shape"),
        (dict(image_size=(0, 5)), "positive sides"),
    ],
)
def test_bad_construction_names_the_problem(kwargs, message):
    base = dict(boxes=np.array([[0, 0, 1, 1], [1, 1, 2, 3]]), scores=np.array([0.5, 0.4]),
                class_ids=np.array([0, 1]), names=("a", "b"), image_size=(10, 10), masks=None)
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Detections(**base)


def test_indexing_slicing_and_sorting():
    det = make(5)
    keep = det.scores > 0.5
    sub = det[keep]
    assert len(sub) == int(keep.sum())
    np.testing.assert_array_equal(sub.boxes, det.boxes[keep])
    np.testing.assert_array_equal(sub.masks, det.masks[keep])
    assert len(det[1:3]) == 2 and len(det[0]) == 1
    ordered = det.sorted_by_score()
    assert np.all(np.diff(ordered.scores) <= 0)
    assert len(det.above(2.0)) == 0
    with pytest.raises(IndexError):
        det[np.array([True, False])]


def test_json_round_trip_with_rle_masks():
    det = make(4)
    data = json.loads(json.dumps(det.to_json_dict("img.png")))
    assert data["image"] == "img.png" and data["width"] == 30 and data["height"] == 20
    scores = [d["score"] for d in data["detections"]]
    assert scores == sorted(scores, reverse=True)
    back = Detections.from_json_dict(data, names=det.names)
    ordered = det.sorted_by_score()
    np.testing.assert_allclose(back.boxes, ordered.boxes)
    np.testing.assert_array_equal(back.masks, ordered.masks)
    np.testing.assert_array_equal(back.class_ids, ordered.class_ids)


def test_coco_results_are_xywh_and_map_categories():
    det = make(2)
    records = det.to_coco_results(image_id=7, category_ids=[18, 3])
    for i, record in enumerate(records):
        x1, y1, x2, y2 = det.boxes[i]
        assert record["image_id"] == 7
        assert record["category_id"] == [18, 3][det.class_ids[i]]
        np.testing.assert_allclose(record["bbox"], [x1, y1, x2 - x1, y2 - y1], rtol=1e-6)
        from pycocotools import mask as mask_utils

        decoded = mask_utils.decode({"size": record["segmentation"]["size"],
                                     "counts": record["segmentation"]["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), det.masks[i])
    with pytest.raises(ValueError, match="category_ids has 1 entries"):
        det.to_coco_results(0, category_ids=[1])


def test_hf_format_and_empty():
    det = make(1, with_masks=False)
    (item,) = det.to_hf()
    assert item["label"] == "dog" and set(item["box"]) == {"xmin", "ymin", "xmax", "ymax"}
    empty = Detections.empty(("a",), (4, 5), with_masks=True)
    assert len(empty) == 0 and empty.masks.shape == (0, 4, 5)
    assert empty.to_json_dict()["detections"] == []


def test_supervision_converter():
    sv = pytest.importorskip("supervision")
    converted = make(3).to_supervision()
    assert isinstance(converted, sv.Detections) and len(converted) == 3
    assert list(converted.data["class_name"]) == ["dog", "siren", "dog"]


def test_concatenate():
    a, b = make(2), make(3)
    joined = concatenate([a, b])
    assert len(joined) == 5 and joined.masks.shape[0] == 5
    with pytest.raises(ValueError):
        concatenate([a, make(2, size=(5, 5))])
