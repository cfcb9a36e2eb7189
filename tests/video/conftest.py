"""Test videos for tests/video, written once per session with :mod:`audiodetic.testing.video_media`."""

from __future__ import annotations

import pytest

from audiodetic.testing.video_media import write_test_video


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("video_media")


@pytest.fixture(scope="session")
def clip_mp4(media_dir):
    """6 s, 64x48 at 10 fps, H.264 + AAC: tone 0-1.5 s, noise 1.5-2.5 s, speech-like 2.5-3 s, silence 3-6 s."""
    return write_test_video(media_dir / "clip.mp4")


@pytest.fixture(scope="session")
def silent_free_mp4(media_dir):
    """The same frames without an audio stream."""
    return write_test_video(media_dir / "no_audio.mp4", audio=False)
