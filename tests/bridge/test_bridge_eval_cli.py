"""`audiodetic bridge eval` and `bridge fit --kind paired|linear --audio-stats` end to end, on generated datasets and
tiny random-weight checkpoints in the official layouts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from audio_datasets import make_csv, make_urbansound8k

from audiodetic.bridge import LinearBridge, PairedBridge, load_bridge
from audiodetic.cli import main
from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

LABELS = "dog\nrooster\nrain\ncrying baby\nclock tick\nsiren\ncar horn\nchurch bells\ncat\nbird\nengine\ntrain\n"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One weights cache for the module: clips and label banks are encoded once (keyed by content)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def files(tmp_path, tiny_checkpoints, esc50_root, shared_cache):
    imagebind, clip = tiny_checkpoints
    root = tmp_path / "esc50"
    shutil.copytree(esc50_root, root)
    sf.write(root / "audio" / "1-1000-A-0.wav", np.zeros(16000, np.float32), 16000)  # a dog clip gone silent
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    return {"root": root, "imagebind": imagebind, "clip": clip, "labels": labels, "cache": shared_cache}


def _args(files, *extra):
    return ["--imagebind-weights", str(files["imagebind"]), "--clip-weights", str(files["clip"]), "--labels",
            str(files["labels"]), "--cache-dir", str(files["cache"]), "--no-progress", *extra]


def test_bridge_eval_on_esc50_writes_reports_and_reruns_from_the_cache(files, tmp_path, capsys, monkeypatch):
    calls = []
    original = ImageBindAudioEncoder.encode_sources
    monkeypatch.setattr(ImageBindAudioEncoder, "encode_sources",
                        lambda self, sources, **kw: calls.append(len(sources)) or original(self, sources, **kw))
    out = tmp_path / "out"  # first in the module: the module's cache holds no clip yet
    argv = ["bridge", "eval", "--dataset", str(files["root"]), "--output", str(out), *_args(files)]
    assert main(argv) == 0
    result = json.loads((out / "bridge_eval.json").read_text())
    assert result["dataset"] == "ESC-50" and result["layout"] == "esc50"
    assert result["num_clips"] == 31 and result["num_classes"] == 8  # 32 listed, the silent one skipped
    assert result["skipped"]["count"] == 1 and result["skipped"]["clips"][0]["reason"].startswith("silent")
    assert result["skipped"]["clips"][0]["row"] == 2
    assert set(result["native"]) >= {"top1", "top5"}
    assert list(result["bridges"]) == ["linear", "linear+gap", "retrieval", "paired", "paired:class-disjoint"]
    for name, entry in result["bridges"].items():
        assert set(entry) >= {"top1", "top5", "mean_class_acc", "retention", "split"}, name
        assert 0.0 <= entry["top1"] <= entry["top5"] <= 1.0
        if entry["native_top1"] > 0:
            assert entry["retention"] == pytest.approx(entry["top1"] / entry["native_top1"])
    assert result["bridges"]["paired"]["split"].startswith("held-out folds (4 dataset folds)")
    assert result["bridges"]["paired:class-disjoint"]["split"].startswith("class-disjoint: fitted on 4 classes")
    assert (out / "bridge_eval.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "bridge_eval.md").read_text()
    assert "| paired:class-disjoint |" in markdown and "66.9 %" in markdown
    printed = capsys.readouterr()
    assert "| bridge | top-1 % |" in printed.out and "Table 2" in printed.err
    assert sum(calls) == 31
    calls.clear()
    assert main(argv) == 0  # a rerun: every clip embedding comes from the disk cache
    assert sum(calls) == 0
    assert json.loads((out / "bridge_eval.json").read_text())["bridges"] == result["bridges"]


def test_bridge_eval_on_urbansound8k_and_csv(files, tmp_path):
    us8k = make_urbansound8k(tmp_path / "us8k", clips_per_class=3)
    assert main(["bridge", "eval", "--dataset", str(us8k), "--output", str(tmp_path / "u"), "--bridge", "retrieval",
                 "--bridge", "paired", *_args(files)]) == 0
    result = json.loads((tmp_path / "u" / "bridge_eval.json").read_text())
    assert result["dataset"] == "UrbanSound8K" and result["num_clips"] == 12
    assert list(result["bridges"]) == ["retrieval", "paired", "paired:class-disjoint"]
    table = make_csv(tmp_path / "mine", clips_per_class=3, folds=False)
    assert main(["bridge", "eval", "--dataset", str(table), "--output", str(tmp_path / "c"), "--bridge", "paired",
                 "--text-weight", "0", *_args(files)]) == 0
    result = json.loads((tmp_path / "c" / "bridge_eval.json").read_text())
    assert result["num_classes"] == 3 and list(result["bridges"]) == ["paired"]  # < 4 classes: no class halves
    assert "stratified random folds" in result["bridges"]["paired"]["split"]


def test_bridge_fit_paired_and_gap_corrected_linear(files, tmp_path, capsys):
    out = tmp_path / "paired.npz"
    assert main(["bridge", "fit", "--kind", "paired", "--dataset", str(files["root"]), "--output", str(out),
                 "--json", *_args(files)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "paired" and report["params"]["n_clips"] == 31 and report["params"]["cv"] == "folds"
    assert report["params"]["n_text_pairs"] == 12 and report["vocabulary"] == "ESC-50"
    bridge = load_bridge(out)
    assert isinstance(bridge, PairedBridge) and (bridge.src_dim, bridge.dst_dim) == (64, 512)
    assert main(["bridge", "fit", "--kind", "paired", "--dataset", str(files["root"]), "--cv", "classes",
                 *_args(files)]) == 0
    assert capsys.readouterr().out.startswith("paired/ridge: 43 pairs, 64->512; held-out (31) top-1")  # 31 + 12
    cached = list((files["cache"] / "bridges").glob("paired-*.npz"))
    assert len(cached) == 1 and load_bridge(cached[0]).report.params["cv"] == "classes"
    gap = tmp_path / "gap.npz"
    assert main(["bridge", "fit", "--kind", "linear", "--audio-stats", str(files["root"] / "audio"), "--output",
                 str(gap), *_args(files)]) == 0
    assert "centred on the audio mean of 31 clips" in capsys.readouterr().out
    corrected = load_bridge(gap)
    assert isinstance(corrected, LinearBridge) and corrected.centring == "audio"
    assert corrected.report.params["audio_stats"]["n_clips"] == 31


def test_bridge_cli_bad_input(files, tmp_path, capsys):
    wrong = LinearBridge.random(1024, 512).save(tmp_path / "huge.npz")
    base = ["bridge", "eval", "--dataset", str(files["root"]), "--output", str(tmp_path / "o"), *_args(files)]
    assert main(base + ["--bridge", str(wrong)]) == 1
    assert "huge.npz: fitted for 1024-d -> 512-d, but this audio tower gives 64-d" in capsys.readouterr().err
    assert main(base + ["--bridge", str(tmp_path / "none.npz")]) == 1
    assert "none.npz" in capsys.readouterr().err
    assert main(base + ["--text-weight", "-1"]) == 1
    assert "--text-weight" in capsys.readouterr().err
    (files["root"] / "meta" / "esc50.csv").write_text("filename,fold,target,category\nx.wav,1,0,dog\n")
    assert main(base) == 1
    assert "row 2: " in capsys.readouterr().err
    assert main(["bridge", "fit", "--kind", "paired", *_args(files)]) == 1
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["bridge", "fit", "--kind", "retrieval", "--audio-stats", str(tmp_path), *_args(files)]) == 1
    assert "--audio-stats corrects a linear bridge" in capsys.readouterr().err
    assert main(base + ["--bridge", "quadratic"]) == 1  # neither a kind nor a file
    assert "bridge file not found: quadratic" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of the kinds
        main(["bridge", "fit", "--kind", "quadratic"])
    assert "invalid choice: 'quadratic'" in capsys.readouterr().err
