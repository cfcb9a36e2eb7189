"""Scoring COCO/LVIS results: perfect predictions, agreement with pycocotools run directly, bad input."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from eval_fixtures import make_dataset, perfect_results, shifted_mask_results, shifted_results

from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.scoring import score_results


@pytest.fixture(params=["coco", "lvis"])
def dataset(request, tmp_path) -> EvalDataset:
    annotations, images = make_dataset(tmp_path, request.param)
    return EvalDataset.load(request.param, annotations, images)


def test_perfect_predictions_score_one(dataset: EvalDataset) -> None:
    results = perfect_results(dataset.annotation_path)
    before = (copy.deepcopy(results), copy.deepcopy(dataset.data))
    scores = score_results(dataset, results)
    assert (results, dataset.data) == before  # inputs are not modified
    assert set(scores) == {"bbox", "segm"}
    for iou_type in ("bbox", "segm"):
        assert scores[iou_type].summary["AP"] == pytest.approx(1.0)
        assert scores[iou_type].summary["AP50"] == pytest.approx(1.0)
        for row in scores[iou_type].per_category:
            if row["num_gt"]:
                assert row["AP"] == pytest.approx(1.0), row
            else:
                assert np.isnan(row["AP"])


def test_shifted_boxes_match_pycocotools(tmp_path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations, images = make_dataset(tmp_path, "coco", num_images=8, seed=3)
    results = shifted_results(annotations, 3.0)
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(annotations))
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ours = score_results(EvalDataset.load("coco", annotations, images), results)
    assert set(ours) == {"bbox"}
    assert 0.05 < evaluator.stats[0] < 0.95  # the shift makes a non-trivial score
    np.testing.assert_allclose(list(ours["bbox"].summary.values()), evaluator.stats, atol=1e-12)


def test_shifted_boxes_match_lvis_api(tmp_path) -> None:
    from audiodetic.eval.lvis_compat import import_lvis, numpy_float_alias

    LVIS, LVISResults, LVISEval = import_lvis()
    annotations, images = make_dataset(tmp_path, "lvis", num_images=8, seed=4)
    results = shifted_results(annotations, 2.0)
    with numpy_float_alias():
        evaluator = LVISEval(LVIS(str(annotations)), LVISResults(LVIS(str(annotations)), copy.deepcopy(results)),
                             "bbox")
        evaluator.run()
    expected = evaluator.get_results()
    ours = score_results(EvalDataset.load("lvis", annotations, images), results)["bbox"].summary
    assert 0.05 < expected["AP"] < 0.95
    assert ours == pytest.approx(dict(expected), abs=1e-12)


def test_restricting_categories_averages_over_them_only(dataset: EvalDataset) -> None:
    results = perfect_results(dataset.annotation_path)
    dropped = [r for r in results if r["category_id"] != 1]  # miss every dog
    others = [c for c in dataset.category_ids if c != 1 and dataset.num_instances()[c]]
    assert score_results(dataset, dropped, category_ids=others)["bbox"].summary["AP"] == pytest.approx(1.0)
    if dataset.num_instances()[1]:
        assert score_results(dataset, dropped)["bbox"].summary["AP"] < 1.0


def test_empty_results_score_zero(dataset: EvalDataset) -> None:
    scores = score_results(dataset, [])
    assert scores["bbox"].summary["AP"] == pytest.approx(0.0)


def test_bad_results_name_the_problem(dataset: EvalDataset) -> None:
    good = perfect_results(dataset.annotation_path)[0]
    with pytest.raises(ValueError, match="image_id 999"):
        score_results(dataset, [dict(good, image_id=999)])
    with pytest.raises(ValueError, match="category_id 5"):
        score_results(dataset, [dict(good, category_id=5)])
    with pytest.raises(ValueError, match="lacks"):
        score_results(dataset, [{"image_id": good["image_id"]}])
    with pytest.raises(ValueError, match="segmentation"):
        score_results(dataset, [{k: v for k, v in good.items() if k != "segmentation"}], iou_types=["segm"])


def test_lvis_file_checked_for_federated_fields(tmp_path) -> None:
    annotations, images = make_dataset(tmp_path, "coco")
    with pytest.raises(ValueError, match="neg_category_ids"):
        EvalDataset.load("lvis", annotations, images)
    data = json.loads(annotations.read_text())
    with pytest.raises(ValueError, match="kind must be one of"):
        EvalDataset("voc", data)


def test_images_are_found_and_checked(tmp_path) -> None:
    annotations, images = make_dataset(tmp_path, "lvis", num_images=2)
    dataset = EvalDataset.load("lvis", annotations, images)
    first = dataset.image_ids[0]
    assert dataset.image_path(first).parent.name == "val2017"  # resolved from coco_url
    assert dataset.load_image(first).shape == (64, 72, 3)
    data = json.loads(annotations.read_text())
    data["images"][0]["height"] = 65
    with pytest.raises(ValueError, match="annotations say 72x65"):
        EvalDataset("lvis", data, None, images).load_image(first)
    data["images"][0]["coco_url"] = "http://x/val2017/missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        EvalDataset("lvis", data, None, images).load_image(first)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        EvalDataset.load("lvis", annotations, tmp_path / "nowhere")


def test_mask_ap_matches_the_evaluators_run_on_masks_alone(tmp_path) -> None:
    """Mask AP equals pycocotools / lvis-api on the same records without "bbox" (detectron2's convention)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from audiodetic.eval.lvis_compat import import_lvis, numpy_float_alias

    for kind in ("coco", "lvis"):
        annotations, images = make_dataset(tmp_path / kind, kind, num_images=8, seed=6)
        results = shifted_mask_results(annotations, 2)
        masks_only = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        if kind == "coco":
            with contextlib.redirect_stdout(io.StringIO()):
                ground_truth = COCO(str(annotations))
                evaluator = COCOeval(ground_truth, ground_truth.loadRes(masks_only), "segm")
                evaluator.evaluate()
                evaluator.accumulate()
                evaluator.summarize()
            expected = list(evaluator.stats)
        else:
            LVIS, LVISResults, LVISEval = import_lvis()
            with numpy_float_alias():
                evaluator = LVISEval(LVIS(str(annotations)), LVISResults(LVIS(str(annotations)), masks_only), "segm")
                evaluator.run()
            expected = list(evaluator.get_results().values())
        ours = score_results(EvalDataset.load(kind, annotations, images), results)["segm"].summary
        assert 0.05 < ours["AP"] < 0.95
        np.testing.assert_allclose(list(ours.values()), expected, atol=1e-12)
