"""Decoding audio sources into float32 waveforms, whole or a range of frames at a time.

Accepted sources (:data:`AudioSource`):

* a path (``str`` / ``os.PathLike``) to anything libsndfile decodes: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, ...;
* encoded bytes (``bytes``, ``bytearray``, ``memoryview``) or a binary file-like object (``read``, ideally ``seek``);
* a ``(waveform, sample_rate)`` pair. ``waveform`` is a numpy array or a torch tensor, 1-D (mono) or 2-D. For 2-D
  arrays **the smaller axis is the channel axis**, so both ``(channels, samples)`` (torchaudio) and
  ``(samples, channels)`` (soundfile) work; at most :data:`MAX_CHANNELS` channels. Float samples are used as they
  are (nominal range [-1, 1]); integer samples are scaled to [-1, 1) by their type's range (``int16`` / 32768,
  ``uint8`` centred at 128, ...).

Waveforms come back as ``np.ndarray`` float32 of shape ``(channels, samples)``. Every problem with the input
(missing or undecodable file, empty audio, NaN/inf samples, a sample rate outside
[:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`] Hz, more than :data:`MAX_DURATION_S` seconds) raises
:class:`~audiodetic.errors.AudioDecodeError` (a ``ValueError``) or ``FileNotFoundError`` with a message naming the
source and what is allowed.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

import numpy as np

from audiodetic.errors import AudioDecodeError, InputError, MissingFileError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
MAX_DURATION_S = 24 * 3600
"""Longer sources are refused as absurd (often a corrupt header)."""
MAX_DECODE_BYTES = 2 << 30
""":func:`load_audio` refuses to decode more than this many float32 bytes at once (use ``max_seconds``)."""

AudioSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, tuple]


@dataclass(frozen=True)
class AudioInfo:
    """What a source holds: ``sample_rate`` in Hz, ``frames`` (samples per channel), ``channels``."""

    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def describe_source(source: Any) -> str:
    """A short human-readable name of ``source`` for error messages."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, tuple):
        return "<(waveform, sample_rate) array>"
    return repr(getattr(source, "name", None) or f"<{type(source).__name__}>")


def _check_rate(sample_rate: Any, where: str) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
        raise AudioDecodeError(f"{where}: sample rate must be an integer number of Hz, got {sample_rate!r}")
    if float(sample_rate) != int(sample_rate):
        raise AudioDecodeError(f"{where}: sample rate must be a whole number of Hz, got {sample_rate!r}")
    rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            f"{where}: sample rate {rate} Hz is outside the supported range "
            f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )
    return rate


def _check_info(info: AudioInfo, where: str) -> AudioInfo:
    _check_rate(info.sample_rate, where)
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioDecodeError(f"{where}: {info.channels} channels; between 1 and {MAX_CHANNELS} are supported")
    if info.frames <= 0:
        raise AudioDecodeError(f"{where}: the audio is empty (0 samples)")
    if info.frames > MAX_DURATION_S * info.sample_rate:
        raise AudioDecodeError(
            f"{where}: {info.duration:.0f} s of audio is absurdly long (at most {MAX_DURATION_S} s are accepted)"
        )
    return info


def _check_finite(block: np.ndarray, where: str) -> np.ndarray:
    if not np.isfinite(block).all():
        raise AudioDecodeError(f"{where}: the audio contains NaN or infinite samples")
    return block


def array_to_float32(samples: Any, where: str = "waveform") -> np.ndarray:
    """Convert a 1-D or 2-D sample array (numpy or torch) to float32 ``(channels, samples)``; see module doc."""
    if hasattr(samples, "detach"):  # torch.Tensor without importing torch
        samples = samples.detach().cpu().numpy()
    array = np.asarray(samples)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.number)) or np.iscomplexobj(array):
        raise AudioDecodeError(f"{where}: samples must be real integers or floats, got dtype {array.dtype}")
    if array.size == 0:
        raise AudioDecodeError(f"{where}: the audio is empty (shape {tuple(array.shape)})")
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2:
        if array.shape[0] > array.shape[1]:
            array = array.T  # (samples, channels) -> (channels, samples)
    else:
        raise AudioDecodeError(f"{where}: expected a 1-D or 2-D waveform, got shape {tuple(array.shape)}")
    if array.shape[0] > MAX_CHANNELS:
        raise AudioDecodeError(
            f"{where}: shape {tuple(array.shape)} has {array.shape[0]} channels on its smaller axis; "
            f"at most {MAX_CHANNELS} are supported"
        )
    if np.issubdtype(array.dtype, np.unsignedinteger):
        half = float(2 ** (8 * array.dtype.itemsize - 1))
        out = (array.astype(np.float64) - half) / half
    elif np.issubdtype(array.dtype, np.integer):
        out = array.astype(np.float64) / float(2 ** (8 * array.dtype.itemsize - 1))
    else:
        out = array
    return np.ascontiguousarray(out, dtype=np.float32)


class AudioReader:
    """Random access to a decoded source: ``info`` and ``read(start, stop)``. Use as a context manager."""

    def __init__(self, source: AudioSource) -> None:
        self.name = describe_source(source)
        self._file: Any = None
        self._array: np.ndarray | None = None
        if isinstance(source, tuple):
            if len(source) != 2:
                raise AudioDecodeError(f"{self.name}: expected a (waveform, sample_rate) pair, got {len(source)} items")
            rate = _check_rate(source[1], self.name)
            self._array = _check_finite(array_to_float32(source[0], self.name), self.name)
            self.info = _check_info(AudioInfo(rate, self._array.shape[1], self._array.shape[0]), self.name)
            return
        self._file = self._open_file(source)
        try:
            self.info = _check_info(
                AudioInfo(int(self._file.samplerate), int(self._file.frames), int(self._file.channels)), self.name
            )
        except BaseException:
            self.close()
            raise

    def _open_file(self, source: AudioSource) -> Any:
        import soundfile

        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.exists(path):
                raise MissingFileError(f"audio file {path!r} does not exist")
            if os.path.isdir(path):
                raise AudioDecodeError(f"{path!r} is a directory, not an audio file")
            handle: Any = path
        elif isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise AudioDecodeError("<0 bytes>: the audio is empty (no bytes)")
            handle = io.BytesIO(bytes(source))
        elif hasattr(source, "read"):
            handle = source
            if not (hasattr(source, "seek") and getattr(source, "seekable", lambda: True)()):
                handle = io.BytesIO(source.read())
        else:
            raise AudioDecodeError(
                f"cannot read audio from {type(source).__name__}; expected a path, bytes, a binary file object "
                "or a (waveform, sample_rate) pair"
            )
        try:
            return soundfile.SoundFile(handle)
        except (RuntimeError, TypeError, ValueError, EOFError) as err:  # LibsndfileError is a RuntimeError
            raise AudioDecodeError(f"{self.name}: cannot decode audio ({err})") from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` (clamped to the source) as float32 ``(channels, stop - start)``."""
        start = max(0, min(int(start), self.info.frames))
        stop = max(start, min(int(stop), self.info.frames))
        if self._array is not None:
            return self._array[:, start:stop]
        try:
            self._file.seek(start)
            block = self._file.read(stop - start, dtype="float32", always_2d=True)
        except (RuntimeError, TypeError, ValueError, EOFError) as err:
            raise AudioDecodeError(f"{self.name}: decoding failed at frame {start} ({err})") from None
        return _check_finite(np.ascontiguousarray(block.T), self.name)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def audio_info(source: AudioSource) -> AudioInfo:
    """Sample rate, length and channel count of ``source`` without decoding the samples."""
    with AudioReader(source) as reader:
        return reader.info


def load_audio(source: AudioSource, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``source`` to ``(waveform float32 (channels, samples), sample_rate)`` at its own rate.

    ``max_seconds`` decodes only the first ``max_seconds`` seconds. Without it, sources that would take more than
    :data:`MAX_DECODE_BYTES` of memory are refused (ImageBind's input needs only three clips:
    :func:`audiodetic.encoders.audio.features.load_imagebind_audio` reads just those).
    """
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise InputError(f"max_seconds must be a positive number of seconds or None, got {max_seconds!r}")
    with AudioReader(source) as reader:
        info = reader.info
        frames = info.frames if max_seconds is None else min(info.frames, int(max_seconds * info.sample_rate))
        if frames <= 0:
            raise AudioDecodeError(f"{reader.name}: max_seconds={max_seconds} selects no samples")
        if frames * info.channels * 4 > MAX_DECODE_BYTES:
            raise AudioDecodeError(
                f"{reader.name}: {info.duration:.0f} s x {info.channels} channels is too long to decode whole; "
                "pass max_seconds"
            )
        waveform = reader.read(0, frames)
    if waveform.shape[1] == 0:
        raise AudioDecodeError(f"{reader.name}: the audio is empty (0 samples decoded)")
    return waveform, info.sample_rate
