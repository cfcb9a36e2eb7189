"""Pieces of the bridge package: kinds, gap correction, paired-bridge inputs, CV splits, scores, explain, errors."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic.bridge import BRIDGE_CLASSES, LinearBridge, PairedBridge, RetrievalBridge, load_bridge
from audiodetic.bridge._common import classification_scores
from audiodetic.bridge.evaluate import EmbeddedClips, bridge_names, evaluate_bridges
from audiodetic.bridge.explain import explain_sounds, format_explanation
from audiodetic.bridge.fit import default_bridge, fit_bridge
from audiodetic.bridge.paired import cv_splits
from audiodetic.errors import CheckpointError, InputError, InputTypeError
from audiodetic.spaces import BRIDGE_KINDS, LABEL_BANK_KINDS, check_bridge_kind, is_label_bank_kind


def test_every_kind_has_one_class_and_label_bank_kinds_are_kinds():
    assert set(BRIDGE_CLASSES) == set(BRIDGE_KINDS) and set(LABEL_BANK_KINDS) < set(BRIDGE_KINDS)
    assert check_bridge_kind("paired") == "paired" and not is_label_bank_kind("paired")
    with pytest.raises(InputError, match="paired bridge is fitted on labelled clips beforehand"):
        default_bridge("paired")
    with pytest.raises(InputError, match="bridge fit --kind paired --dataset DIR"):
        fit_bridge("paired", imagebind_text_encoder=object())
    assert bridge_names(["linear", "/x/mine.npz", "paired"]) == ["linear", "mine", "paired"]
    with pytest.raises(InputError, match=r"two bridges would be named \['mine'\]"):
        bridge_names(["/a/mine.npz", "/b/mine.npz"])


def test_audio_centring_replaces_the_text_mean_and_says_so(tmp_path):
    rng = np.random.default_rng(0)
    src, dst = rng.standard_normal((60, 8)), rng.standard_normal((60, 4))
    bridge = LinearBridge.fit(src, dst, alpha=0.1)
    assert bridge.centring == "text" and "centred on the text mean" in bridge.report.summary()
    sounds = rng.standard_normal((30, 8)) + 3.0
    corrected = bridge.with_audio_centring(sounds, source="my/clips")
    unit = sounds / np.linalg.norm(sounds, axis=1, keepdims=True)
    np.testing.assert_allclose(corrected.src_mean, unit.mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(corrected.weight, bridge.weight)
    np.testing.assert_array_equal(corrected.dst_mean, bridge.dst_mean)
    assert corrected.centring == "audio" and corrected.report.params["audio_stats"] == {"source": "my/clips",
                                                                                         "n_clips": 30}
    assert "sounds centred on the audio mean of 30 clips (my/clips)" in corrected.report.summary()
    x = rng.standard_normal((3, 8))
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True) - unit.mean(axis=0)) @ bridge.weight + bridge.dst_mean
    np.testing.assert_allclose(corrected.apply(x), expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=1e-5)
    assert load_bridge(corrected.save(tmp_path / "gap.npz")).centring == "audio"
    with pytest.raises(InputError, match="width 5 .* 8-d"):
        bridge.with_audio_centring(np.ones((4, 5)))
    with pytest.raises(InputError, match="at least 2 clips"):
        bridge.with_audio_centring(np.ones((1, 8)))


def test_paired_bridge_input_errors():
    rng = np.random.default_rng(1)
    clips, dst = rng.standard_normal((12, 6)), rng.standard_normal((3, 4))
    labels = np.arange(12) % 3
    with pytest.raises(InputError, match="12 integer class indices"):
        PairedBridge.from_clips(clips, labels[:5], dst)
    with pytest.raises(InputError, match="index the 3 class embeddings"):
        PairedBridge.from_clips(clips, labels + 1, dst)
    with pytest.raises(InputError, match="at least 2 classes"):
        PairedBridge.from_clips(clips, np.zeros(12, int), dst)
    with pytest.raises(InputError, match="text_weight > 0 needs"):
        PairedBridge.from_clips(clips, labels, dst, text_weight=1.0)
    with pytest.raises(InputError, match="text_weight must be"):
        PairedBridge.from_clips(clips, labels, dst, text_weight=-1)
    with pytest.raises(InputError, match="alpha must be"):
        PairedBridge.from_clips(clips, labels, dst, alpha="big")
    with pytest.raises(InputError, match="NaN"):
        PairedBridge.from_clips(np.full((12, 6), np.nan), labels, dst)
    with pytest.raises(InputError, match="text_src has width 5"):
        PairedBridge.from_clips(clips, labels, dst, text_weight=1.0, text_src=np.ones((4, 5)), text_dst=np.ones((4, 4)))
    with pytest.raises(InputError, match="at least 4 classes"):
        PairedBridge.from_clips(clips, labels, dst, cv="classes")
    with pytest.raises(CheckpointError, match="not a paired one"):
        PairedBridge.load(LinearBridge.random(6, 4).save(__import__("tempfile").mkdtemp() + "/l.npz"))


def test_cv_splits_cover_every_clip_once():
    labels = np.repeat(np.arange(10), 7)
    folds = np.tile(np.arange(7) % 3, 10)
    for mode, given in (("folds", folds), ("folds", None), ("classes", None)):
        splits = cv_splits(labels, given, mode, seed=2)
        held = np.concatenate([h for _, h, _ in splits])
        assert sorted(held) == list(range(70)), mode
        for train, held_out, candidates in splits:
            assert not set(train) & set(held_out)
            if mode == "classes":  # held-out classes never appear in training
                assert not set(labels[train]) & set(labels[held_out]) and set(labels[held_out]) == set(candidates)
    assert len(cv_splits(labels, folds, "folds")) == 3 and len(cv_splits(labels, None, "folds")) == 5
    assert len(cv_splits(labels, None, "classes")) == 5


def test_classification_scores_count_ties_against_the_prediction():
    classes = np.eye(3)
    mapped = np.array([[1.0, 0, 0], [0.0, 1, 0], [1.0, 1, 0], [0, 0, 1.0]])
    scores = classification_scores(mapped, classes, np.array([0, 0, 0, 2]))
    assert scores["top1"] == 0.5 and scores["top5"] == 1.0  # the tie (row 2) is a miss at top-1
    assert scores["mean_class_acc"] == pytest.approx((1 / 3 + 1) / 2)


def test_evaluate_refuses_bridges_for_another_width_and_empty_sets():
    rng = np.random.default_rng(3)
    data = EmbeddedClips("toy", rng.standard_normal((8, 6)), np.arange(8) % 2, None, ("a", "b"),
                         rng.standard_normal((2, 6)), rng.standard_normal((2, 4)))
    with pytest.raises(InputError, match=r"bridge 'wide' maps 9-d -> 4-d, but the clips are 6-d"):
        evaluate_bridges(data, {"wide": LinearBridge.random(9, 4)})
    with pytest.raises(InputError, match="only 'paired' is fitted here"):
        evaluate_bridges(data, {"x": "linear"})
    with pytest.raises(InputError, match=r"no usable clips left to score \(3 skipped\)"):
        EmbeddedClips("toy", np.zeros((0, 6)), np.zeros(0, int), None, ("a", "b"), np.ones((2, 6)), np.ones((2, 4)),
                      {"count": 3, "clips": []})
    with pytest.raises(InputError, match="only one class"):
        EmbeddedClips("toy", np.ones((3, 6)), np.zeros(3, int), None, ("a", "b"), np.ones((2, 6)), np.ones((2, 4)))
    result = evaluate_bridges(data, {"random": LinearBridge.random(6, 4)})
    assert result["bridges"]["random"]["split"] == "fitted without these clips; every clip scored"
    assert "random+gap" not in result["bridges"]  # a random map has no text centring to correct


class FixedTower:
    """Returns a fixed embedding per sound: ``table[first sample]`` of each ``(waveform, rate)`` source."""

    fingerprint = "fixed-tower"

    def __init__(self, table):
        self.table = table

    def encode_sources(self, sources):
        return np.stack([self.table[int(waveform[0])] for waveform, _ in sources])


def _sound(key: int):
    return (np.full(1600, float(key), np.float32), 16000)


def test_explain_sounds_averages_clips_like_the_vocabulary_and_refuses_maps():
    bank = np.eye(4)
    bridge = RetrievalBridge(bank, np.eye(4)[:, :3] + 0.1, ["dog", "cat", "siren", "rain"], temperature=0.1,
                             top_k=4)
    tower = FixedTower({1: np.array([2.0, 0.1, 0, 0]), 2: np.array([0.1, 3.0, 0, 0])})
    from audiodetic.prompts import EmbeddingCache

    bark, meow = _sound(1), _sound(2)
    explained = explain_sounds({"dog": [bark], "both": [bark, meow]}, audio_encoder=tower, bridge=bridge,
                               cache=EmbeddingCache())
    assert [label for label, _ in explained["dog"]] == ["dog", "cat", "siren"]
    weights = [w for _, w in explained["dog"]]
    assert weights == sorted(weights, reverse=True) and sum(weights) <= 1.0 + 1e-9
    # two clips: each embedding made unit, averaged in the audio space, then one softmax over the labels
    a, b = np.array([2.0, 0.1, 0, 0]), np.array([0.1, 3.0, 0, 0])
    prototype = a / np.linalg.norm(a) + b / np.linalg.norm(b)
    sims = prototype / np.linalg.norm(prototype)  # cosine with each one-hot label row
    softmax = np.exp(sims / 0.1) / np.exp(sims / 0.1).sum()
    order = np.argsort(-softmax)[:3]
    assert explained["both"] == [(bridge.names[i], pytest.approx(softmax[i])) for i in order]
    line = format_explanation({"dog": explained["dog"]})[0]
    assert line.startswith("dog: heard as dog ") and line.count(", ") == 2
    with pytest.raises(InputTypeError, match="LinearBridge is a map that mixes no labels"):
        explain_sounds({"dog": [bark]}, audio_encoder=tower, bridge=LinearBridge.random(4, 3))
