"""The soundtrack as a prompt: a window of the video's own audio around each sampled frame, and its loudness.

**Windows.** Frame times are rounded to a grid of :data:`WINDOW_GRID_S` seconds; the window of a frame is
``length_s`` seconds centred on its grid point (frames that round to the same point share one window, whose audio is
encoded once). ``length_s`` is the audio encoder's clip length (ImageBind: 2 s); the parts of a window before the
start or after the end of the audio are zeros. The encoder gets the window as it is and applies its own input
contract (ImageBind: resample to 16 kHz, three 2-s clips spread over what it is given - for a 2-s window all three
are that window).

**Silence.** A window is silent when the RMS level of its real samples (all channels together, padding excluded)
is below :data:`SILENCE_DBFS`: ``20 * log10(rms) < -60`` with samples in full-scale units (a full-scale square wave
is 0 dBFS, a full-scale sine -3.01 dBFS). Digital silence and a window wholly outside the audio are ``-inf`` dBFS.
A silent window produces no soundtrack detections; the frame is marked silent instead of pointing somewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from audiodetic.errors import InputError, VideoDecodeError
from audiodetic.video.decode import AudioBlock

SILENCE_DBFS = -60.0
"""Windows whose RMS level is below this many dB relative to full scale are silent."""
WINDOW_GRID_S = 0.25
"""Window centres are frame times rounded to multiples of this many seconds."""


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` (any shape, full-scale units) in dBFS: ``20 * log10(sqrt(mean(x ** 2)))``;
    ``-inf`` for an empty or all-zero array."""
    values = np.asarray(samples, np.float64)
    if values.size == 0:
        return -math.inf
    mean_square = float(np.mean(values * values))
    return 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def is_silent(level: float, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """Whether a window of this level counts as silent (strictly below ``threshold_dbfs``)."""
    return level < threshold_dbfs


def window_key(time_s: float, grid_s: float = WINDOW_GRID_S) -> int:
    """The grid point a frame at ``time_s`` uses: ``round(time_s / grid_s)`` (its window is centred at
    ``key * grid_s``)."""
    return int(math.floor(time_s / grid_s + 0.5))


def window_span(centre_s: float, length_s: float, rate: int) -> tuple[int, int]:
    """Sample range ``[first, stop)`` (may start below 0) of a ``length_s`` window centred at ``centre_s``."""
    count = int(round(length_s * rate))
    first = int(round(centre_s * rate)) - count // 2
    return first, first + count


@dataclass(frozen=True)
class Window:
    """One soundtrack window: ``samples`` float32 ``(channels, n)`` at ``rate`` Hz (zero-padded where outside the
    audio), ``real`` samples per channel that came from the audio, their ``level_dbfs`` and ``silent``."""

    key: int
    centre_s: float
    samples: np.ndarray
    rate: int
    real: int
    level_dbfs: float
    silent: bool


class WindowedAudio:
    """Windows of a soundtrack read once from a stream of :class:`AudioBlock`; ask for windows in non-decreasing
    order of centre. Memory: one window plus one decoded block, whatever the length of the audio.

    Args:
        blocks: the audio, in order (from :meth:`VideoReader.audio_blocks` or a frame folder's audio file).
        length_s: window length in seconds; ``grid_s``: see :func:`window_key`; ``threshold_dbfs``: silence.
    """

    def __init__(self, blocks: Iterator[AudioBlock], length_s: float, *, grid_s: float = WINDOW_GRID_S,
                 threshold_dbfs: float = SILENCE_DBFS) -> None:
        if not length_s > 0 or not grid_s > 0:
            raise InputError(f"window length and grid must be positive, got {length_s} and {grid_s}")
        self.length_s, self.grid_s, self.threshold_dbfs = float(length_s), float(grid_s), float(threshold_dbfs)
        self._blocks = blocks
        self._exhausted = False
        self.rate: int | None = None
        self._channels: int | None = None
        self._start = 0  # sample index of self._data[:, 0]
        self._data = np.zeros((0, 0), np.float32)

    def _pull(self) -> bool:
        """Append the next block to the buffer; False when the audio is exhausted."""
        if self._exhausted:
            return False
        block = next(self._blocks, None)
        if block is None:
            self._exhausted = True
            return False
        samples = np.asarray(block.samples, np.float32)
        if self.rate is None:
            self.rate, self._channels = int(block.rate), int(samples.shape[0])
            self._start, self._data = int(block.first_sample), np.zeros((self._channels, 0), np.float32)
        if block.rate != self.rate or samples.shape[0] != self._channels:
            raise VideoDecodeError(f"the audio changes format mid-stream ({self.rate} Hz x {self._channels} ch -> "
                                   f"{block.rate} Hz x {samples.shape[0]} ch); convert it to one format first")
        end = self._start + self._data.shape[1]
        first = int(block.first_sample)
        if first > end:  # a gap in the timestamps: silence
            samples = np.concatenate([np.zeros((self._channels, first - end), np.float32), samples], axis=1)
        elif first < end:  # an overlap: keep what is already there
            samples = samples[:, end - first:]
        self._data = np.concatenate([self._data, samples], axis=1)
        return True

    def window(self, time_s: float) -> Window:
        """The window of a frame at ``time_s`` (see the module doc)."""
        key = window_key(time_s, self.grid_s)
        centre = key * self.grid_s
        if self.rate is None and not self._pull():
            raise VideoDecodeError("the audio stream holds no samples")
        assert self.rate is not None and self._channels is not None
        first, stop = window_span(centre, self.length_s, self.rate)
        while self._start + self._data.shape[1] < stop and self._pull():
            pass
        if first > self._start:  # later windows start no earlier: drop what is before this one
            drop = min(first - self._start, self._data.shape[1])
            self._data = self._data[:, drop:]
            self._start += drop
        out = np.zeros((self._channels, stop - first), np.float32)
        lo, hi = max(first, self._start), min(stop, self._start + self._data.shape[1])
        if hi > lo:
            out[:, lo - first:hi - first] = self._data[:, lo - self._start:hi - self._start]
        real = max(0, hi - lo)
        level = level_dbfs(out[:, lo - first:hi - first]) if real else -math.inf
        return Window(key, centre, out, self.rate, real, level, is_silent(level, self.threshold_dbfs))
