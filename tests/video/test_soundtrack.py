"""Soundtrack windows and the silence rule, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiodetic.video.decode import AudioBlock
from audiodetic.video.soundtrack import SILENCE_DBFS, WindowedAudio, is_silent, level_dbfs, window_key, window_span


def test_levels_in_dbfs():
    assert level_dbfs(np.ones(100)) == pytest.approx(0.0)  # full-scale square wave
    t = np.arange(16000) / 16000
    assert level_dbfs(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.0103, abs=1e-3)  # full-scale sine
    assert level_dbfs(0.01 * np.ones((2, 50))) == pytest.approx(-40.0)
    assert level_dbfs(np.zeros(10)) == -math.inf and level_dbfs(np.zeros(0)) == -math.inf


def test_the_silence_threshold_is_minus_60_dbfs():
    assert SILENCE_DBFS == -60.0
    quiet = 10 ** (-61 / 20) * np.ones(1000)  # -61 dBFS
    audible = 10 ** (-59 / 20) * np.ones(1000)  # -59 dBFS
    assert is_silent(level_dbfs(quiet)) and not is_silent(level_dbfs(audible))
    assert not is_silent(-60.0)  # strictly below


def test_window_grid_and_span():
    assert [window_key(t) for t in (0.0, 0.12, 0.13, 0.5, 0.99)] == [0, 0, 1, 2, 4]
    assert window_span(1.0, 2.0, 10) == (0, 20)
    assert window_span(0.0, 2.0, 10) == (-10, 10)
    assert window_span(0.25, 0.5, 8) == (0, 4)


def _blocks(signal, rate, size):
    for start in range(0, signal.shape[1], size):
        yield AudioBlock(start, signal[:, start:start + size], rate)


def test_windows_are_cut_padded_and_levelled_by_hand():
    rate = 10
    signal = np.arange(1, 61, dtype=np.float32)[None, :] / 100  # 6 s, sample i holds (i + 1) / 100
    windows = WindowedAudio(_blocks(signal, rate, 7), 2.0)
    first = windows.window(0.0)  # [-1 s, 1 s): ten zeros then samples 0..9
    assert first.samples.shape == (1, 20) and first.real == 10
    np.testing.assert_array_equal(first.samples[0, :10], 0)
    np.testing.assert_allclose(first.samples[0, 10:], signal[0, :10])
    expected = 10 * math.log10(float(np.mean(signal[0, :10].astype(np.float64) ** 2)))
    assert first.level_dbfs == pytest.approx(expected, abs=1e-4)
    middle = windows.window(3.1)  # rounds to 3.0: samples 20..39
    assert middle.key == 12 and middle.centre_s == 3.0
    np.testing.assert_allclose(middle.samples[0], signal[0, 20:40])
    end = windows.window(5.5)  # samples 45..59 then five zeros
    assert end.real == 15
    np.testing.assert_allclose(end.samples[0, :15], signal[0, 45:])
    np.testing.assert_array_equal(end.samples[0, 15:], 0)
    past = windows.window(9.0)  # wholly after the audio
    assert past.real == 0 and past.silent and past.level_dbfs == -math.inf


def test_timestamp_gaps_are_silence_and_overlaps_keep_the_first_samples():
    rate = 10
    blocks = iter([AudioBlock(0, np.ones((1, 10), np.float32), rate),
                   AudioBlock(15, 2 * np.ones((1, 10), np.float32), rate),   # 5-sample gap
                   AudioBlock(20, 3 * np.ones((1, 10), np.float32), rate)])  # overlaps 20..24
    window = WindowedAudio(blocks, 3.0).window(1.5)  # samples 0..29
    np.testing.assert_array_equal(window.samples[0], [1] * 10 + [0] * 5 + [2] * 10 + [3] * 5)


def test_memory_holds_one_window_not_the_audio():
    rate = 1000
    signal = np.random.default_rng(0).normal(0, 0.1, (2, 600 * rate)).astype(np.float32)  # 10 minutes
    windows = WindowedAudio(_blocks(signal, rate, rate), 2.0)
    for t in np.arange(0, 600, 0.5):
        window = windows.window(float(t))
        assert windows._data.shape[1] <= 3 * rate + rate  # the window plus at most one block
    np.testing.assert_allclose(window.samples[:, :1500], signal[:, 598500:])  # centred at 599.5 s
    np.testing.assert_array_equal(window.samples[:, 1500:], 0)
