"""``audiodetic eval sound-localisation`` end to end on generated benchmark folders with tiny random models."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from audiodetic.cli import main
from audiodetic.testing.video_media import Segment, render_frame, soundtrack_samples, write_wav


def _sound(path, kind, seconds):
    write_wav(path, soundtrack_samples([Segment(0, seconds, kind)], seconds, 16000), 16000)


def test_vggss_run_writes_the_reports(tiny_model_args, tmp_path, capsys):
    data = tmp_path / "vggss"
    (data / "frames").mkdir(parents=True)
    (data / "audio").mkdir()
    entries = []
    for index, kind in enumerate(["tone", "noise", "silence"]):
        name = f"clip{index}"
        Image.fromarray(render_frame(index, (160, 128), 3.0)).save(data / "frames" / f"{name}.jpg")
        _sound(data / "audio" / f"{name}.wav", kind, 4.0)
        entries.append({"file": name, "class": kind, "bbox": [[0.1, 0.1, 0.4, 0.5]]})
    (data / "vggss.json").write_text(json.dumps(entries))
    out = tmp_path / "report"
    code = main(["eval", "sound-localisation", "--dataset", "vggss", "--annotations", str(data / "vggss.json"),
                 "--data", str(data), "--output", str(out), "--no-progress", *tiny_model_args])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "cIoU@0.5" in printed.out and "39-53" in printed.out
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["summary"]
    assert summary["samples"] == 3 and summary["silent_samples"] == 1 and 0 <= summary["AUC"] <= 1
    assert metrics["settings"]["soundtrack_window_s"] == 2.0 and metrics["settings"]["silence_dbfs"] == -60.0
    rows = list(csv.DictReader(open(out / "per_sample.csv")))
    assert [r["name"] for r in rows] == ["clip0", "clip1", "clip2"]
    silent = metrics["samples"][2]
    assert silent["silent"] is True
    # a silent map is empty: the median rule then takes the whole image, so cIoU = |gt| / (224 * 224)
    gt_pixels = (int(224 * 0.4) - int(224 * 0.1)) * (int(224 * 0.5) - int(224 * 0.1))
    assert silent["cIoU"] == gt_pixels / (224 * 224)
    assert (out / "success_curve.png").stat().st_size > 0
    assert "Published numbers" in (out / "report.md").read_text()


def test_s4_run_scores_masks(tiny_model_args, tmp_path, capsys):
    (tmp_path / "s4_meta_data.csv").write_text("name,start,category,split\nv1,0,dog,test\n")
    root = tmp_path / "s4_data"
    for kind in ("visual_frames", "gt_masks"):
        (root / kind / "test" / "dog" / "v1").mkdir(parents=True)
    for k in range(1, 6):
        Image.fromarray(render_frame(k, (160, 128), 5.0)).save(root / "visual_frames/test/dog/v1" / f"v1_{k}.png")
        mask = np.zeros((128, 160), np.uint8)
        mask[20:60, 30:90] = 255
        Image.fromarray(mask).save(root / "gt_masks/test/dog/v1" / f"v1_{k}.png")
    (root / "audio_wav/test/dog").mkdir(parents=True)
    _sound(root / "audio_wav/test/dog/v1.wav", "noise", 5.0)
    out = tmp_path / "s4_report"
    code = main(["eval", "sound-localisation", "--dataset", "s4", "--data", str(root), "--output", str(out),
                 "--no-progress", *tiny_model_args])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["videos"] == 1 and summary["frames"] == 5
    assert 0 <= summary["mIoU"] <= 1 and 0 <= summary["F"] <= 1
    assert main(["eval", "sound-localisation", "--dataset", "vggss", "--data", str(root), "--output", str(out),
                 *tiny_model_args]) == 1
    assert "--annotations" in capsys.readouterr().err
