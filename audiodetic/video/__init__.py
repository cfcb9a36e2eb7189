"""Video with its own soundtrack: detection frame by frame, the soundtrack as a prompt, tracks, annotated video.

:func:`detect_video` streams :class:`~audiodetic.video.records.FrameResult` objects; see
:mod:`audiodetic.video.pipeline`. Needs the ``video`` extra (PyAV and supervision).
"""

from __future__ import annotations

from audiodetic.video.pipeline import VideoRun, detect_video
from audiodetic.video.records import FrameResult

__all__ = ["FrameResult", "VideoRun", "detect_video"]
