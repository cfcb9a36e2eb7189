"""ImageBind's audio input: resampling, clip placement, Kaldi fbank, in-place mean semantics, partial reads."""

from __future__ import annotations

import io
import math
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from audio_media import optional_torchaudio, tone

from audiodetic.encoders.audio import features
from audiodetic.encoders.audio.features import (
    clip_bounds,
    imagebind_audio_batch,
    imagebind_audio_input,
    kaldi_fbank,
    load_imagebind_audio,
    resample,
    resampled_length,
)
from audiodetic.encoders.audio.io import AudioReader
from audiodetic.errors import AudioDecodeError

PADDING_VALUE = (0.0 + 4.268) / 9.138


def torchaudio_recipe(samples: np.ndarray, rate: int, *, inplace: bool = True) -> torch.Tensor:
    """ImageBind's documented recipe written with torchaudio's own resample and fbank: (3, 1, 128, 204)."""
    ta = optional_torchaudio()
    # A channel-major copy (the recipe mutates it in place). The memory layout matters in the last float32 bit:
    # torch sums a strided multi-channel view in another order than a channel-major one.
    waveform = torch.from_numpy(np.array(samples.T, dtype=np.float32, order="C"))
    if rate != 16000:
        waveform = ta.functional.resample(waveform, rate, 16000)
    latest = Fraction(max(waveform.shape[1] / 16000 - 2, 0))
    out = []
    for i in range(3):
        start = latest / 2 * i
        view = waveform[:, int(start * 16000): int((start + 2) * 16000)]
        if inplace:
            view -= view.mean()
        else:
            view = view - view.mean()
        fbank = ta.compliance.kaldi.fbank(
            view, htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
            num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10,
        ).T
        fbank = F.pad(fbank, (0, 204 - fbank.shape[1])) if fbank.shape[1] < 204 else fbank[:, :204]
        out.append(((fbank + 4.268) / 9.138)[None])
    return torch.stack(out)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 32000, 44100, 48000, 96000])
def test_resample_is_torchaudio_bit_for_bit(rate):
    ta = optional_torchaudio()
    x = torch.from_numpy(tone(0.37, rate, channels=2).T.copy())
    expected = ta.functional.resample(x, rate, 16000)
    got = resample(x, rate, 16000)
    assert got.shape == expected.shape == (2, resampled_length(x.shape[1], rate))
    torch.testing.assert_close(got, expected, atol=0.0, rtol=0.0)


def test_sparse_resampling_for_coprime_rates_matches_dense(monkeypatch):
    ta = optional_torchaudio()
    x = torch.from_numpy(tone(2.0, 1009).T.copy())
    expected = ta.functional.resample(x, 1009, 1000)
    monkeypatch.setattr(features, "_MAX_KERNEL_ELEMENTS", 100)  # force the gathered path
    got = resample(x, 1009, 1000)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0.0)


def test_resampled_length_matches_torchaudio():
    ta = optional_torchaudio()
    for rate, n in [(44100, 1), (44100, 441), (44100, 12345), (22050, 999), (8000, 401), (48000, 47999)]:
        assert resampled_length(n, rate) == ta.functional.resample(torch.zeros(1, n), rate, 16000).shape[1]


def test_clip_bounds_follow_constant_clips_per_video():
    assert clip_bounds(80000) == [(0, 32000), (24000, 56000), (48000, 80000)]  # 5 s: overlapping
    assert clip_bounds(160000) == [(0, 32000), (64000, 96000), (128000, 160000)]  # 10 s
    assert clip_bounds(16000) == [(0, 16000)] * 3  # shorter than a clip: the whole audio, three times
    assert clip_bounds(32000) == [(0, 32000)] * 3
    # 7.3 s: starts 0, 2.65, 5.3 s, but in exact fractions of the float 7.3 - 2 = 5.2999999999999998..., so the
    # sample indices truncate one lower (pytorchvideo gives the same)
    assert clip_bounds(116800) == [(0, 32000), (42399, 74399), (84799, 116799)]
    for n in (401, 33333, 99999, 1234567):
        bounds = clip_bounds(n)
        assert bounds[0][0] == 0 and bounds[-1][1] == min(n, bounds[-1][0] + 32000)
        assert all(0 < hi - lo <= 32000 for lo, hi in bounds)


def test_kaldi_fbank_matches_torchaudio():
    ta = optional_torchaudio()
    signal = torch.from_numpy(tone(2.0, 16000)[:, 0].copy())
    for n in (400, 401, 16000, 32000):
        expected = ta.compliance.kaldi.fbank(
            signal[None, :n], htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
            num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10,
        )
        got = kaldi_fbank(signal[:n])
        assert got.shape == expected.shape == (1 + (n - 400) // 160, 128)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0.0)


@pytest.mark.parametrize(
    ("seconds", "rate", "channels", "atol"),
    [(5.0, 16000, 1, 0.0), (1.0, 16000, 1, 0.0), (7.0, 16000, 2, 0.0), (2.5, 48000, 2, 1e-6),
     (7.0, 44100, 1, 1e-6), (3.0, 22050, 1, 1e-6), (12.0, 8000, 1, 2e-3)],
)
def test_features_equal_the_torchaudio_recipe(seconds, rate, channels, atol):
    samples = tone(seconds, rate, channels) + 0.3  # a DC offset makes the in-place mean subtraction matter
    expected = torchaudio_recipe(samples, rate)
    got = imagebind_audio_input(samples, rate)
    assert got.shape == (3, 1, 128, 204) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=atol, rtol=0.0)


def test_inplace_mean_subtraction_semantics():
    samples = tone(5.0, 16000) + 0.3
    upstream = imagebind_audio_input(samples, 16000, upstream_inplace=True)
    copied = imagebind_audio_input(samples, 16000, upstream_inplace=False)
    torch.testing.assert_close(upstream[0], copied[0], atol=0.0, rtol=0.0)  # first clip sees untouched samples
    # overlapping clips carry a step of the earlier clip's mean: large with a DC offset, small without
    assert (upstream[1:] - copied[1:]).abs().max() > 0.5
    centred = tone(5.0, 16000)
    small = imagebind_audio_input(centred, 16000) - imagebind_audio_input(centred, 16000, upstream_inplace=False)
    assert 1e-5 < small.abs().max() < 0.05
    if _has_torchaudio():
        torch.testing.assert_close(copied, torchaudio_recipe(samples, 16000, inplace=False), atol=0.0, rtol=0.0)
    long = tone(8.0, 16000) + 0.3  # no overlap: both readings agree
    torch.testing.assert_close(
        imagebind_audio_input(long, 16000), imagebind_audio_input(long, 16000, upstream_inplace=False)
    )


def _has_torchaudio() -> bool:
    try:
        optional_torchaudio()
    except pytest.skip.Exception:
        return False
    return True


def test_input_array_is_not_modified():
    samples = tone(5.0, 16000) + 0.3
    before = samples.copy()
    imagebind_audio_input(samples, 16000)
    np.testing.assert_array_equal(samples, before)


def test_downmix_averages_channels():
    stereo = tone(3.0, 16000, channels=2)
    mixed = imagebind_audio_input(stereo, 16000, downmix=True)
    # same up to float32 rounding, amplified by the log in near-empty bins (the clip mean spans all channels)
    torch.testing.assert_close(mixed, imagebind_audio_input(stereo.mean(axis=1), 16000), atol=1e-2, rtol=0.0)
    first = imagebind_audio_input(stereo, 16000)
    torch.testing.assert_close(first, imagebind_audio_input(stereo[:, 0], 16000), atol=1e-2, rtol=0.0)
    assert (mixed - first).abs().max() > 0.05


def test_shortest_accepted_audio_is_one_frame():
    assert imagebind_audio_input(tone(400 / 16000, 16000), 16000).shape == (3, 1, 128, 204)
    assert imagebind_audio_input(tone(200 / 8000, 8000), 8000).shape == (3, 1, 128, 204)  # 400 samples at 16 kHz
    for rate, n in ((16000, 399), (8000, 199), (44100, 1099)):  # 1099 -> 399 samples at 16 kHz
        with pytest.raises(AudioDecodeError, match="shorter than one 25 ms analysis frame"):
            imagebind_audio_input(np.full(n, 0.1, np.float32), rate)
    with pytest.raises(AudioDecodeError, match="at least 400 samples"):
        kaldi_fbank(torch.zeros(100))


def test_silence_gives_the_documented_constant_features():
    out = imagebind_audio_input(np.zeros(32000, np.float32), 16000)
    floor = (math.log(float(torch.finfo(torch.float32).eps)) + 4.268) / 9.138
    torch.testing.assert_close(out[..., :198], torch.full((3, 1, 128, 198), floor))
    torch.testing.assert_close(out[..., 198:], torch.full((3, 1, 128, 6), PADDING_VALUE))


def test_long_files_are_read_clip_by_clip(tmp_path, monkeypatch):
    rate, seconds = 44100, 90.0
    samples = tone(seconds, rate)
    path = tmp_path / "long.flac"
    sf.write(path, samples, rate, subtype="PCM_24")
    decoded = sf.read(path, dtype="float32", always_2d=True)[0]
    frames_read = []
    original = AudioReader.read

    def counting_read(self, start, stop):
        block = original(self, start, stop)
        frames_read.append(block.shape[1])
        return block

    monkeypatch.setattr(AudioReader, "read", counting_read)
    got = load_imagebind_audio(path)
    assert len(frames_read) == 3 and sum(frames_read) < 3 * 2.05 * rate  # three 2-s windows plus filter margins
    # Reference: resample the whole decoded file, then cut the clips.
    whole = resample(torch.from_numpy(decoded.T.copy()), rate)
    bounds = clip_bounds(whole.shape[1])
    clips = [whole[:, lo:hi] for lo, hi in bounds]
    expected = torch.stack([features._clip_features(clip - clip.mean(), False) for clip in clips])
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0.0)


def test_batch_and_sources(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(2.5, 22050), 22050, subtype="FLOAT")
    batch = imagebind_audio_batch([path, (tone(2.5, 22050), 22050), path.read_bytes()])
    assert batch.shape == (3, 3, 1, 128, 204)
    torch.testing.assert_close(batch[0], batch[2])
    torch.testing.assert_close(batch[0], batch[1], atol=0.0, rtol=0.0)
    with pytest.raises(ValueError, match="no audio sources"):
        imagebind_audio_batch([])


def test_truncated_files_fail_clearly_or_use_what_decodes():
    buffer = io.BytesIO()
    sf.write(buffer, tone(10.0, 44100), 44100, format="MP3")
    with pytest.raises(AudioDecodeError, match="truncated or corrupt"):
        load_imagebind_audio(buffer.getvalue()[: len(buffer.getvalue()) // 3])  # header still claims 10 s
    wav = io.BytesIO()
    sf.write(wav, tone(10.0, 16000), 16000, format="WAV")
    assert load_imagebind_audio(wav.getvalue()[:1000]).shape == (3, 1, 128, 204)  # WAV: length from the data
