"""Tracks: detections linked across sampled frames with ByteTrack (``supervision.ByteTrack``), one tracker per label.

A track never changes label: every prompt name gets its own ByteTrack, updated on every sampled frame (with no
detections when the label is absent, so lost tracks age), and track ids are numbered 1, 2, ... across labels in
order of first confirmation. ByteTrack confirms a track started after the first frame on its second matched frame,
so that first detection carries no track id (``-1`` here, ``null`` in JSON).

``supervision`` 0.20-0.30 ship ``ByteTrack(track_activation_threshold, lost_track_buffer,
minimum_matching_threshold, frame_rate)`` with ``update_with_detections``; 0.31 removed it (its successor is the
separate ``trackers`` package). The ``video`` extra pins ``supervision<0.31``. ``lost_track_buffer`` counts frames
of a 30-fps video; this module passes ``frame_rate=30`` and the number of *sampled* frames a lost track is kept.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from audiodetic.errors import InputError


def _byte_track_class() -> Any:
    try:
        import supervision as sv
    except ImportError:
        raise ImportError("tracking needs supervision (0.20-0.30): pip install 'audiodetic[video]'") from None
    tracker = getattr(sv, "ByteTrack", None)
    if tracker is None:
        raise ImportError(
            f"supervision {getattr(sv, '__version__', '?')} has no ByteTrack (removed in 0.31); install the video "
            f"extra, which pins a version that has it: pip install 'audiodetic[video]' (supervision>=0.20,<0.31)")
    return tracker


@dataclass
class Track:
    """One track: ``label``, its sampled frames' first/last time and index, the count and scores of its detections."""

    track_id: int
    label: str
    start_s: float
    end_s: float
    first_frame_index: int
    last_frame_index: int
    detections: int = 0
    max_score: float = 0.0
    score_sum: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "label": self.label, "start_s": round(self.start_s, 4),
                "end_s": round(self.end_s, 4), "first_frame_index": self.first_frame_index,
                "last_frame_index": self.last_frame_index, "detections": self.detections,
                "max_score": round(self.max_score, 4),
                "mean_score": round(self.score_sum / self.detections, 4) if self.detections else None}


class Tracker:
    """Assigns track ids to the detections of successive sampled frames.

    Args:
        sample_fps: sampled frames per second (sets how long a lost track is kept); ``lost_track_s``: that time.
        score_threshold: the detection threshold used upstream; ByteTrack starts tracks above it.
        matching_iou: minimum IoU to continue a track (ByteTrack's ``minimum_matching_threshold`` is
            ``1 - matching_iou``).
    """

    def __init__(self, *, sample_fps: float, lost_track_s: float = 1.0, score_threshold: float = 0.5,
                 matching_iou: float = 0.2) -> None:
        if not (sample_fps > 0 and math.isfinite(sample_fps)) or lost_track_s < 0:
            raise InputError(f"Tracker needs sample_fps > 0 and lost_track_s >= 0, got {sample_fps}, {lost_track_s}")
        if not 0.0 < matching_iou < 1.0:
            raise InputError(f"matching_iou must lie in (0, 1), got {matching_iou}")
        self._cls = _byte_track_class()
        self.buffer = max(1, int(round(lost_track_s * sample_fps)))
        self.activation = max(0.0, float(score_threshold) - 0.1)
        self.matching = 1.0 - float(matching_iou)
        self._trackers: dict[str, Any] = {}
        self._ids: dict[tuple[str, int], int] = {}
        self.tracks: dict[int, Track] = {}

    def _tracker(self, label: str) -> Any:
        if label not in self._trackers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # 0.28-0.30 announce the move to `trackers`
                self._trackers[label] = self._cls(track_activation_threshold=self.activation,
                                                  lost_track_buffer=self.buffer,
                                                  minimum_matching_threshold=self.matching, frame_rate=30)
        return self._trackers[label]

    def update(self, boxes: Any, scores: Any, labels: Sequence[str], *, time_s: float,
               frame_index: int) -> np.ndarray:
        """Track ids ``(N,)`` int64 for one frame's detections (``-1``: not part of a confirmed track).

        ``boxes`` ``(N, 4)`` xyxy pixels, ``scores`` ``(N,)``, ``labels`` ``N`` names; frames in time order.
        """
        import supervision as sv

        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        labels = list(labels)
        if not (boxes.shape[0] == scores.shape[0] == len(labels)):
            raise InputError(f"Tracker.update: {boxes.shape[0]} boxes, {scores.shape[0]} scores, {len(labels)} labels")
        ids = np.full(len(labels), -1, np.int64)
        for label in dict.fromkeys([*self._trackers, *labels]):
            picked = np.array([i for i, name in enumerate(labels) if name == label], np.int64)
            detections = sv.Detections(xyxy=boxes[picked].reshape(-1, 4), confidence=scores[picked],
                                       class_id=np.zeros(len(picked), int), data={"row": picked})
            tracked = self._tracker(label).update_with_detections(detections)
            rows = tracked.data.get("row", np.zeros(0, np.int64)) if len(tracked) else np.zeros(0, np.int64)
            for row, local in zip(rows, tracked.tracker_id if len(tracked) else []):
                key = (label, int(local))
                if key not in self._ids:
                    self._ids[key] = len(self._ids) + 1
                ids[int(row)] = self._ids[key]
        for row, track_id in enumerate(ids):
            if track_id > 0:
                self._record(int(track_id), labels[row], float(scores[row]), time_s, frame_index)
        return ids

    def _record(self, track_id: int, label: str, score: float, time_s: float, frame_index: int) -> None:
        track = self.tracks.get(track_id)
        if track is None:
            track = self.tracks[track_id] = Track(track_id, label, time_s, time_s, frame_index, frame_index)
        track.end_s, track.last_frame_index = time_s, frame_index
        track.detections += 1
        track.max_score = max(track.max_score, score)
        track.score_sum += score

    def summary(self) -> list[dict[str, Any]]:
        """Every track as JSON data, by id."""
        return [self.tracks[key].to_json() for key in sorted(self.tracks)]
