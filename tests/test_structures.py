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


def _compact(n=4, size=(20, 30)):
    from audiodetic.rle_masks import RleMasks

    dense = make(n, size=size)
    return dense, Detections(dense.boxes, dense.scores, dense.class_ids, dense.names, dense.image_size,
                             RleMasks.from_dense(dense.masks))


def test_rle_masks_behave_like_dense_ones():
    dense, compact = _compact(5)
    assert compact.has_masks and "rle" in repr(compact) and "5x20x30" in repr(compact)
    np.testing.assert_array_equal(compact.masks, dense.masks)
    assert compact.masks.dtype == bool and compact.masks.shape == (5, 20, 30)
    np.testing.assert_array_equal(compact.mask(3), dense.masks[3])
    keep = compact.scores > 0.3
    np.testing.assert_array_equal(compact[keep].masks, dense.masks[keep])
    np.testing.assert_array_equal(compact.sorted_by_score().masks, dense.sorted_by_score().masks)
    assert compact.to_json_dict("a.png") == dense.to_json_dict("a.png")
    assert compact.to_coco_results(1) == dense.to_coco_results(1)
    np.testing.assert_array_equal(concatenate([compact, dense]).masks, np.concatenate([dense.masks, dense.masks]))
    np.testing.assert_array_equal(compact.rle_masks.areas(), dense.masks.reshape(5, -1).sum(1))


def test_converters_never_decode_rle_masks(monkeypatch):
    from audiodetic.rle_masks import RleMasks

    _, compact = _compact(4)

    def refuse(*args, **kwargs):
        raise AssertionError("a full-size mask was built")

    monkeypatch.setattr(RleMasks, "to_dense", refuse)
    monkeypatch.setattr(RleMasks, "mask", refuse)
    data = json.loads(json.dumps(compact.to_json_dict("a.png")))
    back = Detections.from_json_dict(data)
    assert back.rle_masks.counts == compact.sorted_by_score().rle_masks.counts
    assert len(compact.to_coco_results(3)) == 4 and len(concatenate([compact, back])) == 8
    assert len(compact[compact.scores > 0.5].above(0.6)) == int((compact.scores > 0.6).sum())
    assert Detections.empty(("a",), (4, 5), with_masks=True).to_json_dict()["detections"] == []


def test_rle_masks_are_checked():
    from audiodetic.rle_masks import RleMasks

    dense, compact = _compact(3)
    with pytest.raises(ValueError, match=r"must hold 3 masks of \(20, 31\), got 3 boxes and 3 RLE masks of \(20, 30\)"):
        Detections(dense.boxes, dense.scores, dense.class_ids, dense.names, (20, 31), compact.rle_masks)
    with pytest.raises(ValueError, match="mask 0 has size \\[5, 5\\] but the image is \\[20, 30\\]"):
        RleMasks.from_coco([{"size": [5, 5], "counts": "PP"}], (20, 30))
    with pytest.raises(ValueError, match="only compressed RLE"):
        RleMasks.from_coco([{"size": [20, 30], "counts": [600]}], (20, 30))
    with pytest.raises(ValueError, match="not a COCO RLE"):
        RleMasks.from_coco([{"counts": "PP"}], (20, 30))
    with pytest.raises(TypeError, match="counts\\[0\\]"):
        RleMasks([5], (2, 2))
    with pytest.raises(AttributeError, match="immutable"):
        compact.scores = np.zeros(3)


def test_column_run_encoder_equals_pycocotools_on_random_regions():
    from audiodetic.rle_masks import ColumnRunEncoder, RleMasks

    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(1, 25, 2))
        mask = np.zeros((height, width), bool)
        y0, y1 = sorted(int(v) for v in rng.integers(0, height + 1, 2))
        x0, x1 = sorted(int(v) for v in rng.integers(0, width + 1, 2))
        region = rng.random((y1 - y0, x1 - x0)) < rng.random()
        mask[y0:y1, x0:x1] = region
        encoder = ColumnRunEncoder((height, width))
        x = x0
        while x < x1:  # bands of 1..3 columns
            step = int(rng.integers(1, 4))
            encoder.add_columns(region[:, x - x0 : x - x0 + step].T, y0, x)
            x += step
        assert encoder.finish() == RleMasks.from_dense(mask[None]).counts[0]
    encoder = ColumnRunEncoder((4, 4))
    encoder.add_columns(np.ones((2, 4), bool), 0, 2)
    with pytest.raises(ValueError, match="do not fit"):
        encoder.add_columns(np.ones((1, 4), bool), 0, 1)  # columns must come left to right
