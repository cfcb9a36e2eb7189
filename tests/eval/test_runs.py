"""Resumable, sharded evaluation runs with a detector stand-in that reports the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import make_dataset
from pycocotools import mask as mask_utils

from audiodetic.eval.datasets import EvalDataset

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
from audiodetic.eval.pipeline import RunSettings, evaluate, merge_and_score
from audiodetic.eval.runner import PredictionStore, Variant, prepare_output, read_predictions
from audiodetic.sharding import DistributedEnv, Shard, distributed_env, effective_shard
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary


class GroundTruthDetector:
    """Returns each image's annotated objects (found by the image's unique width), boxes shifted by ``shift``."""

    def __init__(self, dataset: EvalDataset, shift: float = 0.0) -> None:
        self.dataset, self.shift, self.calls = dataset, shift, []
        self.by_width = {dataset.image_record(i)["width"]: i for i in dataset.image_ids}

    def detect(self, image: np.ndarray, vocabulary: Vocabulary, *, score_threshold: float,
               max_detections: int, with_masks: bool = True) -> Detections:
        image_id = self.by_width[image.shape[1]]
        self.calls.append(image_id)
        objects = [a for a in self.dataset.data["annotations"] if a["image_id"] == image_id
                   and self.dataset.category(a["category_id"])["name"] in vocabulary.names]
        boxes = [[x + self.shift, y, x + w + self.shift, y + h] for x, y, w, h in (a["bbox"] for a in objects)]
        masks = [mask_utils.decode({"size": a["segmentation"]["size"],
                                    "counts": a["segmentation"]["counts"].encode()}).astype(bool) for a in objects]
        names = [self.dataset.category(a["category_id"])["name"] for a in objects]
        return Detections(np.array(boxes, np.float32).reshape(-1, 4), 0.9 - 0.01 * np.arange(len(objects)),
                          [vocabulary.names.index(n) for n in names], vocabulary.names, image.shape[:2],
                          np.array(masks, bool).reshape(len(objects), *image.shape[:2]) if with_masks else None)


def _variants(dataset: EvalDataset) -> dict[str, Variant]:
    rng = np.random.default_rng(0)
    vocabulary = Vocabulary(dataset.category_names, rng.normal(size=(len(dataset.category_ids), 8)), space="test")
    return {"text": Variant(vocabulary, dataset.category_ids)}


@pytest.fixture(params=["coco", "lvis"])
def dataset(request, tmp_path) -> EvalDataset:
    annotations, images = make_dataset(tmp_path / "data", request.param, num_images=7)
    return EvalDataset.load(request.param, annotations, images)


def test_ground_truth_run_scores_one_and_writes_reports(dataset: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    scores = evaluate(GroundTruthDetector(dataset), dataset, _variants(dataset), out, progress=False)
    assert scores["text"]["bbox"].summary["AP"] == pytest.approx(1.0)
    assert scores["text"]["segm"].summary["AP"] == pytest.approx(1.0)
    for name in ("results.json", "metrics.json", "per_category_ap.csv", "per_category_ap.md",
                 "ap_per_category_bbox.png", "pr_curves_segm.png"):
        assert (out / "text" / name).stat().st_size > 0, name
    metrics = json.loads((out / "text" / "metrics.json").read_text())
    assert metrics["bbox"]["summary"]["AP"] == pytest.approx(1.0)
    assert "| dog |" in (out / "text" / "per_category_ap.md").read_text()
    assert "Average Precision" in (out / "text" / "summary.txt").read_text()
    assert (out / "text" / "ap_per_category_bbox.png").read_bytes()[:4] == b"\x89PNG"


def test_box_only_run_scores_boxes_only(dataset: EvalDataset, tmp_path: Path) -> None:
    scores = evaluate(GroundTruthDetector(dataset), dataset, _variants(dataset), tmp_path / "boxes",
                      settings=RunSettings(with_masks=False), progress=False, plots=False)
    assert set(scores["text"]) == {"bbox"} and scores["text"]["bbox"].summary["AP"] == pytest.approx(1.0)


def test_sharded_runs_merge_to_the_unsharded_result(dataset: EvalDataset, tmp_path: Path) -> None:
    detector = GroundTruthDetector(dataset, shift=2.5)
    whole = evaluate(detector, dataset, _variants(dataset), tmp_path / "whole", progress=False, plots=False)
    parts = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for index in range(3):  # shards of one run spread over two output folders, as on two machines
        assert evaluate(detector, dataset, _variants(dataset), parts[index % 2], shard=Shard(index, 3),
                        progress=False) is None
    info = json.loads((parts[0] / "run.json").read_text())
    merged = merge_and_score(parts, dataset, info, destination=tmp_path / "merged", plots=False)
    assert json.loads((tmp_path / "merged/text/results.json").read_text()) == \
        json.loads((tmp_path / "whole/text/results.json").read_text())
    for iou_type in ("bbox", "segm"):
        assert merged["text"][iou_type].summary == whole["text"][iou_type].summary
    assert 0.0 < whole["text"]["bbox"].summary["AP"] < 1.0
    with pytest.raises(ValueError, match="has not finished"):
        merge_and_score(parts[:1], dataset, info, destination=tmp_path / "m2", plots=False)


def test_torchrun_ranks_split_the_run_and_rank_zero_merges(dataset: EvalDataset, tmp_path: Path) -> None:
    detector = GroundTruthDetector(dataset)
    out = tmp_path / "dist"
    assert evaluate(detector, dataset, _variants(dataset), out, env=DistributedEnv(1, 2, 1), progress=False) is None
    scores = evaluate(detector, dataset, _variants(dataset), out, env=DistributedEnv(0, 2, 0), progress=False,
                      plots=False, merge_timeout_s=5)
    assert scores["text"]["bbox"].summary["AP"] == pytest.approx(1.0)
    assert sorted(detector.calls) == sorted(dataset.image_ids)  # every image exactly once over both ranks


def test_interrupted_run_resumes_where_it_stopped(dataset: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"

    def stop_after_three(image_id: int, done: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    first = GroundTruthDetector(dataset, shift=1.5)
    with pytest.raises(KeyboardInterrupt):
        evaluate(first, dataset, _variants(dataset), out, progress=False, on_image_done=stop_after_three)
    assert len(first.calls) == 3
    store_file = out / "predictions/text/shard-000-of-001.jsonl"
    with open(store_file, "a") as handle:  # a write torn by the kill
        handle.write('{"image_id": 99, "resu')
    second = GroundTruthDetector(dataset, shift=1.5)
    resumed = evaluate(second, dataset, _variants(dataset), out, progress=False, plots=False)
    assert sorted(first.calls + second.calls) == sorted(dataset.image_ids)
    fresh = evaluate(GroundTruthDetector(dataset, shift=1.5), dataset, _variants(dataset), tmp_path / "fresh",
                     progress=False, plots=False)
    assert resumed["text"]["bbox"].summary == fresh["text"]["bbox"].summary
    assert json.loads((out / "text/results.json").read_text()) == \
        json.loads((tmp_path / "fresh/text/results.json").read_text())


def test_output_folder_of_a_different_run_is_refused(tmp_path: Path) -> None:
    prepare_output(tmp_path, {"kind": "coco", "settings": {"score_threshold": 0.02}})
    prepare_output(tmp_path, {"kind": "coco", "settings": {"score_threshold": 0.02}})  # same run resumes
    with pytest.raises(ValueError, match="differs in \\['settings'\\]"):
        prepare_output(tmp_path, {"kind": "coco", "settings": {"score_threshold": 0.5}})
    prepare_output(tmp_path, {"kind": "coco", "settings": {"score_threshold": 0.5}}, overwrite=True)


def test_damaged_predictions_file_is_an_error(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path, "v", Shard())
    store.append(1, [])
    store.close()
    with open(store.path, "a") as handle:
        handle.write("garbage\n")
    with pytest.raises(ValueError, match="line 2"):
        read_predictions(store.path)


def test_shard_parsing_and_torchrun_environment() -> None:
    assert Shard.parse("2/5") == Shard(2, 5)
    assert Shard(1, 3).select(list(range(10))) == [1, 4, 7]
    for bad in ("5/5", "-1/2", "1-2", "a/b"):
        with pytest.raises(ValueError, match="I/N|index < count"):
            Shard.parse(bad)
    assert distributed_env({}) is None
    assert distributed_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    env = distributed_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert env == DistributedEnv(3, 4, 1)
    assert effective_shard(None, env) == Shard(3, 4)
    assert effective_shard(Shard(1, 2), env) == Shard(7, 8)
    with pytest.raises(ValueError, match="RANK"):
        distributed_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError):
        RunSettings(score_threshold=1.5)


def test_overwrite_deletes_only_this_processes_shard(tmp_path: Path) -> None:
    folder = tmp_path / "predictions" / "main"
    folder.mkdir(parents=True)
    names = ["shard-000-of-002.jsonl", "shard-000-of-002.done", "shard-001-of-002.jsonl", "shard-003-of-004.done"]
    for name in names:
        (folder / name).write_text("{}\n")
    prepare_output(tmp_path, {"kind": "coco"}, overwrite=True, shard=Shard(1, 2))
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(names) - {"shard-001-of-002.jsonl"})
    prepare_output(tmp_path, {"kind": "coco"}, overwrite=True, shard=Shard(0, 2))  # also stale shard counts
    assert list(folder.iterdir()) == []
