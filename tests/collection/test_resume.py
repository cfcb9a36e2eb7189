"""Results files: resume where a run stopped, repair a torn line, refuse other settings and other people's files."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from collection_helpers import read_lines

from audiodetic.collection import RunOptions, detect_collection
from audiodetic.errors import OutputExistsError

QUIET = RunOptions(workers=2, progress=False)


def _list(tmp_path, paths, name="list.txt"):
    listing = tmp_path / name
    listing.write_text("\n".join(str(p) for p in paths) + "\n")
    return listing


def test_rerun_skips_done_images_and_repairs_a_torn_line(assets, settings, plain_loop, tmp_path):
    out = tmp_path / "out.jsonl"
    first = detect_collection([str(_list(tmp_path, assets["images"][:3]))], settings, out, QUIET)
    assert (first.processed, first.skipped) == (3, 0)
    assert json.loads((tmp_path / "out.jsonl.run.json").read_text())["format"] == "audiodetic.detect/1"
    with open(out, "ab") as handle:  # a write torn by a kill
        handle.write(b'{"image": "x", "width": 3, "detec')
    second = detect_collection([str(assets["photos"]), str(assets["images"][0])], settings, out, QUIET)
    assert (second.processed, second.skipped, second.failed_total) == (3, 3, 0)
    lines = read_lines(out)  # the torn tail is gone, each image once, in the order they were done
    assert [line["image"] for line in lines] == [str(p) for p in assets["images"]]
    assert all(line == plain_loop[line["image"]] for line in lines)
    third = detect_collection([str(assets["photos"])], settings, out, QUIET)
    assert (third.processed, third.skipped) == (0, 6) and len(read_lines(out)) == 6


def test_other_settings_are_refused_unless_overwrite(assets, settings, tmp_path):
    out = tmp_path / "out.jsonl"
    images = [str(p) for p in assets["images"][:2]]
    detect_collection(images, settings, out, QUIET)
    before = out.read_bytes()
    changed = dataclasses.replace(settings, score_threshold=0.3, with_masks=False)
    with pytest.raises(ValueError, match=r"other settings \(score_threshold: 0\.2 -> 0\.3; with_masks: True -> "
                                         r"False\); use another --output, or --overwrite to start over"):
        detect_collection(images, changed, out, QUIET)
    assert out.read_bytes() == before
    summary = detect_collection(images, changed, out, dataclasses.replace(QUIET, overwrite=True))
    assert summary.processed == 2
    assert all("mask" not in d for line in read_lines(out) for d in line["detections"])


def test_a_file_that_is_not_ours_is_never_written(assets, settings, tmp_path):
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"some": "data"}\n')
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="was not written by this command"):
            detect_collection([str(assets["images"][0])], settings, foreign,
                              dataclasses.replace(QUIET, overwrite=overwrite))
    assert foreign.read_text() == '{"some": "data"}\n'
    lookalike = tmp_path / "look.jsonl"
    lookalike.write_text('{"some": "data"}\n')
    (tmp_path / "look.jsonl.run.json").write_text(json.dumps({"format": "audiodetic.detect/1",
                                                              "settings": settings.identity()}))
    with pytest.raises(OutputExistsError, match="line 1 is not an audiodetic detections record"):
        detect_collection([str(assets["images"][0])], settings, lookalike, QUIET)
    assert lookalike.read_text() == '{"some": "data"}\n'

    with pytest.raises(ValueError, match="give a .jsonl file"):
        detect_collection([str(assets["images"][0])], settings, tmp_path / "out.csv", QUIET)
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(OutputExistsError, match="is a folder"):
        detect_collection([str(assets["images"][0])], settings, tmp_path / "folder.jsonl", QUIET)


def test_json_output_keeps_todays_list_and_resumes_after_failures(assets, settings, plain_loop, tmp_path):
    out = tmp_path / "out.json"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images = [str(assets["images"][0]), str(broken), str(assets["images"][1])]
    summary = detect_collection(images, settings, out, QUIET)
    assert summary.failed_total == 1
    listed = json.loads(out.read_text())  # the list of what worked; the partial lines stay for the next run
    assert [r["image"] for r in listed] == [images[0], images[2]]
    assert (tmp_path / "out.json.partial.jsonl").exists()
    broken.write_bytes(assets["images"][2].read_bytes())  # fixed
    again = detect_collection(images, settings, out, QUIET)
    assert (again.processed, again.skipped, again.failed_total) == (1, 2, 0)
    text = out.read_text()
    assert text == json.dumps([plain_loop[images[0]], {**plain_loop[str(assets["images"][2])], "image": images[1]},
                               plain_loop[images[2]]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png", "out.json"]
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        detect_collection(images, settings, out, QUIET)
    assert detect_collection(images, settings, out, dataclasses.replace(QUIET, overwrite=True)).processed == 3


def test_resuming_from_another_folder_keeps_paths_relative_to_the_first(assets, settings, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for path in assets["images"][:3]:
        (data / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    detect_collection(["data/img0.png", "data/img1.png"], settings, tmp_path / "out.jsonl", QUIET)
    monkeypatch.chdir(data)
    summary = detect_collection(["img0.png", "img1.png", "img2.png"], settings, tmp_path / "out.jsonl", QUIET)
    assert (summary.processed, summary.skipped) == (1, 2)
    assert [line["image"] for line in read_lines(tmp_path / "out.jsonl")] == [
        "data/img0.png", "data/img1.png", os.path.join("data", "img2.png")]


def test_settings_take_the_bridge_rule_of_every_other_surface(assets, tmp_path):
    from audiodetic.collection import DetectionSettings
    from audiodetic.errors import InputError, MissingFileError

    base = {"detector": str(assets["checkpoint"]), "vocabulary": str(assets["vocabulary"])}
    assert DetectionSettings(**base, bridge="retrieval").bridge == "retrieval"
    with pytest.raises(InputError, match="paired bridge is fitted on labelled clips beforehand"):
        DetectionSettings(**base, bridge="paired")
    with pytest.raises(InputError, match=r"unknown bridge kind 'quadratic'; choose one of linear, retrieval, paired"):
        DetectionSettings(**base, bridge="quadratic")
    with pytest.raises(MissingFileError, match="bridge file not found"):
        DetectionSettings(**base, bridge=str(tmp_path / "gone.npz"))


def test_an_edited_prompt_file_changes_the_run_identity(assets, tmp_path):
    import shutil

    import numpy as np

    from audiodetic.collection import DetectionSettings

    vocabulary = tmp_path / "vocab.npy"
    shutil.copy(assets["vocabulary"], vocabulary)
    settings = DetectionSettings(detector=str(assets["checkpoint"]), vocabulary=str(vocabulary))
    before = settings.identity()
    np.save(vocabulary, -np.load(vocabulary))
    assert settings.identity()["vocabulary"] != before["vocabulary"], "an edited file must not resume the old run"
