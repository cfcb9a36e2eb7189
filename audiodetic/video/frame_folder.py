"""A folder of frames plus one audio file, read like a video (the layout of sound-source-localisation benchmarks).

Frames are the folder's image files in name order; frame ``i`` is shown at ``i / frame_rate`` seconds. Only sampled
frames are read from disk (EXIF orientation applied, as for images). The audio file is anything
:mod:`audiodetic.encoders.audio.io` decodes, read in one-second blocks. Same interface as
:class:`~audiodetic.video.decode.VideoReader`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

from audiodetic.errors import InputError, MissingFileError, VideoDecodeError
from audiodetic.video.decode import AudioBlock, SampledFrame, VideoInfo
from audiodetic.video.sampling import TIME_TOLERANCE_S, FrameSampler, check_fps, check_span

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class FrameFolderReader:
    """Frames ``folder/*.{jpg,png,...}`` (sorted by name) at ``frame_rate`` fps, with the soundtrack ``audio``."""

    def __init__(self, folder: str | os.PathLike[str], audio: str | os.PathLike[str] | None, *,
                 frame_rate: float) -> None:
        from audiodetic.inputs import as_rgb_array

        self.path = Path(folder)
        if not self.path.is_dir():
            raise MissingFileError(f"frame folder not found: {self.path}")
        rate = check_fps(frame_rate, argument="frame_rate")
        if rate is None:
            raise InputError("a folder of frames needs its frame rate (frame_rate=..., --frame-rate FPS)")
        self.frame_rate = rate
        self.files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
        if not self.files:
            raise VideoDecodeError(f"{self.path} holds no frames ({', '.join(FRAME_SUFFIXES)})")
        self.audio = None if audio is None else Path(audio)
        if self.audio is not None and not self.audio.is_file():
            raise MissingFileError(f"audio file not found: {self.audio}")
        self._read = as_rgb_array
        first = self._read(self.files[0], argument=str(self.files[0]))
        self.decoded_frames = 0
        self.converted_frames = 0
        rate_hz = channels = None
        if self.audio is not None:
            from audiodetic.encoders.audio.io import audio_info

            described = audio_info(self.audio)
            rate_hz, channels = described.sample_rate, described.channels
        self.info = VideoInfo(
            path=str(self.path), width=int(first.shape[1]), height=int(first.shape[0]), rotation=0,
            fps=self.frame_rate, duration_s=len(self.files) / self.frame_rate, has_audio=self.audio is not None,
            audio_sample_rate=rate_hz, audio_channels=channels, video_codec="image files",
            audio_codec=self.audio.suffix.lstrip(".") if self.audio is not None else None,
        )

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def frames(self, *, fps: float | None = 2.0, start_s: float = 0.0,
               end_s: float | None = None) -> Iterator[SampledFrame]:
        """Sampled frames of ``[start_s, end_s)``; frames before ``start_s`` are skipped without being read."""
        start_s, end_s = check_span(start_s, end_s)
        sampler = FrameSampler(fps, start_s)
        first = max(0, math.floor(start_s * self.frame_rate - TIME_TOLERANCE_S))
        for index in range(first, len(self.files)):
            t = index / self.frame_rate
            if end_s is not None and t >= end_s - TIME_TOLERANCE_S:
                return
            self.decoded_frames += 1
            if not sampler.take(t):
                continue
            rgb = self._read(self.files[index], argument=str(self.files[index]))
            self.converted_frames += 1
            yield SampledFrame(index, t, rgb)

    def audio_blocks(self, start_s: float = 0.0) -> Iterator[AudioBlock]:
        """The audio file from ``start_s`` on, in one-second float32 blocks."""
        if self.audio is None:
            raise VideoDecodeError(f"{self.path}: no audio file was given with the frames")
        return file_audio_blocks(self.audio, start_s)


def file_audio_blocks(path: str | os.PathLike[str], start_s: float = 0.0) -> Iterator[AudioBlock]:
    """An audio file (anything :mod:`audiodetic.encoders.audio.io` decodes) from ``start_s`` on, in one-second blocks."""
    from audiodetic.encoders.audio.io import AudioReader

    with AudioReader(path) as reader:
        rate = reader.info.sample_rate
        position = max(0, int(math.floor(start_s * rate)))
        while position < reader.info.frames:
            block = reader.read(position, position + rate)
            if block.shape[1] == 0:
                return
            yield AudioBlock(position, block, rate)
            position += block.shape[1]
