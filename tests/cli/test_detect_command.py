"""``audiodetic detect``: the CLI contract (README "Use") on a tiny random checkpoint in the official layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from audiodetic.cli import main
from audiodetic.testing.detic_checkpoints import make_detic_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_detect")
    checkpoint = make_detic_checkpoint(root / "tiny.pth", "tiny", seed=0)
    rng = np.random.default_rng(0)
    images = []
    for index, size in enumerate([(90, 120), (70, 50)]):
        picture = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        picture[10:40, 15:45] = (220, 30, 30)
        path = root / f"image{index}.png"
        Image.fromarray(picture).save(path)
        images.append(path)
    vocabulary = root / "vocab.npy"
    np.save(vocabulary, rng.normal(size=(3, 512)).astype(np.float32))
    return {"checkpoint": checkpoint, "images": images, "vocabulary": vocabulary, "root": root}


def _run(files, *extra: str) -> int:
    args = ["detect", *map(str, files["images"]), "--detector", str(files["checkpoint"]),
            "--vocabulary", str(files["vocabulary"]), *extra]
    return main(args)


def test_detect_writes_the_contract_json(files):
    out = files["root"] / "out.json"
    code = _run(files, "--names", "dog,cat,bird", "--score-threshold", "0.0", "--max-detections", "10",
                "--input-size", "160,256", "--output", str(out))
    assert code == 0
    results = json.loads(out.read_text())
    assert [r["image"] for r in results] == [str(p) for p in files["images"]]
    assert [(r["height"], r["width"]) for r in results] == [(90, 120), (70, 50)]
    total = 0
    for result in results:
        scores = [d["score"] for d in result["detections"]]
        assert scores == sorted(scores, reverse=True)
        for det in result["detections"]:
            total += 1
            assert det["label"] == ["dog", "cat", "bird"][det["class_id"]]
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 <= result["width"] and 0 <= y1 < y2 <= result["height"]
            assert det["mask"]["size"] == [result["height"], result["width"]]
            assert isinstance(det["mask"]["counts"], str)
    assert total > 0


def test_no_masks_and_all_classes(files):
    out = files["root"] / "plain.json"
    assert _run(files, "--no-masks", "--all-classes", "--score-threshold", "0.0", "--max-detections", "50",
                "--input-size", "160,256", "--output", str(out)) == 0
    results = json.loads(out.read_text())
    detections = [d for r in results for d in r["detections"]]
    assert detections and all("mask" not in d for d in detections)
    assert {d["label"] for d in detections} <= {"class_0", "class_1", "class_2"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-size", "800"], "--input-size"),
        (["--names", "a,b"], "names"),
        (["--names", "a,,b"], "--names"),
        (["--score-threshold", "1.5"], "--score-threshold"),
    ],
)
def test_bad_arguments_fail_with_a_message(files, capsys, extra, message):
    assert _run(files, *extra, "--output", str(files["root"] / "bad.json")) == 1
    assert message in capsys.readouterr().err


def test_missing_files_fail_with_a_message(files, capsys):
    out = str(files["root"] / "never.json")
    assert main(["detect", "nope.png", "--detector", str(files["checkpoint"]), "--vocabulary",
                 str(files["vocabulary"]), "--output", out]) == 1
    assert "nope.png" in capsys.readouterr().err
    assert main(["detect", str(files["images"][0]), "--detector", str(files["checkpoint"]), "--vocabulary",
                 "missing.npy", "--output", out]) == 1
    assert "missing.npy" in capsys.readouterr().err
