"""Per-frame video results and their JSON Lines form.

One JSON object per sampled frame, one per line::

    {"frame_index": 12, "time_s": 0.5, "silent": false, "audio_level_dbfs": -12.3,
     "detections": [{"label", "class_id", "score", "box": [x1, y1, x2, y2], "mask": RLE, "track_id": 3 | null}],
     "heatmap": {"rows": 18, "cols": 32, "values": [[...], ...]}}

Detections have the fields of image detections (:meth:`Detections.to_json_dict`: boxes in the upright frame's
pixels, masks as COCO RLE, sorted by score) plus ``track_id``. ``silent``, ``audio_level_dbfs`` and ``heatmap``
describe the soundtrack prompt; they are ``null`` when the soundtrack is not a prompt (``heatmap`` also on silent
frames). Each line is written and flushed as its frame finishes (:class:`audiodetic.io.JsonLinesAppender`), so a
partly written file is valid up to its last line; read it back with :func:`audiodetic.io.iter_json_lines`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiodetic.structures import Detections
from audiodetic.video.heatmap import round_map


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The result of one sampled frame.

    Attributes:
        frame_index, time_s: see :class:`~audiodetic.video.decode.SampledFrame`.
        detections: sorted by score; boxes xyxy float32 in the upright frame's pixels.
        track_ids: ``(N,)`` int64 aligned with ``detections`` (``-1``: no confirmed track).
        silent: whether the soundtrack window is silent (``None`` when the soundtrack is not a prompt).
        level_dbfs: the window's RMS level (``None`` likewise).
        heatmap: ``(rows, cols)`` float32 soundtrack map (see :mod:`audiodetic.video.heatmap`) or ``None``.
        image: the frame, ``(H, W, 3)`` uint8 RGB upright (not written to JSON).
    """

    frame_index: int
    time_s: float
    detections: Detections
    track_ids: np.ndarray
    silent: bool | None
    level_dbfs: float | None
    heatmap: np.ndarray | None
    image: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the module doc."""
        items = self.detections.to_json_dict()["detections"]
        for item, track_id in zip(items, self.track_ids):
            item["track_id"] = int(track_id) if track_id > 0 else None
        level = None if self.level_dbfs is None else (round(self.level_dbfs, 2) if math.isfinite(self.level_dbfs)
                                                      else None)
        heatmap = None
        if self.heatmap is not None:
            heatmap = {"rows": int(self.heatmap.shape[0]), "cols": int(self.heatmap.shape[1]),
                       "values": round_map(self.heatmap)}
        return {"frame_index": int(self.frame_index), "time_s": round(float(self.time_s), 4), "silent": self.silent,
                "audio_level_dbfs": level, "detections": items, "heatmap": heatmap}


def sort_by_score(detections: Detections, track_ids: np.ndarray) -> tuple[Detections, np.ndarray]:
    """Detections and their track ids in descending score order (stable for ties)."""
    order = np.argsort(-detections.scores, kind="stable")
    return detections[order], np.asarray(track_ids, np.int64)[order]
