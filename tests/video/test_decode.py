"""Streamed decoding on videos the tests write: counts, times, seeking, rotation and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic.errors import MissingFileError, VideoDecodeError
from audiodetic.testing.video_media import render_frame, write_frame_folder, write_test_video
from audiodetic.video.decode import VideoReader
from audiodetic.video.frame_folder import FrameFolderReader


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".mov", ".avi"])
def test_every_container_gives_the_sampled_frames_only_converting_those(tmp_path, suffix):
    video = write_test_video(tmp_path / f"v{suffix}", duration_s=2.0, fps=10)
    reader = VideoReader(video.path)
    assert (reader.info.width, reader.info.height) == (64, 48) and reader.info.fps == pytest.approx(10)
    assert reader.info.has_audio and reader.info.duration_s == pytest.approx(2.0, abs=0.15)
    frames = list(reader.frames(fps=2.0))
    assert reader.decoded_frames == 20 and reader.converted_frames == len(frames)
    assert all(f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8 for f in frames)
    if suffix == ".avi":  # the AVI muxer stamps the written frames 0, 0.2, 0.3, ..., 2.0 (one tick skipped)
        assert [f.time_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    else:
        assert [f.time_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=1e-3)
        assert [f.index for f in frames] == [0, 5, 10, 15]
    everything = list(VideoReader(video.path).frames(fps=None))
    assert len(everything) == 20


def test_frames_match_what_was_drawn(clip_mp4):
    frame = next(VideoReader(clip_mp4.path).frames(fps=2.0, start_s=1.0))
    truth = render_frame(frame.time_s, clip_mp4.size, clip_mp4.duration_s)
    assert np.abs(frame.rgb.astype(int) - truth).mean() < 6  # lossy H.264, same picture


def test_end_stops_decoding_and_start_seeks(tmp_path):
    video = write_test_video(tmp_path / "long.mkv", duration_s=60.0, fps=5, size=(32, 32), audio=False,
                             keyframe_interval=10)
    reader = VideoReader(video.path)
    early = list(reader.frames(fps=1.0, end_s=2.0))
    assert [f.time_s for f in early] == pytest.approx([0.0, 1.0])
    assert reader.decoded_frames <= 11  # 2 s of a 60-s file (300 frames)
    late = VideoReader(video.path)
    frames = list(late.frames(fps=1.0, start_s=50.0, end_s=53.0))
    assert [f.time_s for f in frames] == pytest.approx([50.0, 51.0, 52.0])
    assert [f.index for f in frames] == [250, 255, 260]
    assert late.decoded_frames <= 15 + 10  # from the keyframe before 50 s, not from the start


@pytest.mark.parametrize("rotation, turns", [(90, 1), (180, 2), (-90, -1)])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation, turns):
    video = write_test_video(tmp_path / "rotated.mp4", duration_s=1.0, fps=4, rotation=rotation)
    reader = VideoReader(video.path)
    assert reader.info.rotation == rotation % 360
    assert (reader.info.width, reader.info.height) == ((64, 48) if turns == 2 else (48, 64))
    frame = next(reader.frames(fps=1.0))
    stored = render_frame(0.0, video.size, video.duration_s)
    upright = np.rot90(stored, turns)  # counter-clockwise by the rotation, as players show it
    assert frame.rgb.shape == upright.shape
    assert np.abs(frame.rgb.astype(int) - upright).mean() < 6
    assert np.abs(frame.rgb.astype(int) - np.rot90(stored, turns + 2)).mean() > 20


def test_variable_frame_rate(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.2, 2.0, 2.05]
    video = write_test_video(tmp_path / "vfr.mkv", frame_times=times, fps=10)
    assert [f.time_s for f in VideoReader(video.path).frames(fps=2.0)] == pytest.approx([0.0, 0.5, 1.2, 2.0])
    assert [f.time_s for f in VideoReader(video.path).frames(fps=None)] == pytest.approx(times)


def test_4k_frames(tmp_path):
    video = write_test_video(tmp_path / "4k.mp4", duration_s=0.2, fps=10, size=(3840, 2160), audio=False)
    frames = list(VideoReader(video.path).frames(fps=None))
    assert len(frames) == 2 and frames[0].rgb.shape == (2160, 3840, 3)


def test_bad_files_get_clear_errors(tmp_path, clip_mp4):
    with pytest.raises(MissingFileError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")
    audio_only = write_test_video(tmp_path / "audio_only.mp4", video=False)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        VideoReader(audio_only.path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="cannot open"):
        VideoReader(empty)
    write_test_video(tmp_path / "zero.mkv", duration_s=0.0)
    with pytest.raises(VideoDecodeError, match="zero-length|cannot open"):
        VideoReader(tmp_path / "zero.mkv")
    cut = tmp_path / "cut.mp4"  # MP4 keeps its index at the end: a cut file cannot be opened
    cut.write_bytes(clip_mp4.path.read_bytes()[: clip_mp4.path.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="cannot open"):
        VideoReader(cut)
    with pytest.raises(VideoDecodeError, match="folder"):
        VideoReader(tmp_path)
    silent = write_test_video(tmp_path / "mute.mp4", duration_s=1.0, audio=False)
    with pytest.raises(VideoDecodeError, match="no audio stream"):
        next(VideoReader(silent.path).audio_blocks())


def test_a_truncated_stream_gives_its_frames_then_an_error_naming_the_time(tmp_path):
    video = write_test_video(tmp_path / "whole.mkv", duration_s=6.0)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(video.path.read_bytes()[: video.path.stat().st_size * 6 // 10])
    reader = VideoReader(cut)
    got = []
    with pytest.raises(VideoDecodeError, match=r"truncated or damaged after \d+\.\d\d s") as caught:
        for frame in reader.frames(fps=2.0):
            got.append(frame.time_s)
    assert 1.0 <= len(got) / 2 <= 5.0 and caught.value.time_s == pytest.approx(got[-1], abs=0.6)


def test_audio_blocks_cover_the_soundtrack(clip_mp4):
    reader = VideoReader(clip_mp4.path)
    blocks = list(reader.audio_blocks())
    total = sum(b.samples.shape[1] for b in blocks)
    assert blocks[0].rate == 16000 and blocks[0].samples.dtype == np.float32
    assert total / 16000 == pytest.approx(6.0, abs=0.1)
    later = next(reader.audio_blocks(start_s=4.0))
    assert later.first_sample / 16000 == pytest.approx(4.0, abs=0.2)


def test_frame_folder_reads_only_sampled_frames(tmp_path):
    folder = write_frame_folder(tmp_path / "frames", tmp_path / "sound.wav", duration_s=3.0, fps=4)
    reader = FrameFolderReader(folder.path, tmp_path / "sound.wav", frame_rate=4)
    frames = list(reader.frames(fps=1.0, start_s=1.0))
    assert [f.index for f in frames] == [4, 8] and [f.time_s for f in frames] == [1.0, 2.0]
    assert reader.converted_frames == 2 and reader.info.duration_s == 3.0
    total = sum(b.samples.shape[1] for b in reader.audio_blocks())
    assert total == 3 * 16000


def test_a_ten_hour_file_is_not_read_to_its_end(tmp_path):
    # 10 hours: one 16x16 frame every 10 s, a keyframe every minute (a small file that claims 36 000 s)
    video = write_test_video(tmp_path / "ten_hours.mkv", frame_times=[10.0 * k for k in range(3600)], fps=1,
                             size=(16, 16), audio=False, keyframe_interval=6)
    reader = VideoReader(video.path)
    assert reader.info.duration_s > 35_000
    assert [f.time_s for f in reader.frames(fps=1, end_s=25)] == [0.0, 10.0, 20.0]
    assert reader.decoded_frames == 3
    late = VideoReader(video.path)
    assert [f.time_s for f in late.frames(fps=1, start_s=30_000, end_s=30_025)] == [30000.0, 30010.0, 30020.0]
    assert late.decoded_frames <= 3 + 6  # from the keyframe before 30 000 s
