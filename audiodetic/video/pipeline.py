"""Detection over a video, frame by frame, as a stream: :func:`detect_video` and the :class:`VideoRun` it returns.

Per sampled frame: the frame is encoded once by the detector (backbone, proposals, class-agnostic cascade), then
scored against the vocabulary of the frame - the named prompts (encoded once per video) plus, in soundtrack mode,
the ``soundtrack`` prompt of that frame's window (encoded once per window, see :mod:`audiodetic.video.soundtrack`;
silent windows add no row). The soundtrack's heat map comes from scoring every region against that row alone.
Detections are linked into tracks (:mod:`audiodetic.video.tracking`). Memory does not grow with the video: one
frame, one window and one block of decoded audio are held at a time (and the track table).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from audiodetic.errors import InputError, VideoDecodeError
from audiodetic.inputs import check_positive_int, check_threshold
from audiodetic.structures import Detections
from audiodetic.video import model_access
from audiodetic.video.decode import VideoReader
from audiodetic.video.frame_folder import FrameFolderReader
from audiodetic.video.heatmap import DEFAULT_CELLS, grid_shape
from audiodetic.video.records import FrameResult, sort_by_score
from audiodetic.video.sampling import FALLBACK_FPS, FrameSampler, check_fps, check_span
from audiodetic.video.soundtrack import SILENCE_DBFS, WINDOW_GRID_S, WindowedAudio
from audiodetic.video.tracking import Tracker


@dataclass
class RunStats:
    """Seconds spent decoding (frames and audio), encoding soundtrack windows and detecting, and counts."""

    decode_s: float = 0.0
    audio_s: float = 0.0
    detect_s: float = 0.0
    track_s: float = 0.0
    frames: int = 0
    silent_frames: int = 0
    windows_encoded: int = 0

    def shares(self) -> dict[str, float]:
        """Each part's share of the total time (decoding, audio encoding, detection, tracking)."""
        total = self.decode_s + self.audio_s + self.detect_s + self.track_s
        parts = {"decode": self.decode_s, "audio": self.audio_s, "detect": self.detect_s, "track": self.track_s}
        return {key: (value / total if total > 0 else 0.0) for key, value in parts.items()}


def open_source(source: str | os.PathLike[str], *, audio: str | os.PathLike[str] | None = None,
                frame_rate: float | None = None) -> Any:
    """A :class:`VideoReader` for a video file, or a :class:`FrameFolderReader` for a folder of frames (which needs
    ``frame_rate`` and takes its soundtrack from ``audio``)."""
    path = Path(source)
    if path.is_dir():
        if frame_rate is None:
            raise InputError(f"{path} is a folder of frames; give its frame rate (frame_rate=..., --frame-rate FPS)")
        return FrameFolderReader(path, audio, frame_rate=frame_rate)
    if audio is not None:
        raise InputError("audio=... goes with a folder of frames; a video file brings its own soundtrack")
    return VideoReader(path)


class VideoRun:
    """An iterator of :class:`FrameResult`, one per sampled frame, computed as it is consumed.

    Attributes: ``reader`` (``.info``: size, fps, duration, audio), ``stats`` (:class:`RunStats`), ``tracker``,
    ``vocabulary`` (the named prompts, or ``None``), ``window_s`` (soundtrack window length, or ``None``),
    ``fps``, ``start_s``, ``end_s``, ``sample_fps`` (the rate results come at: ``fps``, else the source's, else
    :data:`~audiodetic.video.sampling.FALLBACK_FPS`). :meth:`tracks` gives the track table.

    Frames come in time order, so their soundtrack windows' keys never decrease: only the last window's embedding
    is kept (frames that share a window reuse it).
    """

    def __init__(self, reader: Any, model: Any, *, named: Any, soundtrack: bool, fps: float | None, start_s: float,
                 end_s: float | None, score_threshold: float, with_masks: bool, max_detections: int,
                 input_size: tuple[int, int] | None, heatmap_cells: int, silence_dbfs: float, track: bool) -> None:
        self.reader, self.model, self.vocabulary = reader, model, named
        self.fps, self.start_s, self.end_s = fps, start_s, end_s
        self.options = dict(score_threshold=score_threshold, with_masks=with_masks, max_detections=max_detections)
        self.input_size, self.heatmap_cells, self.silence_dbfs = input_size, heatmap_cells, silence_dbfs
        self.stats = RunStats()
        self.sample_fps = fps or reader.info.fps or FALLBACK_FPS
        self.tracker = Tracker(sample_fps=self.sample_fps, score_threshold=score_threshold) if track else None
        self.encoder = model_access.SoundtrackEncoder(model) if soundtrack else None
        self.window_s = self.encoder.clip_seconds if self.encoder is not None else None
        self._last_window: tuple[int, np.ndarray] | None = None  # (window key, its embedding)
        self._iterator = self._run()

    def __iter__(self) -> VideoRun:
        return self

    def __next__(self) -> FrameResult:
        return next(self._iterator)

    @property
    def expected_frames(self) -> int | None:
        """How many frames the run should give (from the claimed duration; ``None`` when unknown)."""
        end = self.end_s if self.end_s is not None else self.reader.info.duration_s
        if end is not None and self.reader.info.duration_s is not None:
            end = min(end, self.reader.info.duration_s)
        return FrameSampler(self.fps, self.start_s).expected_count(end, self.reader.info.fps)

    def tracks(self) -> list[dict[str, Any]]:
        """The track table so far (see :meth:`Tracker.summary`); empty without tracking."""
        return self.tracker.summary() if self.tracker is not None else []

    def _soundtrack_row(self, windows: WindowedAudio, time_s: float) -> tuple[np.ndarray | None, float, bool]:
        """The frame's soundtrack embedding (``None`` when silent), its level and silence flag."""
        started = time.perf_counter()
        window = windows.window(time_s)
        self.stats.decode_s += time.perf_counter() - started
        if window.silent:
            return None, window.level_dbfs, True
        if self._last_window is not None and self._last_window[0] == window.key:
            return self._last_window[1], window.level_dbfs, False
        started = time.perf_counter()
        assert self.encoder is not None
        row = self.encoder.embed([(window.samples, window.rate)])[0]
        self.stats.audio_s += time.perf_counter() - started
        self.stats.windows_encoded += 1
        self._last_window = (window.key, row)
        return row, window.level_dbfs, False

    def _run(self) -> Iterator[FrameResult]:
        frames = self.reader.frames(fps=self.fps, start_s=self.start_s, end_s=self.end_s)
        windows = None
        if self.encoder is not None:
            margin = (self.window_s or 0.0) / 2 + WINDOW_GRID_S
            windows = WindowedAudio(self.reader.audio_blocks(max(0.0, self.start_s - margin)), self.window_s,
                                    threshold_dbfs=self.silence_dbfs)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            self.stats.decode_s += time.perf_counter() - started
            if frame is None:
                return
            embedding = level = silent = None
            if windows is not None:
                embedding, level, silent = self._soundtrack_row(windows, frame.time_s)
                self.stats.silent_frames += int(silent)
            yield self._detect(frame, embedding, level, silent)

    def _detect(self, frame: Any, embedding: np.ndarray | None, level: float | None,
                silent: bool | None) -> FrameResult:
        height, width = frame.rgb.shape[:2]
        started = time.perf_counter()
        vocabulary = model_access.with_soundtrack(self.vocabulary, embedding)
        heatmap = None
        if vocabulary is None:  # soundtrack only, and silent: nothing to look for
            detections = Detections.empty((model_access.SOUNDTRACK,), (height, width),
                                          with_masks=self.options["with_masks"])
        else:
            encoded = model_access.encode_frame(self.model, frame.rgb, input_size=self.input_size)
            detections = model_access.predict(encoded, vocabulary, **self.options)
            if embedding is not None:
                heatmap = model_access.soundtrack_map(encoded, embedding, (height, width),
                                                      grid_shape((height, width), self.heatmap_cells))
        self.stats.detect_s += time.perf_counter() - started
        started = time.perf_counter()
        track_ids = np.full(len(detections), -1, np.int64)
        if self.tracker is not None:
            track_ids = self.tracker.update(detections.boxes, detections.scores, detections.labels,
                                            time_s=frame.time_s, frame_index=frame.index)
        self.stats.track_s += time.perf_counter() - started
        self.stats.frames += 1
        detections, track_ids = sort_by_score(detections, track_ids)
        return FrameResult(frame.index, frame.time_s, detections, track_ids, silent, level, heatmap, frame.rgb)


def detect_video(source: str | os.PathLike[str], prompts: Any = None, *, soundtrack: bool = False,
                 fps: float | None = 2.0, start_s: float = 0.0, end_s: float | None = None, text_prompts: Any = None,
                 vocabulary: Any = None, model: Any = None, score_threshold: float = 0.5, with_masks: bool = True,
                 max_detections: int = 100, input_size: tuple[int, int] | None = None, audio: Any = None,
                 frame_rate: float | None = None, heatmap_cells: int = DEFAULT_CELLS,
                 silence_dbfs: float = SILENCE_DBFS, track: bool = True, device: str = "cpu") -> VideoRun:
    """Find what is making the sound in a video, frame by frame; returns an iterator of :class:`FrameResult`.

    Args:
        source: a video file (anything FFmpeg decodes) or a folder of frames (then ``frame_rate`` and ``audio``).
        prompts: sound prompts as for :func:`audiodetic.detect` (``{name: file}``...); ``text_prompts`` and
            ``vocabulary`` add text prompts and ready embeddings.
        soundtrack: also use the video's own audio around each frame as a prompt named ``soundtrack``.
        fps: frames sampled per second (``None``: every frame); ``start_s``/``end_s``: the span, in seconds.
        model: an ``AudiodeticModel``, a model name or checkpoint path, or ``None`` for the default model (loaded
            on ``device`` once per process with the API's default bridge, as :func:`audiodetic.detect` does).
        score_threshold, with_masks, max_detections, input_size: as for image detection.
        heatmap_cells: cells along the longer side of the soundtrack heat map; ``silence_dbfs``: silence threshold.
        track: link detections into tracks.

    Raises :class:`~audiodetic.errors.VideoDecodeError` for unreadable input (at once) or damage part-way (after
    the frames before it), :class:`~audiodetic.errors.InputError` for bad arguments.
    """
    fps = check_fps(fps)
    start_s, end_s = check_span(start_s, end_s)
    threshold = check_threshold(score_threshold)
    max_detections = check_positive_int(max_detections, argument="max_detections")
    if not (prompts is not None or text_prompts is not None or vocabulary is not None or soundtrack):
        raise InputError("no prompts: give sound prompts, text_prompts, vocabulary and/or soundtrack=True")
    reader = open_source(source, audio=audio, frame_rate=frame_rate)
    duration = reader.info.duration_s
    if duration is not None and start_s >= duration:
        raise InputError(f"start {start_s:g} s is past the end of {source} ({duration:.2f} s long)")
    if soundtrack and not reader.info.has_audio:
        raise VideoDecodeError(f"{source} has no audio stream, so the soundtrack cannot be a prompt; use named "
                               f"prompts (sounds, texts) instead, which need no audio")
    model = model_access.resolve_model(model, device=device)
    named = model_access.named_vocabulary(model, prompts, text_prompts, vocabulary)
    return VideoRun(reader, model, named=named, soundtrack=soundtrack, fps=fps, start_s=start_s, end_s=end_s,
                    score_threshold=threshold, with_masks=with_masks, max_detections=max_detections,
                    input_size=input_size, heatmap_cells=heatmap_cells, silence_dbfs=silence_dbfs, track=track)
