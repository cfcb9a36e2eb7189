"""Score COCO-format results against a dataset: pycocotools for COCO, lvis-api (federated) for LVIS.

Results are COCO results-format records: ``{"image_id", "category_id", "bbox": [x, y, w, h] (pixels),
"score", "segmentation": RLE (optional)}``. Box AP is always scored; mask AP when every record has a
``segmentation``; mask AP ignores the records' boxes, so object sizes come from the masks (as in detectron2's
evaluators, whose numbers Detic publishes). LVIS keeps the 300 highest-scoring detections per image (the official
protocol).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from audiodetic import io
from audiodetic.errors import InputError
from audiodetic.eval.datasets import EvalDataset

IOU_TYPES: tuple[str, ...] = ("bbox", "segm")
LVIS_MAX_DETS = 300
COCO_SUMMARY_KEYS: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)


@dataclass
class IouTypeScores:
    """Scores of one IoU type (``"bbox"`` or ``"segm"``).

    Attributes:
        summary: the standard summary metrics (COCO: ``AP, AP50, ... ARl``; LVIS: ``AP, AP50, AP75, APs, APm,
            APl, APr, APc, APf, AR@300, ...``) as fractions in ``[0, 1]``; ``-1`` where undefined.
        per_category: one dict per evaluated category: ``category_id, name, num_gt, AP, AP50, AP75`` (NaN when
            the category has no ground truth in the evaluated images) and ``frequency`` for LVIS.
        recall_thresholds: ``(R,)`` recall levels of the precision curves (101 points).
        precision: ``{"IoU=0.50": (K, R), "IoU=0.75": (K, R), "IoU=0.50:0.95": (K, R)}`` interpolated precision
            per category (rows follow ``per_category``; ``-1`` where undefined), area "all", max detections.
        text: the evaluator's printed summary.
    """

    summary: dict[str, float]
    per_category: list[dict[str, Any]]
    recall_thresholds: np.ndarray
    precision: dict[str, np.ndarray] = field(repr=False)
    text: str = ""


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else float("nan")


def _check_results(dataset: EvalDataset, results: Sequence[dict[str, Any]]) -> None:
    image_ids = set(dataset.image_ids)
    category_ids = set(dataset.category_ids)
    for index, record in enumerate(results):
        missing = [key for key in ("image_id", "category_id", "bbox", "score") if key not in record]
        if missing:
            raise InputError(f"result {index} lacks {missing}; records need image_id, category_id, bbox, score")
        if int(record["image_id"]) not in image_ids:
            raise InputError(f"result {index} has image_id {record['image_id']}, which is not in the annotations")
        if int(record["category_id"]) not in category_ids:
            raise InputError(f"result {index} has category_id {record['category_id']}, not a dataset category")
        if len(record["bbox"]) != 4:
            raise InputError(f"result {index} bbox must be [x, y, w, h], got {record['bbox']}")


def available_iou_types(results: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """``("bbox", "segm")`` when every record has a mask, ``("bbox",)`` otherwise."""
    if results and all("segmentation" in record for record in results):
        return IOU_TYPES
    return ("bbox",)


def _per_category(dataset: EvalDataset, category_ids: Sequence[int], precision: np.ndarray,
                  num_gt: dict[int, int], iou_thresholds: np.ndarray) -> list[dict[str, Any]]:
    """``precision``: ``(T, R, K)`` for area "all" and the largest max-detections setting."""
    i50 = int(np.argmin(np.abs(iou_thresholds - 0.5)))
    i75 = int(np.argmin(np.abs(iou_thresholds - 0.75)))
    rows = []
    for k, category_id in enumerate(category_ids):
        record = dataset.category(category_id)
        row: dict[str, Any] = {"category_id": int(category_id), "name": str(record["name"]),
                               "num_gt": int(num_gt.get(category_id, 0)),
                               "AP": _mean_defined(precision[:, :, k]),
                               "AP50": _mean_defined(precision[i50, :, k]),
                               "AP75": _mean_defined(precision[i75, :, k])}
        if dataset.kind == "lvis":
            row["frequency"] = record.get("frequency", "")
        rows.append(row)
    return rows


def _curves(precision: np.ndarray, iou_thresholds: np.ndarray) -> dict[str, np.ndarray]:
    i50 = int(np.argmin(np.abs(iou_thresholds - 0.5)))
    i75 = int(np.argmin(np.abs(iou_thresholds - 0.75)))
    defined = np.where(precision > -1, precision, np.nan)
    with np.errstate(invalid="ignore"), warnings_silenced():
        mean_over_iou = np.nanmean(defined, axis=0)
    return {"IoU=0.50": precision[i50].T.copy(), "IoU=0.75": precision[i75].T.copy(),
            "IoU=0.50:0.95": np.nan_to_num(mean_over_iou, nan=-1.0).T.copy()}


@contextlib.contextmanager
def warnings_silenced() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def _copy_for_evaluator(data: dict[str, Any]) -> dict[str, Any]:
    """The evaluators set top-level keys of annotation records (``ignore``, RLE ``segmentation``); copying the
    records one level deep keeps the caller's data intact without duplicating masks and polygons."""
    return {**data, "annotations": [dict(annotation) for annotation in data["annotations"]]}


def _score_coco(dataset: EvalDataset, results: list[dict[str, Any]], iou_type: str,
                image_ids: Sequence[int], category_ids: Sequence[int]) -> IouTypeScores:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    log = StringIO()
    with contextlib.redirect_stdout(log):
        ground_truth = COCO()
        ground_truth.dataset = _copy_for_evaluator(dataset.data)
        ground_truth.createIndex()
        if results:
            detections = ground_truth.loadRes([dict(record) for record in results])
        else:
            detections = COCO()
            detections.dataset = {"images": list(dataset.data["images"]), "annotations": [],
                                  "categories": list(dataset.data["categories"])}
            detections.createIndex()
        evaluator = COCOeval(ground_truth, detections, iouType=iou_type)
        evaluator.params.imgIds = list(image_ids)
        evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    summary = {key: float(value) for key, value in zip(COCO_SUMMARY_KEYS, evaluator.stats)}
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K) area all, maxDets 100
    num_gt = dataset.num_instances(image_ids)
    per_category = _per_category(dataset, category_ids, precision, num_gt, evaluator.params.iouThrs)
    return IouTypeScores(summary, per_category, np.array(evaluator.params.recThrs),
                         _curves(precision, evaluator.params.iouThrs), log.getvalue())


def _score_lvis(dataset: EvalDataset, results: list[dict[str, Any]], iou_type: str,
                image_ids: Sequence[int], category_ids: Sequence[int], lvis_gt: Any) -> IouTypeScores:
    from audiodetic.eval.lvis_compat import import_lvis, numpy_float_alias

    _, LVISResults, LVISEval = import_lvis()
    log = StringIO()
    if not results:
        # lvis-api cannot load an empty list. One empty, zero-score detection ranks last and matches nothing, so
        # it cannot raise any precision: every category with ground truth still scores AP 0.
        results = [{"image_id": image_ids[0], "category_id": category_ids[0], "bbox": [0.0, 0.0, 0.0, 0.0],
                    "score": 0.0, "segmentation": _empty_rle(dataset, image_ids[0])}]
    with contextlib.redirect_stdout(log), numpy_float_alias(), _quiet_logger("lvis"):
        detections = LVISResults(lvis_gt, [dict(record) for record in results], max_dets=LVIS_MAX_DETS)
        evaluator = LVISEval(lvis_gt, detections, iou_type=iou_type)
        evaluator.params.img_ids = list(image_ids)
        evaluator.params.cat_ids = list(category_ids)
        evaluator.run()
        evaluator.print_results()
    summary = {str(key): float(value) for key, value in evaluator.get_results().items()}
    precision = evaluator.eval["precision"][:, :, :, 0]  # (T, R, K) area all
    num_gt = dataset.num_instances(image_ids)
    per_category = _per_category(dataset, category_ids, precision, num_gt, evaluator.params.iou_thrs)
    return IouTypeScores(summary, per_category, np.array(evaluator.params.rec_thrs),
                         _curves(precision, evaluator.params.iou_thrs), log.getvalue())


def _empty_rle(dataset: EvalDataset, image_id: int) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    record = dataset.image_record(image_id)
    rle = mask_utils.encode(np.zeros((int(record["height"]), int(record["width"]), 1), np.uint8, order="F"))[0]
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a dependency's log records below ERROR and its DeprecationWarnings (lvis-api uses ``warn``)."""
    import warnings

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _load_lvis_ground_truth(dataset: EvalDataset) -> Any:
    """lvis-api's ``LVIS`` object (it only reads files: in-memory datasets go through a temporary file)."""
    from audiodetic.eval.lvis_compat import import_lvis

    LVIS = import_lvis()[0]
    with _quiet_logger("lvis"):
        if dataset.annotation_path is not None:
            return LVIS(str(dataset.annotation_path))
        with tempfile.TemporaryDirectory(prefix="audiodetic-lvis-") as folder:
            path = Path(folder) / "annotations.json"
            io.write_text(path, json.dumps(dataset.data))
            return LVIS(str(path))


def score_results(dataset: EvalDataset, results: Sequence[dict[str, Any]], *,
                  iou_types: Sequence[str] | None = None, image_ids: Sequence[int] | None = None,
                  category_ids: Sequence[int] | None = None) -> dict[str, IouTypeScores]:
    """Score ``results`` on ``dataset`` for each IoU type.

    Args:
        dataset: ground truth (``kind`` picks pycocotools or lvis-api).
        results: COCO results-format records (see module docstring); not modified.
        iou_types: subset of ``("bbox", "segm")``; default: both when every record has a mask, else bbox.
        image_ids: images to evaluate on (default: all images in the dataset).
        category_ids: categories to evaluate (default: all); the summary averages over these only.

    Returns:
        ``{iou_type: IouTypeScores}``.
    """
    results = list(results)
    _check_results(dataset, results)
    requested = tuple(iou_types) if iou_types is not None else available_iou_types(results)
    for iou_type in requested:
        if iou_type not in IOU_TYPES:
            raise InputError(f"iou type must be one of {IOU_TYPES}, got {iou_type!r}")
        if iou_type == "segm" and results and not all("segmentation" in r for r in results):
            raise InputError("mask AP needs a 'segmentation' in every result record; score 'bbox' only")
    image_ids = sorted(int(i) for i in (image_ids if image_ids is not None else dataset.image_ids))
    category_ids = sorted(int(i) for i in (category_ids if category_ids is not None else dataset.category_ids))
    if not image_ids:
        raise InputError("no images to evaluate")
    for category_id in category_ids:
        dataset.category(category_id)
    scores: dict[str, IouTypeScores] = {}
    lvis_gt = None
    if dataset.kind == "lvis":
        lvis_gt = _load_lvis_ground_truth(dataset)
    for iou_type in requested:
        records = results
        if iou_type == "segm":
            # As detectron2's evaluators do: without "bbox" the evaluators take a detection's area (small/medium/
            # large) from its mask instead of its box.
            records = [{k: v for k, v in record.items() if k != "bbox"} for record in results]
        if dataset.kind == "coco":
            scores[iou_type] = _score_coco(dataset, records, iou_type, image_ids, category_ids)
        else:
            scores[iou_type] = _score_lvis(dataset, records, iou_type, image_ids, category_ids, lvis_gt)
    return scores
