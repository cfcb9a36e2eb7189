"""Test videos made from code: moving coloured shapes and a soundtrack that changes at known times.

:func:`write_test_video` writes a small video file with PyAV (any container FFmpeg muxes: ``.mp4``, ``.mkv``,
``.webm``, ``.mov``, ``.avi``) and returns a :class:`TestVideo` that knows the truth: where each shape is at any
time (:meth:`TestVideo.boxes_at`), which sound plays when (:attr:`TestVideo.segments`), how many frames were
written and at which times. :func:`write_frame_folder` writes the same content as a folder of PNG frames plus one
WAV file (the layout of the sound-source-localisation benchmarks).

Frames: a vertical grey gradient with a red square moving left to right at constant speed and a blue disc moving
along a slow sine; both stay inside the frame. Soundtrack: a list of :class:`Segment` (tone, noise, speech-like
babble, silence) at the given sample rate; ``"silence"`` is exact digital zero.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from audiodetic.errors import InputError


@dataclass(frozen=True)
class Segment:
    """One stretch of the soundtrack: ``kind`` in ``tone``, ``noise``, ``speech``, ``silence`` over
    ``[start_s, stop_s)``; ``amplitude`` is the peak level in full-scale units (1.0 = 0 dBFS peak)."""

    start_s: float
    stop_s: float
    kind: str
    frequency: float = 440.0
    amplitude: float = 0.5


DEFAULT_SOUNDTRACK: tuple[Segment, ...] = (
    Segment(0.0, 1.5, "tone", 440.0),
    Segment(1.5, 2.5, "noise"),
    Segment(2.5, 3.0, "speech"),
    Segment(3.0, 6.0, "silence"),
)
"""Tone, noise, speech-like babble, then three seconds of digital silence (6 s in all)."""

# container suffix -> (video codec, audio codec)
CODECS: dict[str, tuple[str, str]] = {
    ".mp4": ("libx264", "aac"), ".mov": ("libx264", "aac"), ".mkv": ("libx264", "aac"),
    ".webm": ("libvpx-vp9", "libopus"), ".avi": ("mpeg4", "libmp3lame"),
}

SQUARE_COLOR = (220, 30, 30)
DISC_COLOR = (30, 60, 220)


@dataclass(frozen=True)
class TestVideo:
    """What :func:`write_test_video` wrote. Times are seconds from the start; sizes are ``(width, height)`` of the
    frames as stored (before any rotation metadata is applied)."""

    path: Path
    size: tuple[int, int]
    frame_times: tuple[float, ...]
    segments: tuple[Segment, ...]
    sample_rate: int
    has_audio: bool
    has_video: bool
    rotation: int = 0
    audio_duration_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def duration_s(self) -> float:
        """Span of the video: from 0 to the end of the last frame (one average frame period after it)."""
        if not self.frame_times:
            return self.audio_duration_s
        if len(self.frame_times) == 1:
            return self.frame_times[0] + 0.1
        period = (self.frame_times[-1] - self.frame_times[0]) / (len(self.frame_times) - 1)
        return self.frame_times[-1] + period

    def boxes_at(self, t: float) -> dict[str, tuple[float, float, float, float]]:
        """Truth boxes ``x1, y1, x2, y2`` (stored-frame pixels) of ``"square"`` and ``"disc"`` at time ``t``."""
        return shape_boxes(t, self.size, max(self.duration_s, 1e-6))

    def kind_at(self, t: float) -> str:
        """The soundtrack kind playing at time ``t`` (``"silence"`` outside every segment)."""
        for segment in self.segments:
            if segment.start_s <= t < segment.stop_s:
                return segment.kind
        return "silence"


def shape_boxes(t: float, size: tuple[int, int], duration_s: float) -> dict[str, tuple[float, float, float, float]]:
    """Boxes of the two shapes at time ``t`` in a ``(width, height)`` frame of a video lasting ``duration_s``."""
    width, height = size
    side = max(4, min(width, height) // 4)
    progress = min(max(t / duration_s, 0.0), 1.0)
    x = 1 + progress * (width - side - 2)
    y = height * 0.15
    radius = max(3, min(width, height) // 6)
    cx = width * 0.5 + (width * 0.5 - radius - 2) * math.sin(2 * math.pi * t / max(duration_s, 1e-6))
    cy = height * 0.7
    return {"square": (x, y, x + side, y + side), "disc": (cx - radius, cy - radius, cx + radius, cy + radius)}


def render_frame(t: float, size: tuple[int, int], duration_s: float) -> np.ndarray:
    """The ``(height, width, 3)`` uint8 RGB frame at time ``t``."""
    width, height = size
    rows = np.linspace(60, 190, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(rows, (height, width, 3)).copy()
    boxes = shape_boxes(t, size, duration_s)
    x1, y1, x2, y2 = (int(round(v)) for v in boxes["square"])
    image[y1:y2, x1:x2] = SQUARE_COLOR
    dx1, dy1, dx2, dy2 = boxes["disc"]
    cx, cy, r = (dx1 + dx2) / 2, (dy1 + dy2) / 2, (dx2 - dx1) / 2
    yy, xx = np.mgrid[0:height, 0:width]
    image[(xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r] = DISC_COLOR
    return image.astype(np.uint8)


def soundtrack_samples(segments: Sequence[Segment], duration_s: float, sample_rate: int, *,
                       seed: int = 0) -> np.ndarray:
    """The soundtrack as float32 ``(samples,)`` in [-1, 1]: ``round(duration_s * sample_rate)`` samples."""
    total = int(round(duration_s * sample_rate))
    out = np.zeros(total, np.float32)
    rng = np.random.default_rng(seed)
    for segment in segments:
        lo, hi = int(round(segment.start_s * sample_rate)), min(total, int(round(segment.stop_s * sample_rate)))
        if hi <= lo or segment.kind == "silence":
            if segment.kind not in ("tone", "noise", "speech", "silence"):
                raise InputError(f"unknown segment kind {segment.kind!r}; use tone, noise, speech or silence")
            continue
        t = np.arange(hi - lo) / sample_rate
        if segment.kind == "tone":
            signal = np.sin(2 * np.pi * segment.frequency * t)
        elif segment.kind == "noise":
            signal = np.clip(rng.standard_normal(t.shape) / 3.0, -1.0, 1.0)
        elif segment.kind == "speech":
            signal = babble(t)
        else:
            raise InputError(f"unknown segment kind {segment.kind!r}; use tone, noise, speech or silence")
        out[lo:hi] = segment.amplitude * signal
    return out


def babble(t: np.ndarray) -> np.ndarray:
    """Speech-like sound in [-1, 1]: a gliding 120-180 Hz voice with formant-weighted harmonics, at ~4 syllables
    per second (no speech synthesiser needed)."""
    pitch = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    step = float(t[1] - t[0]) if len(t) > 1 else 0.0
    phase = 2 * np.pi * np.cumsum(pitch) * step
    voice = np.zeros_like(t)
    for harmonic, weight in ((1, 1.0), (2, 0.6), (3, 0.5), (5, 0.35), (8, 0.2), (12, 0.12)):
        voice += weight * np.sin(harmonic * phase)
    syllables = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t))
    signal = voice * syllables
    peak = float(np.max(np.abs(signal))) if len(signal) else 1.0
    return signal / max(peak, 1e-9)


def write_test_video(path: str | Path, *, duration_s: float = 6.0, fps: float = 10.0, size: tuple[int, int] = (64, 48),
                     segments: Sequence[Segment] = DEFAULT_SOUNDTRACK, sample_rate: int = 16_000,
                     frame_times: Sequence[float] | None = None, rotation: int = 0, audio: bool = True,
                     video: bool = True, video_codec: str | None = None, audio_codec: str | None = None,
                     keyframe_interval: int | None = None, audio_duration_s: float | None = None) -> TestVideo:
    """Write a test video and return what it holds.

    Args:
        path: the file to write; its suffix picks the container and default codecs (:data:`CODECS`).
        duration_s, fps: constant-rate frames at ``k / fps`` for ``k < round(duration_s * fps)``, unless
            ``frame_times`` gives the (increasing) presentation times of a variable-frame-rate video.
        size: ``(width, height)`` of the stored frames (even numbers for H.264).
        segments: the soundtrack; ``audio_duration_s`` (default ``duration_s``) is its length.
        rotation: display-matrix rotation in degrees counter-clockwise (as ``VideoFrame.rotation`` reads it);
            players show the frame rotated by it.
        audio, video: whether to write each stream (``video=False`` gives an audio-only file).
        keyframe_interval: frames between keyframes (default: one per second).
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CODECS:
        raise InputError(f"write_test_video: unknown container {suffix!r}; use one of {', '.join(CODECS)}")
    default_video, default_audio = CODECS[suffix]
    width, height = (int(v) for v in size)
    times = (tuple(float(t) for t in frame_times) if frame_times is not None
             else tuple(k / fps for k in range(int(round(duration_s * fps)))))
    span = duration_s if frame_times is None else (times[-1] + 1.0 / fps if times else duration_s)
    audio_span = span if audio_duration_s is None else float(audio_duration_s)
    container = av.open(str(path), "w")
    try:
        video_stream = None
        if video:
            video_stream = container.add_stream(video_codec or default_video, rate=int(round(fps)))
            video_stream.width, video_stream.height = width, height
            video_stream.pix_fmt = "yuv420p"
            video_stream.codec_context.gop_size = int(keyframe_interval or max(1, round(fps)))
            # constant rate: one tick per frame (AVI needs it); variable rate: millisecond ticks
            ticks = 1000 if frame_times is not None else int(round(fps))
            video_stream.codec_context.time_base = _fraction(1, ticks)
            if rotation:
                video_stream.set_display_rotation(int(rotation))
        audio_stream = None
        if audio:
            audio_stream = container.add_stream(audio_codec or default_audio, rate=int(sample_rate), layout="mono")
        if video_stream is not None:
            for t in times:
                frame = av.VideoFrame.from_ndarray(render_frame(t, (width, height), span), format="rgb24")
                frame.pts = int(round(t * ticks))
                frame.time_base = _fraction(1, ticks)
                for packet in video_stream.encode(frame):
                    container.mux(packet)
            for packet in video_stream.encode():
                container.mux(packet)
        if audio_stream is not None and audio_span > 0:
            _encode_audio(container, audio_stream, soundtrack_samples(segments, audio_span, sample_rate), sample_rate)
        container.start_encoding()  # writes the header even when no packet was muxed (a zero-length video)
    finally:
        container.close()
    return TestVideo(path=path, size=(width, height), frame_times=times if video else (), segments=tuple(segments),
                     sample_rate=int(sample_rate), has_audio=audio, has_video=video, rotation=int(rotation),
                     audio_duration_s=audio_span if audio else 0.0)


def _fraction(numerator: int, denominator: int):
    from fractions import Fraction

    return Fraction(numerator, denominator)


def _encode_audio(container, stream, samples: np.ndarray, sample_rate: int) -> None:
    import av

    context = stream.codec_context
    frame_size = int(context.frame_size or 1024)
    layout_format = context.format.name if context.format is not None else "fltp"
    if layout_format.startswith("s16"):
        data = np.clip(np.rint(samples * 32767), -32768, 32767).astype(np.int16)
    elif layout_format.startswith("s32"):
        data = np.clip(np.rint(samples.astype(np.float64) * 2147483647), -2147483648, 2147483647).astype(np.int32)
    elif layout_format.startswith("dbl"):
        data = samples.astype(np.float64)
    else:
        data = samples.astype(np.float32)
    for start in range(0, len(data), frame_size):
        chunk = data[start:start + frame_size]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[None, :]), format=layout_format, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = _fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV."""
    path = Path(path)
    pcm = np.clip(np.rint(np.asarray(samples, np.float64) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    return path


def write_frame_folder(folder: str | Path, audio_path: str | Path, *, duration_s: float = 6.0, fps: float = 2.0,
                       size: tuple[int, int] = (64, 48), segments: Sequence[Segment] = DEFAULT_SOUNDTRACK,
                       sample_rate: int = 16_000) -> TestVideo:
    """The same content as :func:`write_test_video`, as ``folder/frame_00000.png ...`` at ``fps`` plus a WAV."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    times = tuple(k / fps for k in range(int(round(duration_s * fps))))
    for index, t in enumerate(times):
        Image.fromarray(render_frame(t, size, duration_s)).save(folder / f"frame_{index:05d}.png")
    write_wav(audio_path, soundtrack_samples(segments, duration_s, sample_rate), sample_rate)
    return TestVideo(path=folder, size=tuple(size), frame_times=times, segments=tuple(segments),
                     sample_rate=sample_rate, has_audio=True, has_video=True, audio_duration_s=duration_s,
                     extra={"audio": Path(audio_path)})
