"""Which decoded frames are sampled: the first frame at or after each sampling instant.

Sampling instants are ``start_s + k / fps`` for ``k = 0, 1, 2, ...``. A frame at time ``t`` (seconds from the
start of the video) is taken when it is the first frame at or after the next instant not yet served; instants a
frame jumps over (a variable-frame-rate gap, or ``fps`` above the source rate) are skipped, never served twice.
So a constant-rate source of duration ``D`` sampled from ``0`` gives ``ceil(D * fps)`` frames when ``fps`` divides
the source rate, and every frame once when ``fps`` is ``None``.
"""

from __future__ import annotations

import math

from audiodetic.errors import InputError

TIME_TOLERANCE_S = 1e-4
"""Timestamps this close before an instant count as at it (container time bases round frame times)."""
FALLBACK_FPS = 25.0
"""The frame rate assumed where a source states none (a frame period of 0.04 s)."""


def check_fps(fps: float | None, *, argument: str = "fps") -> float | None:
    """``fps`` as a positive finite float, or ``None`` (every frame)."""
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{argument} must be a positive number of frames per second or None, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{argument} must be a positive number of frames per second or None, got {fps!r}")
    return value


def check_span(start_s: float, end_s: float | None) -> tuple[float, float | None]:
    """``(start_s, end_s)`` checked: ``0 <= start_s < end_s`` (``end_s`` may be ``None``: to the end)."""
    try:
        start = float(start_s)
        end = None if end_s is None else float(end_s)
    except (TypeError, ValueError):
        raise InputError(f"start/end must be numbers of seconds, got start={start_s!r}, end={end_s!r}") from None
    if not math.isfinite(start) or start < 0:
        raise InputError(f"start must be a non-negative number of seconds, got {start_s!r}")
    if end is not None and (not math.isfinite(end) or end <= start):
        raise InputError(f"end must be a number of seconds after start ({start:g} s), got {end_s!r}")
    return start, end


class FrameSampler:
    """Decides frame by frame (in presentation order) whether to sample it.

    Args:
        fps: sampling rate in frames per second, or ``None`` to take every frame.
        start_s: time of the first sampling instant (seconds from the start of the video).
    """

    def __init__(self, fps: float | None, start_s: float = 0.0) -> None:
        self.fps = check_fps(fps)
        self.start_s = float(start_s)
        self._next = 0  # index k of the next instant start_s + k / fps not yet served

    def take(self, time_s: float) -> bool:
        """Whether the frame presented at ``time_s`` is sampled (call once per frame, times non-decreasing)."""
        if time_s < self.start_s - TIME_TOLERANCE_S:
            return False
        if self.fps is None:
            return True
        if time_s + TIME_TOLERANCE_S < self.start_s + self._next / self.fps:
            return False
        self._next = math.floor((time_s - self.start_s + TIME_TOLERANCE_S) * self.fps) + 1
        return True

    def expected_count(self, end_s: float | None, source_fps: float | None) -> int | None:
        """How many frames sampling ``[start_s, end_s)`` should give (``None`` when it cannot be told)."""
        if end_s is None:
            return None
        rate = self.fps if self.fps is not None else source_fps
        if not rate:
            return None
        if source_fps and self.fps is not None:
            rate = min(rate, source_fps)
        return max(0, math.ceil((end_s - self.start_s) * rate - TIME_TOLERANCE_S))
