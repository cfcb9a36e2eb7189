"""``audiodetic eval``: scoring a results file, a sharded run of a tiny checkpoint merged by ``eval merge``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import make_dataset, perfect_results

from audiodetic.cli import main


@pytest.mark.parametrize("kind", ["coco", "lvis"])
def test_predictions_file_is_scored_without_a_model(kind: str, tmp_path: Path, capsys) -> None:
    annotations, _ = make_dataset(tmp_path / "data", kind)
    predictions = tmp_path / "results.json"
    predictions.write_text(json.dumps(perfect_results(annotations)))
    out = tmp_path / "report"
    assert main(["eval", kind, "--annotations", str(annotations), "--predictions", str(predictions),
                 "--output", str(out), "--no-plots"]) == 0
    assert "AP 100.0" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["segm"]["summary"]["AP"] == pytest.approx(1.0)
    assert metrics["predictions"] == str(predictions)


def test_sharded_cli_run_merges_to_the_whole_run(tmp_path: Path, capsys, monkeypatch) -> None:
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    annotations, images = make_dataset(tmp_path / "data", "coco", num_images=3, seed=2)
    checkpoint = make_detic_checkpoint(tmp_path / "tiny.pth", "tiny", seed=0)
    vocabulary = tmp_path / "vocab.npy"
    np.save(vocabulary, np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32))
    common = ["eval", "coco", "--annotations", str(annotations), "--images", str(images), "--detector",
              str(checkpoint), "--vocabulary", str(vocabulary), "--device", "cpu", "--no-progress", "--no-plots",
              "--score-threshold", "0.0", "--max-detections", "5", "--input-size", "128,160"]
    assert main([*common, "--output", str(tmp_path / "whole")]) == 0
    for index in range(2):
        assert main([*common, "--output", str(tmp_path / "sharded"), "--shard", f"{index}/2"]) == 0
    assert "eval merge" in capsys.readouterr().out
    assert main(["eval", "merge", "--output", str(tmp_path / "sharded"), "--no-plots"]) == 0
    whole = json.loads((tmp_path / "whole/main/results.json").read_text())
    merged = json.loads((tmp_path / "sharded/main/results.json").read_text())
    assert len(whole) > 0 and merged == whole
    for iou_type in ("bbox", "segm"):
        assert json.loads((tmp_path / "sharded/main/metrics.json").read_text())[iou_type]["summary"] == \
            json.loads((tmp_path / "whole/main/metrics.json").read_text())[iou_type]["summary"]
    # a second run into the same folder with other settings is refused, naming what differs - before any model
    # is loaded (a checkpoint that does not exist is never opened)
    import audiodetic.eval.components as components

    def must_not_load(*args, **kwargs):
        raise AssertionError("the detector was loaded before the settings were compared")

    monkeypatch.setattr(components, "load_eval_detector", must_not_load)
    assert main([*common, "--max-detections", "7", "--output", str(tmp_path / "whole")]) == 1
    assert "differs in ['settings']" in capsys.readouterr().err


def test_bad_arguments_are_reported(tmp_path: Path, capsys) -> None:
    annotations, images = make_dataset(tmp_path / "data", "coco", num_images=2)
    base = ["eval", "coco", "--annotations", str(annotations), "--output", str(tmp_path / "out")]
    assert main(base) == 1
    assert "needs --images and --detector" in capsys.readouterr().err
    assert main(["eval", "coco", "--annotations", str(tmp_path / "missing.json"), "--output", "x"]) == 1
    assert "annotation file not found" in capsys.readouterr().err
    assert main(["eval", "lvis", "--annotations", str(annotations), "--predictions", "p.json", "--output", "x"]) == 1
    assert "neg_category_ids" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 10, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    assert main([*base, "--predictions", str(bad)]) == 1
    assert "category_id 2" in capsys.readouterr().err
    assert main(["eval", "merge", "--output", str(tmp_path / "nothing")]) == 1
    assert "no run.json" in capsys.readouterr().err


def test_vocabulary_rows_must_match_the_categories(tmp_path: Path) -> None:
    from audiodetic.eval.vocabularies import matrix_vocabulary

    path = tmp_path / "v.npy"
    np.save(path, np.ones((3, 512), np.float32))
    with pytest.raises(ValueError, match="3 rows but the annotations have 4 categories"):
        matrix_vocabulary(path, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="'builtin' or a .npy/.npz"):
        matrix_vocabulary(tmp_path / "v.txt", ["a"])
    assert matrix_vocabulary(path, ["a", "b", "c"]).names == ("a", "b", "c")


def test_torchrun_processes_split_the_images_and_rank_zero_reports(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    annotations, images = make_dataset(tmp_path / "data", "lvis", num_images=4, seed=2)
    checkpoint = make_detic_checkpoint(tmp_path / "tiny.pth", "tiny", seed=0)
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "audiodetic", "eval", "lvis", "--annotations", str(annotations), "--images", str(images),
               "--detector", str(checkpoint),
               "--vocabulary", str(tmp_path / "v.npy"), "--no-progress", "--no-plots", "--score-threshold", "0",
               "--max-detections", "5", "--input-size", "128,160", "--output", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 1 finished its shard" in done.stdout and "reports in" in done.stdout
    lines = {n: (tmp_path / f"out/predictions/main/shard-00{n}-of-002.jsonl").read_text().splitlines() for n in (0, 1)}
    assert [len(v) for v in lines.values()] == [2, 2]
    results = json.loads((tmp_path / "out/main/results.json").read_text())
    assert sorted({r["image_id"] for r in results}) == [10, 13, 16, 19]


def test_sound_benchmark_through_the_command_line(tmp_path: Path, capsys) -> None:
    import torch
    from eval_fixtures import make_esc50, write_map

    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    annotations, images = make_dataset(tmp_path / "data", "coco", num_images=2, seed=4)
    make_esc50(tmp_path / "esc50", ["dog", "car_horn", "toilet_flush", "church_bells"], clips_per_class=2)
    sound_map = write_map(tmp_path / "map.csv", [("dog", "dog"), ("car_horn", "car"), ("church_bells", "bell")])
    audio = write_imagebind_checkpoint(tmp_path / "imagebind.pth", "tiny", modalities=("audio",), seed=0)
    clip = tmp_path / "clip.pt"
    torch.save(ClipTextEncoder.tiny(seed=0).model.state_dict(), clip)
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

    width = ImageBindAudioEncoder.from_checkpoint(audio).embed_dim
    bridge = LinearBridge.random(width, 512, seed=0).save(tmp_path / "lin.npz")
    command = ["eval", "coco", "--annotations", str(annotations), "--images", str(images), "--detector",
               str(make_detic_checkpoint(tmp_path / "tiny.pth", "tiny", seed=0)), "--audio-map", str(sound_map),
               "--audio-root", str(tmp_path / "esc50"), "--shots", "1,2", "--seeds", "3", "--bridge", str(bridge),
               "--audio-encoder", str(audio), "--text-encoder", str(clip), "--device", "cpu", "--no-progress",
               "--no-plots", "--score-threshold", "0", "--max-detections", "4", "--input-size", "128,160",
               "--output", str(tmp_path / "out")]
    assert main(command) == 0, capsys.readouterr().err
    assert "benchmark report" in capsys.readouterr().out
    report = json.loads((tmp_path / "out/benchmark.json").read_text())
    assert report["bridges"] == ["lin"] and report["shots"] == [1, 2] and report["seeds"] == [3]
    assert [row["category"] for row in report["results"]["bbox"]["per_category"]] == ["dog", "car", "bell"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == \
        ["audio-lin-k1-s3", "audio-lin-k2-s3", "predictions", "text"]


def test_evaluation_never_builds_full_size_masks(tmp_path: Path, capsys, monkeypatch) -> None:
    from audiodetic.rle_masks import RleMasks
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    def refuse(*args, **kwargs):
        raise AssertionError("a full-size (H, W) mask was built")

    monkeypatch.setattr(RleMasks, "to_dense", refuse)
    monkeypatch.setattr(RleMasks, "mask", refuse)
    annotations, images = make_dataset(tmp_path / "data", "coco", num_images=2, seed=3)
    np.save(tmp_path / "vocab.npy", np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32))
    assert main(["eval", "coco", "--annotations", str(annotations), "--images", str(images), "--detector",
                 str(make_detic_checkpoint(tmp_path / "tiny.pth", "tiny", seed=0)), "--vocabulary",
                 str(tmp_path / "vocab.npy"), "--device", "cpu", "--no-progress", "--no-plots",
                 "--score-threshold", "0.0", "--max-detections", "5", "--input-size", "128,160",
                 "--output", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out/main/results.json").read_text())
    assert results and all(isinstance(r["segmentation"]["counts"], str) for r in results)
