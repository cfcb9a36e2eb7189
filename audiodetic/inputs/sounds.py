"""Sounds as users hand them in: the accepted forms of one audio source, checked the same way everywhere.

One source is a path (``str`` / ``os.PathLike``), encoded bytes (``bytes`` / ``bytearray`` / ``memoryview``), a
binary file object (``read()``), or a ``(waveform, sample_rate)`` pair: ``waveform`` a numpy array, torch tensor
or list of samples (1-D, or 2-D with the smaller axis as channels), ``sample_rate`` a whole number of Hz
(``16000`` and ``16000.0`` are the same rate; ``16000.5`` is refused). Decoding and range checks of the samples
themselves belong to :mod:`audiodetic.encoders.audio.io`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from audiodetic.encoders.audio.io import AudioInfo, audio_info
from audiodetic.errors import AudioDecodeError, InputError, MissingFileError

SOURCE_FORMS = "a file path, encoded bytes, a binary file object or a (waveform, sample_rate) pair"


def is_waveform_pair(value: Any) -> bool:
    """Whether ``value`` has the shape of a ``(waveform, sample_rate)`` pair (the rate is checked by
    :func:`check_sound_source`)."""
    if not isinstance(value, tuple) or len(value) != 2:
        return False
    waveform, rate = value
    is_array = hasattr(waveform, "shape") or hasattr(waveform, "detach") or isinstance(waveform, list)
    return is_array and isinstance(rate, numbers.Real) and not isinstance(rate, bool)


def is_sound_source(value: Any) -> bool:
    """Whether ``value`` is one audio source (not a list or dict of them)."""
    return (isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview)) or is_waveform_pair(value)
            or (hasattr(value, "read") and not isinstance(value, (list, tuple, dict))))


def check_sound_source(source: Any, *, argument: str = "sound") -> Any:
    """One source in its checked form: an existing ``Path``, non-empty ``bytes`` (a file object is read now), or a
    ``(waveform, int sample_rate)`` pair.

    Raises:
        MissingFileError: a path that is not a file. InputError: empty bytes, a fractional or non-positive sample
        rate, or a value that is no audio source (the message lists the accepted forms).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"{argument}: sound file not found: {path}")
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise InputError(f"{argument}: a sound given as bytes must not be empty")
        return bytes(source)
    if is_waveform_pair(source):
        waveform, rate = source
        if float(rate) != int(rate) or int(rate) <= 0:
            raise InputError(f"{argument}: the sample rate must be a positive whole number of Hz, got {rate!r}")
        return (waveform, int(rate))
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise InputError(f"{argument}: could not read audio bytes from {source!r} (empty, or a text stream)")
        return bytes(data)
    raise InputError(f"{argument}: unsupported sound source {type(source).__name__}; use {SOURCE_FORMS}")


def check_sound_file(path: str | os.PathLike[str], *, argument: str = "sound",
                     max_seconds: float | None = None) -> AudioInfo:
    """Read only the header of a sound file: a missing file, one that is not audio libsndfile decodes, or (with
    ``max_seconds``) one longer than that is refused before any sample is decoded.

    Returns:
        Its :class:`~audiodetic.encoders.audio.io.AudioInfo` (sample rate in Hz, frames, channels).

    Raises:
        MissingFileError: no such file. AudioDecodeError: not decodable audio, or too long (the message gives the
        duration and the limit in seconds).
    """
    checked = check_sound_source(path, argument=argument)
    try:
        info = audio_info(checked)
    except AudioDecodeError as error:
        raise AudioDecodeError(f"{argument}: {error}") from None
    if max_seconds is not None and info.duration > max_seconds:
        raise AudioDecodeError(f"{argument}: {checked} is {info.duration:.1f} s long; sounds of at most "
                               f"{max_seconds:g} s are accepted")
    return info
