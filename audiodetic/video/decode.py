"""Streamed decoding of a video file with PyAV: sampled frames as upright RGB, the audio as float32 blocks.

Nothing is decoded into memory whole. :meth:`VideoReader.frames` demuxes the file once, decodes every video packet
(a decoder needs them all) but converts to RGB only the frames the :class:`~audiodetic.video.sampling.FrameSampler`
takes; ``start_s`` seeks to the keyframe before it, and decoding stops at ``end_s`` (a long file is never read to
its end). :meth:`VideoReader.audio_blocks` reads the audio stream through a second demuxer on the same file, so
frames and their soundtrack are read in step without holding either.

Time: seconds from the container's start time (``0`` = the first frame of a file that starts at zero). Frames come
out upright, as players show them: the display-matrix rotation a frame carries (``VideoFrame.rotation``, degrees
counter-clockwise) is applied with ``np.rot90``. Errors are :class:`~audiodetic.errors.VideoDecodeError` (a missing
stream, an unreadable file, damage part-way: the message and ``time_s`` say where decoding stopped).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from audiodetic.errors import MissingFileError, VideoDecodeError
from audiodetic.video.sampling import FALLBACK_FPS, TIME_TOLERANCE_S, FrameSampler, check_span

TRUNCATION_TOLERANCE_S = 0.5
"""A file whose packets end more than this (or two frame periods) before the duration it claims is truncated."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. ``width``/``height`` are of the upright frames, after ``rotation``: degrees
    counter-clockwise a player turns the stored frames by (0, 90, 180 or 270; the display matrix's angle rounded
    to a quarter turn)."""

    path: str
    width: int
    height: int
    rotation: int
    fps: float | None
    duration_s: float | None
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    video_codec: str
    audio_codec: str | None


@dataclass(frozen=True)
class SampledFrame:
    """A sampled frame: ``index`` in the video stream (0 = first frame; after a seek it is
    ``round(time_s * fps)``, exact for constant-rate video), ``time_s``, ``rgb`` ``(H, W, 3)`` uint8 upright."""

    index: int
    time_s: float
    rgb: np.ndarray


@dataclass(frozen=True)
class AudioBlock:
    """Decoded audio: ``samples`` float32 ``(channels, n)`` starting at sample ``first_sample`` (at ``rate`` Hz,
    counted from time 0)."""

    first_sample: int
    samples: np.ndarray
    rate: int


def _rate(value: Any) -> float | None:
    """A PyAV rational (``Fraction`` or ``AVRational``) as a float; ``None`` when unset or zero."""
    if value is None:
        return None
    try:
        number = float(value.numerator) / float(value.denominator)
    except (AttributeError, ZeroDivisionError, TypeError):
        return None
    return number if number > 0 and math.isfinite(number) else None


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """``rgb`` turned by ``rotation`` degrees counter-clockwise (a multiple of 90), as a player shows it."""
    turns = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _open(path: Path) -> Any:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, EOFError, OSError, IndexError, ValueError) as error:
        raise VideoDecodeError(
            f"cannot open {path} as a video ({error}); it is empty, cut off before its header, or not a media file "
            f"FFmpeg can read") from None


class VideoReader:
    """A video file opened for streamed reading (see the module doc). Use as a context manager.

    Attributes:
        info: :class:`VideoInfo`.
        decoded_frames: video frames decoded so far by :meth:`frames`; ``converted_frames``: of those, the ones
            converted to RGB (exactly the sampled ones).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise MissingFileError(f"video file not found: {self.path}")
        if self.path.is_dir():
            raise VideoDecodeError(f"{self.path} is a folder; give a video file (or a folder of frames with an "
                                   f"audio file, see FrameFolderReader)")
        self.decoded_frames = 0
        self.converted_frames = 0
        self.info = self._probe()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _probe(self) -> VideoInfo:
        import av

        container = _open(self.path)
        try:
            if not container.streams.video:
                kinds = sorted({stream.type for stream in container.streams}) or ["none"]
                raise VideoDecodeError(f"{self.path} has no video stream (streams: {', '.join(kinds)}); give a video "
                                       f"file, or a folder of frames plus an audio file")
            video = container.streams.video[0]
            try:
                first = next(container.decode(video), None)
            except (av.error.FFmpegError, EOFError) as error:
                raise VideoDecodeError(f"{self.path}: the first video frame cannot be decoded ({error})",
                                       time_s=0.0) from None
            if first is None:
                raise VideoDecodeError(f"{self.path}: the video stream holds no frames (a zero-length video)",
                                       time_s=0.0)
            rotation = (int(round((getattr(first, "rotation", 0) or 0) / 90.0)) * 90) % 360
            width, height = first.width, first.height
            if (round(rotation / 90.0) % 2) == 1:
                width, height = height, width
            audio = container.streams.audio[0] if container.streams.audio else None
            return VideoInfo(
                path=str(self.path), width=int(width), height=int(height), rotation=rotation,
                fps=_rate(video.average_rate) or _rate(video.guessed_rate), duration_s=self._claimed_duration(container),
                has_audio=audio is not None,
                audio_sample_rate=int(audio.rate) if audio is not None and audio.rate else None,
                audio_channels=int(audio.channels) if audio is not None else None,
                video_codec=str(video.codec_context.name),
                audio_codec=str(audio.codec_context.name) if audio is not None else None,
            )
        finally:
            container.close()

    @staticmethod
    def _origin(container: Any) -> float:
        start = container.start_time
        return float(start) / 1_000_000 if start is not None else 0.0

    def _claimed_duration(self, container: Any) -> float | None:
        video = container.streams.video[0]
        if video.duration is not None and video.time_base is not None:
            return float(video.duration * video.time_base)
        if container.duration is not None:
            return float(container.duration) / 1_000_000
        return None

    # -- frames ------------------------------------------------------------------------------------------------
    def frames(self, *, fps: float | None = 2.0, start_s: float = 0.0,
               end_s: float | None = None) -> Iterator[SampledFrame]:
        """Sampled frames of ``[start_s, end_s)`` in presentation order (see :mod:`audiodetic.video.sampling`).

        Raises :class:`VideoDecodeError` after the last good frame when the file is damaged or ends before the
        duration it claims (``time_s`` = the time reached).
        """
        import av

        start_s, end_s = check_span(start_s, end_s)
        sampler = FrameSampler(fps, start_s)
        container = _open(self.path)
        reached = 0.0
        try:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            origin = self._origin(container)
            period = 1.0 / (self.info.fps or FALLBACK_FPS)
            seeked = start_s > 0
            if seeked:
                container.seek(int(math.floor((start_s + origin) / float(video.time_base))), stream=video,
                               backward=True)
            counter, previous = 0, None
            file_end = 0.0
            try:
                for packet in container.demux():
                    if packet.pts is not None and packet.stream.time_base is not None:
                        end = float((packet.pts + (packet.duration or 0)) * packet.stream.time_base) - origin
                        file_end = max(file_end, end)
                    if packet.stream.index != video.index:
                        continue
                    for frame in packet.decode():
                        t = (float(frame.time) - origin if frame.time is not None
                             else (previous + period if previous is not None else start_s))
                        if end_s is not None and t >= end_s - TIME_TOLERANCE_S:
                            return
                        previous = t
                        index = int(round(t * self.info.fps)) if seeked and self.info.fps else counter
                        counter += 1
                        self.decoded_frames += 1
                        reached = max(reached, t + period)
                        if not sampler.take(t):
                            continue
                        rgb = upright(frame.to_ndarray(format="rgb24"), int(getattr(frame, "rotation", 0) or 0))
                        self.converted_frames += 1
                        yield SampledFrame(index, t, rgb)
            except (av.error.FFmpegError, EOFError) as error:
                raise VideoDecodeError(
                    f"{self.path}: decoding failed after {reached:.2f} s ({error}); the file is damaged or truncated "
                    f"there - results up to {reached:.2f} s were produced", time_s=reached) from None
            claimed = self.info.duration_s
            if claimed is not None and (end_s is None or end_s > file_end):
                wanted = claimed if end_s is None else min(claimed, end_s)
                if file_end < wanted - max(TRUNCATION_TOLERANCE_S, 2 * period):
                    raise VideoDecodeError(
                        f"{self.path}: the file ends at {file_end:.2f} s but claims {claimed:.2f} s; it is truncated "
                        f"or damaged after {reached:.2f} s - results up to {reached:.2f} s were produced",
                        time_s=reached)
        finally:
            container.close()

    # -- audio -------------------------------------------------------------------------------------------------
    def audio_blocks(self, start_s: float = 0.0) -> Iterator[AudioBlock]:
        """The audio stream from about ``start_s`` on (from the packet before it), as float32 blocks."""
        import av

        if not self.info.has_audio:
            raise VideoDecodeError(f"{self.path} has no audio stream")
        container = _open(self.path)
        try:
            audio = container.streams.audio[0]
            origin = self._origin(container)
            if start_s > 0:
                container.seek(int(math.floor((start_s + origin) / float(audio.time_base))), stream=audio,
                               backward=True)
            resampler = av.AudioResampler(format="fltp")
            reached = start_s
            try:
                for frame in container.decode(audio):
                    for converted in resampler.resample(frame):
                        samples = converted.to_ndarray().astype(np.float32, copy=False)
                        rate = int(converted.sample_rate)
                        t = float(converted.time) - origin if converted.time is not None else reached
                        reached = t + samples.shape[1] / rate
                        yield AudioBlock(int(round(t * rate)), samples.reshape(-1, samples.shape[-1]), rate)
            except (av.error.FFmpegError, EOFError) as error:
                raise VideoDecodeError(f"{self.path}: audio decoding failed after {reached:.2f} s ({error}); the file "
                                       f"is damaged or truncated there", time_s=reached) from None
        finally:
            container.close()
