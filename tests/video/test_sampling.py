"""Frame sampling: the first frame at or after each instant start + k / fps."""

from __future__ import annotations

import pytest

from audiodetic.errors import InputError
from audiodetic.video.sampling import FrameSampler, check_fps, check_span


def _sampled(times, fps, start=0.0):
    sampler = FrameSampler(fps, start)
    return [t for t in times if sampler.take(t)]


def test_constant_rate_source_gives_ceil_duration_times_fps():
    times = [k / 30 for k in range(90)]  # 3 s at 30 fps
    picked = _sampled(times, 2.0)
    assert picked == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert FrameSampler(2.0).expected_count(3.0, 30.0) == 6
    assert _sampled(times, None) == times
    assert len(_sampled(times, 7.0)) == 21  # ceil(3 * 7)


def test_gaps_and_rates_above_the_source_never_serve_a_frame_twice():
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.2, 2.0, 2.05]  # variable rate
    assert _sampled(times, 2.0) == [0.0, 0.5, 1.2, 2.0]  # 1.2 serves the instant 1.0; 1.5 is jumped over
    assert _sampled(times, 100.0) == times
    assert FrameSampler(100.0).expected_count(1.0, 10.0) == 10  # capped at the source rate


def test_start_offset_and_rounded_timestamps():
    times = [k * 0.1 - 1e-6 for k in range(40)]  # container rounding just below the instants
    assert _sampled(times, 1.0, start=1.0) == pytest.approx([1.0, 2.0, 3.0], abs=1e-5)


@pytest.mark.parametrize("fps", [0, -1, float("nan"), "x"])
def test_bad_fps(fps):
    with pytest.raises(InputError, match="fps"):
        check_fps(fps)


def test_bad_span():
    with pytest.raises(InputError, match="start"):
        check_span(-1, None)
    with pytest.raises(InputError, match="end"):
        check_span(2.0, 1.0)
    assert check_span(0, 3) == (0.0, 3.0)
