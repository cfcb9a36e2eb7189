"""The annotated video: sampled frames with boxes, masks, labels (and optionally the soundtrack heat map), with the
original audio.

Frame rate and length: the output has one frame per sampled frame, shown for ``1 / fps`` seconds (``fps`` = the
sampling rate; with every frame sampled, the source's average rate). So its frame count is the number of results
and its duration ``count / fps``: the input span rounded up to a whole sampling period. The audio of the same span
is copied packet by packet from the input (no re-encoding) when the output container takes the codec, else
re-encoded to the container's usual codec (AAC; Opus for WebM). Audio packets are interleaved with the frames as
they are written, so memory stays flat. The file is written under a temporary name and renamed when complete.

Containers by suffix: ``.mp4``/``.mov``/``.mkv`` (H.264), ``.webm`` (VP8), ``.avi`` (MPEG-4 part 2).
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from audiodetic.errors import InputError
from audiodetic.io import atomic_writer
from audiodetic.structures import Detections
from audiodetic.video.heatmap import upsample_map
from audiodetic.video.records import FrameResult

# suffix -> (muxer, video codec, audio codec used when the input's cannot be copied)
CONTAINERS: dict[str, tuple[str, str, str]] = {
    ".mp4": ("mp4", "libx264", "aac"), ".mov": ("mov", "libx264", "aac"), ".mkv": ("matroska", "libx264", "aac"),
    ".webm": ("webm", "libvpx", "libopus"), ".avi": ("avi", "mpeg4", "libmp3lame"),
}
HEATMAP_ALPHA = 0.45


def check_video_suffix(path: str | os.PathLike[str], *, what: str = "--draw") -> Path:
    """``path`` when its suffix names a container this module writes; :class:`InputError` otherwise."""
    path = Path(path)
    if path.suffix.lower() not in CONTAINERS:
        raise InputError(f"{what} {path}: the file name must end in one of {', '.join(CONTAINERS)}")
    return path


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Map values in ``[0, 1]`` to RGB float32 ``(..., 3)``: black -> red -> yellow -> white."""
    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0)[..., None]
    ramp = np.array([[0, 0, 0], [200, 0, 0], [255, 200, 0], [255, 255, 255]], np.float32)
    position = v * (len(ramp) - 1)
    low = np.minimum(np.floor(position).astype(int), len(ramp) - 2)
    fraction = position - low
    return ramp[low[..., 0]] * (1 - fraction) + ramp[low[..., 0] + 1] * fraction


def render(result: FrameResult, *, heatmap: bool = False) -> np.ndarray:
    """The annotated frame ``(H, W, 3)`` uint8: optional heat map overlay (colour by score, opacity
    ``HEATMAP_ALPHA * score``), then masks, boxes and
    ``label #track score`` labels (colours by label and track)."""
    from audiodetic.viz import draw

    image = result.image
    if heatmap and result.heatmap is not None:
        cells = upsample_map(result.heatmap, image.shape[:2])
        weight = (HEATMAP_ALPHA * np.clip(cells, 0.0, 1.0))[..., None]  # stronger where the score is higher
        image = np.clip(image * (1 - weight) + heat_colors(cells) * weight, 0, 255).astype(np.uint8)
    dets = result.detections
    if len(dets) == 0:
        return np.ascontiguousarray(image)
    names = [f"{label} #{tid}" if tid > 0 else label for label, tid in zip(dets.labels, result.track_ids)]
    order = list(dict.fromkeys(names))
    shown = Detections(dets.boxes, dets.scores, np.array([order.index(n) for n in names], np.int64), tuple(order),
                       dets.image_size, dets.masks)
    return np.asarray(draw(image, shown))


def _even(value: int) -> int:
    return value + (value % 2)


class AnnotatedVideoWriter:
    """Writes annotated frames and the audio of the same span (see the module doc).

    Args:
        path: output file (suffix picks the container, :data:`CONTAINERS`).
        fps: output frame rate (the sampling rate); ``size``: ``(width, height)`` of the upright frames.
        audio_path: the file whose first audio stream is copied (the video itself, or a frame folder's audio
            file), or ``None`` for no audio; ``start_s``: time of the first written frame in that file.
        heatmap: overlay the soundtrack heat map.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float, size: tuple[int, int],
                 audio_path: str | os.PathLike[str] | None = None, start_s: float = 0.0, heatmap: bool = False) -> None:
        import av

        self.path = check_video_suffix(path)
        muxer, video_codec, self._fallback_audio = CONTAINERS[self.path.suffix.lower()]
        self.rate = Fraction(fps).limit_denominator(1001)
        self.width, self.height = (int(v) for v in size)
        self.heatmap = heatmap
        self.frames = 0
        self._writer = atomic_writer(self.path)
        handle = self._writer.__enter__()
        try:
            self._out = av.open(handle, "w", format=muxer)
            self._video = self._out.add_stream(video_codec, rate=self.rate)
            self._video.width, self._video.height = _even(self.width), _even(self.height)
            self._video.pix_fmt = "yuv420p"
            self._video.codec_context.time_base = 1 / self.rate
            self._audio = _AudioCopy(self._out, audio_path, start_s, muxer, self._fallback_audio) if audio_path \
                else None
        except BaseException as error:
            self._writer.__exit__(type(error), error, error.__traceback__)
            raise

    def add(self, result: FrameResult) -> None:
        """Append one annotated frame (and the audio up to its end)."""
        import av

        pixels = render(result, heatmap=self.heatmap)
        if pixels.shape[:2] != (self.height, self.width):
            raise InputError(f"frame {result.frame_index} is {pixels.shape[1]}x{pixels.shape[0]}, but the video is "
                             f"{self.width}x{self.height}")
        if pixels.shape[:2] != (self._video.height, self._video.width):  # H.264 needs even sides: pad with black
            padded = np.zeros((self._video.height, self._video.width, 3), np.uint8)
            padded[:self.height, :self.width] = pixels
            pixels = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        if self._audio is not None:
            self._audio.copy_until(float(self.frames / self.rate))

    def close(self) -> Path:
        """Finish the file and publish it under its name; returns the path."""
        try:
            for packet in self._video.encode():
                self._out.mux(packet)
            if self._audio is not None:
                self._audio.copy_until(float(self.frames / self.rate))
                self._audio.finish()
            self._out.close()
        except BaseException as error:
            self._writer.__exit__(type(error), error, error.__traceback__)
            raise
        self._writer.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Discard the partial file (the destination is left as it was)."""
        try:
            self._out.close()
        except Exception:
            pass
        error = RuntimeError("aborted")
        self._writer.__exit__(RuntimeError, error, None)


class _AudioCopy:
    """The audio of ``[start_s, ...)`` of ``path``, copied (or re-encoded) into ``out`` in step with the video."""

    def __init__(self, out: Any, path: str | os.PathLike[str], start_s: float, muxer: str, fallback: str) -> None:
        import av

        self._input = av.open(str(path))
        source = self._input.streams.audio[0]
        self._source = source
        self._origin = float(self._input.start_time or 0) / 1_000_000
        self.start_s = float(start_s)
        self.copied = _can_copy(source, muxer)
        if self.start_s > 0:
            self._input.seek(int(self.start_s / float(source.time_base)), stream=source, backward=True)
        if self.copied:
            self._stream = out.add_stream_from_template(source)
            self._packets: Iterator[Any] = self._input.demux(source)
        else:
            rate = int(source.rate) if fallback != "libopus" else 48000
            self._stream = out.add_stream(fallback, rate=rate, layout="stereo" if source.channels > 1 else "mono")
            self._resampler = av.AudioResampler(format=self._stream.codec_context.format.name,
                                                layout=self._stream.codec_context.layout.name, rate=rate,
                                                frame_size=self._stream.codec_context.frame_size or None)
            self._packets = self._input.demux(source)
            self._samples = 0
        self._out = out
        self._pending: Any = None
        self._done = False

    def _time(self, item: Any) -> float | None:
        return None if item.pts is None else float(item.pts * item.time_base) - self._origin - self.start_s

    def copy_until(self, end_s: float) -> None:
        """Write the audio up to ``end_s`` seconds after the first frame."""
        while not self._done:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                self._done = True
                return
            t = self._time(packet)
            if t is None or t < -1e-3:
                continue
            if t >= end_s:
                self._pending = packet
                return
            if self.copied:
                offset = int(round((self.start_s + self._origin) / float(packet.time_base)))
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = self._stream
                self._out.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(frame)

    def _encode(self, frame: Any) -> None:
        frame.pts = None
        for converted in self._resampler.resample(frame):
            converted.pts = self._samples
            self._samples += converted.samples
            for packet in self._stream.encode(converted):
                self._out.mux(packet)

    def finish(self) -> None:
        if not self.copied:
            for converted in self._resampler.resample(None):
                converted.pts = self._samples
                self._samples += converted.samples
                for packet in self._stream.encode(converted):
                    self._out.mux(packet)
            for packet in self._stream.encode():
                self._out.mux(packet)
        self._input.close()


def _can_copy(source: Any, muxer: str) -> bool:
    """Whether ``muxer`` accepts ``source``'s codec as it is (tried on an in-memory file)."""
    import av

    probe = av.open(io.BytesIO(), "w", format=muxer)
    try:
        probe.add_stream_from_template(source)
        probe.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError, TypeError):
        return False
    finally:
        try:
            probe.close()
        except Exception:
            pass
