"""``audiodetic video``: JSON Lines, track table and annotated video on generated media, and bad input."""

from __future__ import annotations

import json

import pytest

from audiodetic.cli import main
from audiodetic.io import iter_json_lines
from audiodetic.testing.video_media import write_test_video

pytest.importorskip("supervision")
SMALL = ["--no-progress"]


def _streams(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        duration = float(container.duration) / 1e6
        return frames, duration, [s.type for s in container.streams]


def test_soundtrack_run_writes_lines_tracks_and_a_video_with_audio(clip_mp4, tiny_model_args, tmp_path, capsys):
    out, drawn = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    code = main(["video", str(clip_mp4.path), "--soundtrack", "--text", "car", "--score-threshold", "0.3", "--fps", "1",
                 "--output", str(out), "--draw", str(drawn), "--heatmap", *tiny_model_args, *SMALL])
    assert code == 0, capsys.readouterr().err
    lines = [value for _, _, value in iter_json_lines(out)]
    assert [line["time_s"] for line in lines] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert {d["label"] for line in lines for d in line["detections"]} <= {"car", "soundtrack"}
    assert lines[-1]["silent"] is True and lines[0]["silent"] is False
    table = json.loads((tmp_path / "out.tracks.json").read_text())
    assert table["complete"] is True and table["frames"] == 6 and table["soundtrack_window_s"] == 2.0
    assert table["silence_dbfs"] == -60.0
    for track in table["tracks"]:
        assert track["label"] in ("car", "soundtrack") and track["start_s"] <= track["end_s"]
    frames, duration, kinds = _streams(drawn)
    assert frames == 6 and "audio" in kinds
    assert duration == pytest.approx(6.0, abs=0.5)  # 6 frames at 1 fps; the input lasts 6 s


def test_lines_are_valid_while_the_file_grows(clip_mp4, tiny_loaded_model, tmp_path):
    from audiodetic.video import detect_video
    from audiodetic.video.outputs import write_outputs

    out = tmp_path / "growing.jsonl"
    seen = []

    def check(_result):
        text = out.read_text()
        assert text.endswith("\n")
        seen.append(len([json.loads(line) for line in text.splitlines()]))

    run = detect_video(clip_mp4.path, soundtrack=True, fps=1, model=tiny_loaded_model)
    outputs = write_outputs(run, jsonl=out, on_frame=check)
    assert seen == list(range(1, 7)) and outputs.frames == 6


def test_outputs_never_replace_inputs_or_existing_files(clip_mp4, tiny_model_args, tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    out.write_text("precious\n")
    assert main(["video", str(clip_mp4.path), "--soundtrack", "--output", str(out), *tiny_model_args, *SMALL]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == "precious\n"
    assert main(["video", str(clip_mp4.path), "--soundtrack", "--output", str(tmp_path / "a.jsonl"), "--draw",
                 str(clip_mp4.path), "--overwrite", *tiny_model_args, *SMALL]) == 1
    assert "one of the inputs" in capsys.readouterr().err
    assert main(["video", str(clip_mp4.path), "--soundtrack", "--fps", "fast", "--output", str(tmp_path / "b.jsonl"),
                 *tiny_model_args, *SMALL]) == 1
    assert "--fps" in capsys.readouterr().err
    assert main(["video", str(clip_mp4.path), "--output", str(tmp_path / "c.jsonl"), *tiny_model_args]) == 1
    assert "no prompts" in capsys.readouterr().err
    assert main(["video", str(clip_mp4.path), "--soundtrack", "--output", str(tmp_path / "d.jsonl"), "--draw",
                 str(tmp_path / "d.gif"), *tiny_model_args]) == 1
    assert ".mp4" in capsys.readouterr().err


def test_a_damaged_file_keeps_the_results_before_the_damage(tiny_model_args, tmp_path, capsys):
    whole = write_test_video(tmp_path / "whole.mkv", duration_s=6.0)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.path.read_bytes()[: whole.path.stat().st_size * 6 // 10])
    out, drawn = tmp_path / "cut.jsonl", tmp_path / "cut.mp4"
    code = main(["video", str(cut), "--soundtrack", "--output", str(out), "--draw", str(drawn), *tiny_model_args,
                 *SMALL])
    err = capsys.readouterr().err
    assert code == 1 and "truncated or damaged after" in err
    lines = [value for _, _, value in iter_json_lines(out)]
    assert 2 <= len(lines) <= 10
    table = json.loads((tmp_path / "cut.tracks.json").read_text())
    assert table["complete"] is False and "truncated" in table["error"] and table["frames"] == len(lines)
    assert _streams(drawn)[0] == len(lines)


def test_demo_backend_returns_the_video_and_track_rows(clip_mp4, tiny_loaded_model, tmp_path):
    from audiodetic.video.backend import TRACK_COLUMNS, annotate_video

    path, rows = annotate_video(clip_mp4.path, model=tiny_loaded_model, soundtrack=True, fps=1, end_s=3.0,
                                score_threshold=0.3, output_dir=tmp_path)
    assert path.parent == tmp_path and path.suffix == ".mp4" and path != clip_mp4.path
    assert _streams(path)[0] == 3
    assert all(len(row) == len(TRACK_COLUMNS) and row[1] == "soundtrack" for row in rows)
