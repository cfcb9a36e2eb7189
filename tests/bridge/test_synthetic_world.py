"""Bridges in a world with a known answer (tests/helpers/synthetic_world.py): what the modality gap costs each bridge.

Zero-shot top-1 in the detector space (400-name label bank, 40 classes x 30 clips, 5 folds; seed 0), as measured:

==============================  =======  =============
bridge                          no gap   gap (norm 2)
==============================  =======  =============
native (ImageBind zero-shot)    0.973    0.846
linear, text pairs only         0.862    0.631
gap-corrected linear            0.860    0.835
paired (held-out folds)         0.875    0.857
paired, class-disjoint          0.894    0.868   (native on that task: 0.987 / 0.918)
retrieval, 400-name bank        0.944    0.758
retrieval, bank = the classes   0.973    0.838
  ... with top_k = 1            0.973    0.846   (= native, exactly)
==============================  =======  =============

The gap costs the text-fitted linear bridge 23 points; centring sounds on their own cloud (gap correction) and
fitting on labelled clips (paired, with the label bank's text pairs at weight 1) win them back; without a gap neither
is worse. Each claim is written as a check that a deliberately broken bridge fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic.bridge import PairedBridge, RetrievalBridge
from audiodetic.bridge.evaluate import evaluate_bridges

STATED = {  # (no gap, gap): top-1 of each entry of conftest.score_world
    "native": (0.9725, 0.8458),
    "linear": (0.8617, 0.6308),
    "linear+gap": (0.8600, 0.8350),
    "paired": (0.8750, 0.8567),
    "paired:class-disjoint": (0.8942, 0.8683),
    "retrieval": (0.9442, 0.7583),
    "retrieval@classes": (0.9725, 0.8375),
    "retrieval@classes-top1": (0.9725, 0.8458),
}


def top1(scores: dict, name: str) -> float:
    return scores["native"]["top1"] if name == "native" else scores["bridges"][name]["top1"]


def check_gap_recovered(linear_no_gap: float, linear_gap: float, corrected: float, paired: float) -> None:
    """The gap costs the text-only linear bridge > 15 points; the new bridges end within 5 of the no-gap figure."""
    assert linear_gap < linear_no_gap - 0.15, (linear_gap, linear_no_gap)
    assert corrected >= linear_no_gap - 0.05, f"gap-corrected {corrected:.3f} vs linear without gap {linear_no_gap:.3f}"
    assert paired >= linear_no_gap - 0.05, f"paired {paired:.3f} vs linear without gap {linear_no_gap:.3f}"


def check_not_worse(linear: float, corrected: float, paired: float) -> None:
    """Without a gap, neither new bridge loses more than a point against the text-only linear bridge."""
    assert corrected >= linear - 0.01, (corrected, linear)
    assert paired >= linear - 0.01, (paired, linear)


def check_retrieval_is_native(retrieval_top1: float, native_top1: float, *, tolerance: float) -> None:
    """Retrieval over the dataset's own names classifies like ImageBind's own zero-shot over them."""
    assert abs(retrieval_top1 - native_top1) <= tolerance, (retrieval_top1, native_top1)


def test_the_world_gives_the_stated_numbers(gap_scores, no_gap_scores):
    for name, (without, with_gap) in STATED.items():
        assert top1(no_gap_scores, name) == pytest.approx(without, abs=0.01), name
        assert top1(gap_scores, name) == pytest.approx(with_gap, abs=0.01), name
    assert gap_scores["native_class_disjoint"]["top1"] == pytest.approx(0.9175, abs=0.01)
    assert gap_scores["num_clips"] == 1200 and gap_scores["num_classes"] == 40
    for entry in gap_scores["bridges"].values():
        assert entry["top5"] >= entry["top1"] and 0 < entry["retention"] <= 1.1


def test_the_gap_hurts_text_fitted_linear_and_the_new_bridges_recover(gap_scores, no_gap_scores):
    check_gap_recovered(top1(no_gap_scores, "linear"), top1(gap_scores, "linear"), top1(gap_scores, "linear+gap"),
                        top1(gap_scores, "paired"))
    assert gap_scores["bridges"]["paired:class-disjoint"]["retention"] > 0.9  # classes it never saw
    assert gap_scores["bridges"]["linear"]["retention"] < 0.8


def test_without_a_gap_the_new_bridges_are_not_worse(no_gap_scores):
    check_not_worse(top1(no_gap_scores, "linear"), top1(no_gap_scores, "linear+gap"), top1(no_gap_scores, "paired"))


def test_retrieval_over_the_classes_is_the_native_zero_shot(gap_scores, no_gap_scores):
    for scores in (gap_scores, no_gap_scores):
        native = scores["native"]["top1"]
        check_retrieval_is_native(top1(scores, "retrieval@classes-top1"), native, tolerance=0.0)  # exact
        check_retrieval_is_native(top1(scores, "retrieval@classes"), native, tolerance=0.015)  # softmax, top-10


def test_broken_bridges_fail_the_same_checks(gap_world, gap_scores, no_gap_scores):
    data, bank = gap_world.dataset(), gap_world.bank()
    linear_no_gap = top1(no_gap_scores, "linear")
    from audiodetic.bridge import LinearBridge

    linear = LinearBridge.fit(bank.src, bank.dst, alpha="auto")
    wrong_centre = linear.with_audio_centring(bank.src, source="the text cloud, not the audio")  # no correction
    rng = np.random.default_rng(0)
    wrong_labels = PairedBridge.from_clips(data.embeddings, rng.permutation(data.labels), data.class_dst)
    shuffled_dst = RetrievalBridge(data.class_src, data.class_dst[rng.permutation(len(data.classes))], top_k=1)
    broken = evaluate_bridges(data, {"centre": wrong_centre, "paired": wrong_labels, "retrieval": shuffled_dst},
                              gap=False)
    with pytest.raises(AssertionError, match="gap-corrected"):
        check_gap_recovered(linear_no_gap, top1(gap_scores, "linear"), top1(broken, "centre"),
                            top1(gap_scores, "paired"))
    with pytest.raises(AssertionError, match="paired"):
        check_gap_recovered(linear_no_gap, top1(gap_scores, "linear"), top1(gap_scores, "linear+gap"),
                            top1(broken, "paired"))
    with pytest.raises(AssertionError):
        check_not_worse(linear_no_gap, top1(no_gap_scores, "linear+gap"), top1(broken, "paired"))
    with pytest.raises(AssertionError):
        check_retrieval_is_native(top1(broken, "retrieval"), broken["native"]["top1"], tolerance=0.015)
    assert wrong_centre.report.params["centring"] == "audio"  # the report says what it did, even when misused


def test_paired_fit_report_and_reload(gap_world, tmp_path):
    data, bank = gap_world.dataset(), gap_world.bank()
    bridge = PairedBridge.from_clips(data.embeddings, data.labels, data.class_dst, class_names=data.classes,
                                     folds=data.folds, text_src=bank.src, text_dst=bank.dst, text_weight=1.0,
                                     vocabulary="synthetic")
    report = bridge.report
    assert report.kind == "paired" and report.params["cv"] == "folds" and report.params["cv_splits"] == 5
    assert report.params["alpha"] in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0) and report.params["alpha_auto"]
    assert set(report.params["cv_top1"]) == {"0.001", "0.01", "0.1", "1", "10", "100"}
    assert report.held_out["top1"] == max(report.params["cv_top1"].values())
    assert report.n_held_out == 1200 and report.params["n_text_pairs"] == 400
    assert 0.8 < report.held_out["top1"] <= report.train["top1"]
    assert bridge.centring == "audio" and "audio mean" not in report.summary()
    from audiodetic.bridge import load_bridge

    loaded = load_bridge(bridge.save(tmp_path / "paired.npz"))
    assert isinstance(loaded, PairedBridge) and loaded.report == report
    np.testing.assert_array_equal(loaded.apply(data.embeddings[:5]), bridge.apply(data.embeddings[:5]))
    clips_only = PairedBridge.from_clips(data.embeddings, data.labels, data.class_dst, cv="classes", alpha=1.0)
    with_text = PairedBridge.from_clips(data.embeddings, data.labels, data.class_dst, cv="classes", alpha=1.0,
                                        text_src=bank.src, text_dst=bank.dst, text_weight=1.0)
    assert clips_only.report.params["cv"] == "classes" and clips_only.report.params["alpha"] == 1.0
    # on classes it never saw, a bridge fitted on clips alone has little to go on; the text pairs carry it
    assert with_text.report.held_out["top1"] > clips_only.report.held_out["top1"] + 0.05, (
        with_text.report.held_out, clips_only.report.held_out)
