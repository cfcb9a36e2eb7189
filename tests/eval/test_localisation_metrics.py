"""Sound-localisation metrics and dataset readers against hand-computed values on small cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiodetic.errors import InputError, MissingFileError
from audiodetic.eval.localisation_data import flickr_boxes, read_flickr, read_s4, read_vggss
from audiodetic.eval.localisation_metrics import (
    ciou,
    f_scores,
    flickr_gt_map,
    localisation_ciou,
    mask_iou,
    median_threshold,
    normalise,
    summarise_ciou,
    summarise_s4,
    vggss_gt_map,
)


def test_vggss_truth_is_the_union_of_truncated_boxes():
    gt = vggss_gt_map([[0.0, 0.0, 0.5, 0.25], [-0.2, 0.1, 0.1, 0.2]])
    assert gt.shape == (224, 224) and set(np.unique(gt)) == {0.0, 1.0}
    # [0:56, 0:112] plus [22:44, 0:22] (inside the first): 56 * 112 pixels
    assert gt.sum() == 56 * 112
    assert gt[55, 111] == 1 and gt[56, 0] == 0 and gt[0, 112] == 0
    assert vggss_gt_map([[0.1, 0.1, 0.101, 0.9]]).sum() == 0  # int(22.4) == int(22.6): an empty box


def test_flickr_truth_is_the_annotator_consensus():
    gt = flickr_gt_map([[0, 0, 128, 128], [0, 0, 128, 128], [128, 128, 256, 256]])
    assert gt[0, 0] == 1.0  # two annotators agree: capped at 1
    assert gt[200, 200] == 0.5  # one annotator
    assert gt[0, 200] == 0.0
    assert gt.sum() == 112 * 112 * 1.0 + 112 * 112 * 0.5


def test_ciou_by_hand():
    gt = np.zeros((4, 4))
    gt[0:2, 0:3] = 1  # 6 pixels
    pred = np.zeros((4, 4))
    pred[0:2, 1:4] = 1  # 6 pixels, 4 of them on the truth, 2 outside
    assert ciou(pred, gt) == pytest.approx(4 / (6 + 2))
    weighted = gt * 0.5
    assert ciou(pred, weighted) == pytest.approx(2 / (3 + 2))
    with pytest.raises(InputError):
        ciou(np.zeros((2, 2)), gt)


def test_protocol_normalises_and_thresholds_at_the_median():
    values = np.arange(16, dtype=float).reshape(4, 4) * 2 + 10
    assert normalise(values).min() == 0 and normalise(values).max() == 1
    assert median_threshold(normalise(values)) == pytest.approx(8 / 15)  # sorted index int(16 * 0.5) = 8
    gt = np.zeros((4, 4))
    gt[2:, :] = 1  # the upper half of the scores lies exactly on the truth
    assert localisation_ciou(values, gt) == 1.0
    flat = np.full((4, 4), 0.3)  # a constant map keeps its values: every pixel >= threshold
    assert localisation_ciou(flat, gt) == pytest.approx(8 / 16)


def test_ciou_summary_and_auc_by_hand():
    summary = summarise_ciou([0.2, 0.5, 0.8, 1.0])
    assert summary["cIoU@0.5"] == 0.75 and summary["mean_cIoU"] == pytest.approx(0.625) and summary["samples"] == 4
    # success rate 1 for t <= 0.2, 0.75 to 0.5, 0.5 to 0.8, 0.25 to 1.0; trapezoids of width 0.05
    expected = 4 * 0.05 + 0.05 * 1.75 / 2 + 5 * 0.75 * 0.05 + 0.05 * 1.25 / 2 + 5 * 0.5 * 0.05 + 0.05 * 0.75 / 2 \
        + 3 * 0.25 * 0.05
    assert expected == pytest.approx(0.64375)
    assert summary["AUC"] == pytest.approx(expected)


def test_s4_iou_and_f_score_by_hand():
    gt = np.zeros((4, 4), bool)
    gt[0, :] = True  # 4 pixels
    pred = np.zeros((4, 4))
    pred[0, :2] = 1.0
    pred[3, :2] = 1.0  # two right, two wrong
    assert mask_iou(pred, gt) == pytest.approx(2 / 6)
    assert mask_iou(np.full((4, 4), 0.5), gt) == 0.0  # binarised at > 0.5
    assert mask_iou(np.zeros((4, 4)), np.zeros((4, 4), bool)) == 1.0  # empty mask: true negatives
    assert mask_iou(pred, np.zeros((4, 4), bool)) == pytest.approx(12 / 16)
    scores = f_scores(pred, gt)
    assert scores.shape == (255,)
    everything = 1.3 * 0.25 * 1.0 / (0.3 * 0.25 + 1.0)  # threshold 0: all 16 pixels predicted
    assert scores[0] == pytest.approx(everything) and everything == pytest.approx(0.302326, abs=1e-6)
    np.testing.assert_allclose(scores[1:], 1.3 * 0.5 * 0.5 / (0.3 * 0.5 + 0.5))  # P = R = 0.5 -> 0.5
    perfect = gt.astype(float)
    summary = summarise_s4([[(pred, gt), (perfect, gt)]])
    assert summary["mIoU"] == pytest.approx((2 / 6 + 1) / 2)
    assert summary["F"] == pytest.approx((0.5 + 1.0) / 2)  # best threshold of the frame mean
    assert summarise_s4([[(pred, np.zeros((4, 4), bool))]])["F"] == 0.0  # no foreground: counted as 0


def _media(root, names):
    from PIL import Image

    from audiodetic.testing.video_media import Segment, soundtrack_samples, write_wav

    (root / "frames").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "frames" / f"{name}.jpg")
        write_wav(root / "audio" / f"{name}.wav", soundtrack_samples([Segment(0, 1, "tone")], 1.0, 8000), 8000)


def test_readers_in_the_public_layouts(tmp_path):
    _media(tmp_path, ["a", "b"])
    (tmp_path / "vggss.json").write_text(json.dumps([
        {"file": "a", "class": "dog barking", "bbox": [[0.0, 0.0, 0.5, 0.5]]},
        {"file": "b", "class": "siren", "bbox": [[0.5, 0.5, 1.0, 1.0], [0, 0, 0.1, 0.1]]},
        {"file": "c", "class": "gone", "bbox": [[0, 0, 1, 1]]}]))
    with pytest.raises(MissingFileError, match="c.jpg"):
        read_vggss(tmp_path / "vggss.json", tmp_path)
    loaded = read_vggss(tmp_path / "vggss.json", tmp_path, skip_missing=True)
    assert [s.name for s in loaded.samples] == ["a", "b"] and loaded.missing == ["c"]
    assert loaded.samples[0].gt.sum() == 112 * 112 and loaded.samples[1].category == "siren"
    notes = tmp_path / "Annotations"
    notes.mkdir()
    (notes / "a.xml").write_text("<annotation><bboxes><bbox><annotator>1</annotator><a>0</a><b>0</b><c>128</c>"
                                 "<d>128</d></bbox></bboxes><bboxes><bbox><xmax>128</xmax><ymin>0</ymin>"
                                 "<xmin>0</xmin><ymax>64</ymax></bbox></bboxes></annotation>")
    assert flickr_boxes(notes / "a.xml") == [[0, 0, 128, 128], [0, 0, 128, 64]]
    flickr = read_flickr(notes, tmp_path)
    assert flickr.samples[0].gt[0, 0] == 1.0 and flickr.samples[0].gt[100, 0] == 0.5
    (notes / "b.xml").write_text("<annotation><bbox><x>zero</x><a>1</a><b>2</b><c>3</c><d>x</d></bbox></annotation>")
    with pytest.raises(InputError, match="four integers"):
        read_flickr(notes, tmp_path)


def test_s4_layout(tmp_path):
    from PIL import Image

    from audiodetic.testing.video_media import Segment, soundtrack_samples, write_wav

    (tmp_path / "s4_meta_data.csv").write_text("name,start,category,split\nvid1,0,dog,test\nvid2,0,dog,train\n")
    root = tmp_path / "s4_data"
    for kind in ("visual_frames", "gt_masks"):
        folder = root / kind / "test" / "dog" / "vid1"
        folder.mkdir(parents=True)
        for k in range(1, 6):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / f"vid1_{k}.png")
    (root / "audio_wav" / "test" / "dog").mkdir(parents=True)
    write_wav(root / "audio_wav" / "test" / "dog" / "vid1.wav", soundtrack_samples([Segment(0, 5, "noise")], 5.0,
                                                                                     8000), 8000)
    loaded = read_s4(root)
    assert [s.name for s in loaded.samples] == [f"vid1_{k}" for k in range(1, 6)]
    assert [s.centre_s for s in loaded.samples] == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert read_s4(root, split="train", skip_missing=True).missing == [f"vid2_{k}" for k in range(1, 6)]
