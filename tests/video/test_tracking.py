"""Tracks from synthetic detections fed straight to the tracker (random-weight models give arbitrary boxes)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("supervision")
from audiodetic.video.tracking import Tracker


def _square(k: int) -> list[float]:
    x = 10.0 + 4.0 * k  # moves 4 px per sampled frame, 30 px wide
    return [x, 20.0, x + 30.0, 50.0]


def test_a_smoothly_moving_shape_keeps_one_track():
    tracker = Tracker(sample_fps=2.0, score_threshold=0.5)
    ids = [tracker.update([_square(k)], [0.9], ["square"], time_s=k / 2, frame_index=5 * k)[0] for k in range(30)]
    assert set(ids) == {1}
    (track,) = tracker.summary()
    assert track["label"] == "square" and track["detections"] == 30
    assert track["start_s"] == 0.0 and track["end_s"] == 14.5
    assert track["first_frame_index"] == 0 and track["last_frame_index"] == 145


def test_two_shapes_get_two_stable_ids_and_labels_never_mix():
    tracker = Tracker(sample_fps=2.0)
    seen = []
    for k in range(20):
        disc = [200.0 - 3 * k, 100.0, 240.0 - 3 * k, 140.0]
        ids = tracker.update([_square(k), disc], [0.9, 0.8], ["square", "disc"], time_s=k / 2, frame_index=k)
        seen.append(tuple(ids))
    assert len(set(seen)) == 1 and len(set(seen[0])) == 2
    labels = {t["track_id"]: t["label"] for t in tracker.summary()}
    assert labels == {seen[0][0]: "square", seen[0][1]: "disc"}
    # one box seen as two labels in the same place: still two tracks, one per label
    tracker2 = Tracker(sample_fps=2.0)
    for k in range(5):
        ids = tracker2.update([_square(k), _square(k)], [0.9, 0.9], ["a", "b"], time_s=k, frame_index=k)
    assert ids[0] != ids[1]


def test_short_gaps_keep_the_id_and_long_gaps_start_a_new_track():
    tracker = Tracker(sample_fps=2.0, lost_track_s=1.5)  # kept for 3 sampled frames
    first = [tracker.update([_square(k)], [0.9], ["s"], time_s=k / 2, frame_index=k)[0] for k in range(5)]
    for k in range(5, 7):  # two frames without it
        assert len(tracker.update(np.zeros((0, 4)), [], [], time_s=k / 2, frame_index=k)) == 0
    back = tracker.update([_square(7)], [0.9], ["s"], time_s=3.5, frame_index=7)[0]
    assert set(first) == {1} and back == 1
    for k in range(8, 20):
        tracker.update(np.zeros((0, 4)), [], [], time_s=k / 2, frame_index=k)
    later = [tracker.update([_square(k)], [0.9], ["s"], time_s=k / 2, frame_index=k)[0] for k in (20, 21)]
    assert later[0] == -1 and later[1] == 2  # a new track is confirmed on its second frame
