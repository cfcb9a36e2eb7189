"""Decoding: formats, sources, array layouts, and a clear error for every kind of bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_media import tone

from audiodetic.encoders.audio import io as audio_io
from audiodetic.encoders.audio.io import AudioReader, array_to_float32, audio_info, load_audio
from audiodetic.errors import AudioDecodeError


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [("WAV", "PCM_16", 1 / 32768), ("WAV", "PCM_24", 1e-6), ("WAV", "PCM_32", 1e-7), ("WAV", "FLOAT", 0.0),
     ("FLAC", "PCM_16", 1 / 32768), ("OGG", "VORBIS", None), ("MP3", "MPEG_LAYER_III", None)],
)
def test_formats_decode_to_float32_channels_first(tmp_path, fmt, subtype, tolerance):
    signal = tone(1.0, 22050, channels=2)
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, signal, 22050, format=fmt, subtype=subtype)
    waveform, rate = load_audio(path)
    assert rate == 22050 and waveform.dtype == np.float32 and waveform.shape[0] == 2
    if tolerance is not None:  # lossless
        assert waveform.shape == (2, 22050)
        np.testing.assert_allclose(waveform, signal.T, atol=tolerance + 1e-7)
    else:  # lossy codecs: same length within a codec frame, strongly correlated with the input
        assert abs(waveform.shape[1] - 22050) < 2048
        assert _best_lag_correlation(waveform[0], signal[:, 0]) > 0.9


def _best_lag_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Highest correlation of ``a`` delayed by 0..2000 samples (codec delay) with ``b``."""
    best = 0.0
    for lag in range(0, 2000, 1):
        n = min(len(a) - lag, len(b))
        best = max(best, float(np.corrcoef(a[lag:lag + n], b[:n])[0, 1]))
        if best > 0.9:
            break
    return best


def test_bytes_file_objects_and_non_seekable_streams(tmp_path):
    signal = tone(0.5, 16000)
    buffer = io.BytesIO()
    sf.write(buffer, signal, 16000, format="FLAC")
    data = buffer.getvalue()

    class Stream:  # read-only, not seekable
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def read(self, size: int = -1) -> bytes:
            return self._inner.read(size)

        def seekable(self) -> bool:
            return False

    for source in (data, bytearray(data), memoryview(data), io.BytesIO(data), Stream(data)):
        waveform, rate = load_audio(source)
        assert rate == 16000 and waveform.shape == (1, 8000)
        np.testing.assert_allclose(waveform[0], signal[:, 0], atol=1 / 32768 + 1e-7)


def test_array_layouts_and_dtypes():
    samples = tone(0.1, 8000, channels=3)  # (800, 3)
    for array in (samples, samples.T, torch.from_numpy(samples.T.copy())):
        waveform, rate = load_audio((array, 8000))
        assert waveform.shape == (3, 800) and rate == 8000
        np.testing.assert_array_equal(waveform, samples.T)
    mono, _ = load_audio((samples[:, 0].astype(np.float64), 8000))
    assert mono.shape == (1, 800) and mono.dtype == np.float32
    ints = np.array([-32768, 0, 16384, 32767], dtype=np.int16)
    np.testing.assert_allclose(array_to_float32(ints)[0], [-1.0, 0.0, 0.5, 32767 / 32768])
    np.testing.assert_allclose(array_to_float32(np.array([0, 128, 255], dtype=np.uint8))[0], [-1.0, 0.0, 127 / 128])
    np.testing.assert_allclose(array_to_float32(np.array([-(2**31)], dtype=np.int32))[0], [-1.0])


def test_max_seconds_and_info(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(3.0, 8000), 8000)
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (8000, 24000, 1) and info.duration == 3.0
    waveform, _ = load_audio(path, max_seconds=1.25)
    assert waveform.shape == (1, 10000)
    with pytest.raises(ValueError, match="max_seconds"):
        load_audio(path, max_seconds=0)


def test_reader_reads_frame_ranges_without_decoding_the_rest(tmp_path):
    signal = tone(4.0, 16000, channels=2)
    path = tmp_path / "ranges.flac"
    sf.write(path, signal, 16000)
    with AudioReader(path) as reader:
        block = reader.read(20000, 20160)
        assert block.shape == (2, 160)
        np.testing.assert_allclose(block, signal[20000:20160].T, atol=1 / 32768 + 1e-7)
        assert reader.read(63990, 70000).shape == (2, 10)  # clamped to the end


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"", "empty"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4, "cannot decode"),
        (b"\x00" * 1000, "cannot decode"),
        ((np.zeros(0, dtype=np.float32), 16000), "empty"),
        ((np.zeros((2, 0), dtype=np.float32), 16000), "empty"),
        ((np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000), "NaN or infinite"),
        ((np.array([0.0, np.inf], dtype=np.float64), 16000), "NaN or infinite"),
        ((np.zeros(100, np.float32), 999), r"outside the supported range \[1000, 768000\]"),
        ((np.zeros(100, np.float32), 800_000), "outside the supported range"),
        ((np.zeros(100, np.float32), 16000.5), "whole number"),
        ((np.zeros(100, np.float32), "16000"), "integer number"),
        ((np.zeros(100, np.float32), True), "integer number"),
        ((np.zeros((2, 3, 100), np.float32), 16000), "1-D or 2-D"),
        ((np.zeros((100, 100), np.float32), 16000), "at most 64"),
        ((np.zeros(100, np.complex64), 16000), "real integers or floats"),
        ((np.zeros(100, bool), 16000), "real integers or floats"),
        ((np.array(["a", "b"]), 16000), "real integers or floats"),
        ((np.zeros(100, np.float32), 16000, "extra"), r"\(waveform, sample_rate\) pair"),
        (12345, "cannot read audio from int"),
    ],
)
def test_bad_sources_raise_audio_decode_error(source, message):
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(source)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioDecodeError, match="directory"):
        load_audio(tmp_path)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio at all" * 50)
    with pytest.raises(AudioDecodeError, match="garbage.mp3"):
        load_audio(garbage)


def test_nan_in_a_file_is_reported(tmp_path):
    signal = tone(0.2, 16000)
    signal[100, 0] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN"):
        load_audio(path)


def test_absurd_lengths_and_decode_budget(tmp_path, monkeypatch):
    path = tmp_path / "minute.wav"
    sf.write(path, np.zeros((60 * 8000, 1), np.int16), 8000)
    monkeypatch.setattr(audio_io, "MAX_DURATION_S", 30)
    with pytest.raises(AudioDecodeError, match="absurdly long"):
        load_audio(path)
    monkeypatch.setattr(audio_io, "MAX_DURATION_S", 3600)
    monkeypatch.setattr(audio_io, "MAX_DECODE_BYTES", 1000)
    with pytest.raises(AudioDecodeError, match="pass max_seconds"):
        load_audio(path)
    assert load_audio(path, max_seconds=0.01)[0].shape == (1, 80)


def test_errors_are_value_errors():
    assert issubclass(AudioDecodeError, ValueError)
