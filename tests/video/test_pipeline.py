"""detect_video end to end on generated media with tiny random-weight models: structure, times, silence, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiodetic.errors import InputError, VideoDecodeError
from audiodetic.testing.video_media import write_frame_folder
from audiodetic.video import detect_video
from audiodetic.video.soundtrack import window_key

pytest.importorskip("supervision")
SMALL: dict = {}  # the detector's own input size (the tiny config fails below 128 px: GroupNorm on 1x1 maps)


def test_soundtrack_mode_frames_times_silence_and_heatmaps(clip_mp4, tiny_loaded_model):
    run = detect_video(clip_mp4.path, soundtrack=True, fps=2, model=tiny_loaded_model, score_threshold=0.3, **SMALL)
    assert run.expected_frames == 12 and run.window_s == 2.0
    results = list(run)
    assert [r.frame_index for r in results] == list(range(0, 60, 5))
    assert [r.time_s for r in results] == pytest.approx([k / 2 for k in range(12)])
    for result in results:
        window_start = result.time_s - 1.0  # windows are 2 s, centred on the frame
        if window_start >= 3.1:  # the whole window lies in the digital silence (3-6 s), clear of codec spill
            assert result.silent and len(result.detections) == 0 and result.heatmap is None
        if window_start <= 2.7:  # the window holds at least 0.3 s of tone, noise or speech
            assert result.silent is False and result.level_dbfs > -40
            assert result.heatmap.shape == (24, 32) and 0 <= result.heatmap.min() <= result.heatmap.max() <= 1
            assert result.heatmap.max() > 0
            assert set(result.detections.labels) <= {"soundtrack"} and len(result.detections) > 0
            assert np.all(result.detections.scores > 0.3)
        assert result.image.shape == (48, 64, 3)
        data = json.loads(json.dumps(result.to_json()))
        assert set(data) == {"frame_index", "time_s", "silent", "audio_level_dbfs", "detections", "heatmap"}
        for det in data["detections"]:
            assert set(det) == {"label", "class_id", "score", "box", "mask", "track_id"}
            assert det["track_id"] is None or det["track_id"] >= 1
    assert run.stats.silent_frames == sum(r.silent for r in results) >= 3
    assert run.stats.windows_encoded == sum(not r.silent for r in results)


def test_frames_sharing_a_window_encode_it_once(clip_mp4, tiny_loaded_model):
    run = detect_video(clip_mp4.path, soundtrack=True, fps=None, end_s=1.5, model=tiny_loaded_model,
                       score_threshold=0.6, with_masks=False, **SMALL)
    results = list(run)
    assert len(results) == 15  # every frame of 0-1.5 s at 10 fps
    keys = {window_key(r.time_s) for r in results if not r.silent}
    assert run.stats.windows_encoded == len(keys) == 7  # grid points 0, 0.25, ..., 1.5 in use
    assert run.encoder.encoded == len(keys)


def test_named_prompts_are_encoded_once_per_video(clip_mp4, tiny_loaded_model, tmp_path, monkeypatch):
    from audiodetic.testing.video_media import Segment, soundtrack_samples, write_wav

    sound = write_wav(tmp_path / "hum.wav", soundtrack_samples([Segment(0, 1, "tone", 217.0)], 1.0, 16000), 16000)
    encoder = tiny_loaded_model.audio_encoder()
    calls = []
    original = encoder.encode_sources

    def counting(sources, **kwargs):
        calls.extend(s for s in sources if isinstance(s, str))
        return original(sources, **kwargs)

    monkeypatch.setattr(encoder, "encode_sources", counting)
    run = detect_video(clip_mp4.path, {"hum": str(sound)}, text_prompts=["car"], soundtrack=True, fps=1,
                       model=tiny_loaded_model, score_threshold=0.3, **SMALL)
    results = list(run)
    assert calls == [str(sound)]
    assert run.vocabulary.names == ("hum", "car")
    for result in results:
        assert set(result.detections.labels) <= {"hum", "car", "soundtrack"}
        if result.silent:
            assert "soundtrack" not in result.detections.labels


def test_named_prompts_need_no_audio_but_the_soundtrack_does(silent_free_mp4, tiny_loaded_model):
    with pytest.raises(VideoDecodeError, match="no audio stream"):
        detect_video(silent_free_mp4.path, soundtrack=True, model=tiny_loaded_model)
    results = list(detect_video(silent_free_mp4.path, text_prompts=["car"], fps=1, model=tiny_loaded_model,
                                score_threshold=0.3, **SMALL))
    assert len(results) == 6 and all(r.silent is None and r.heatmap is None for r in results)
    assert all(r.to_json()["silent"] is None for r in results)


def test_span_and_frame_folder(clip_mp4, tiny_loaded_model, tmp_path):
    times = [r.time_s for r in detect_video(clip_mp4.path, text_prompts=["car"], start_s=1.0, end_s=3.0,
                                            model=tiny_loaded_model, **SMALL)]
    assert times == pytest.approx([1.0, 1.5, 2.0, 2.5])
    folder = write_frame_folder(tmp_path / "frames", tmp_path / "sound.wav", duration_s=6.0, fps=2)
    results = list(detect_video(folder.path, soundtrack=True, audio=tmp_path / "sound.wav", frame_rate=2, fps=1,
                                model=tiny_loaded_model, score_threshold=0.3, **SMALL))
    assert [r.frame_index for r in results] == [0, 2, 4, 6, 8, 10]
    assert [r.silent for r in results] == [False, False, False, False, True, True]  # WAV: exact digital silence


def test_public_name():
    import audiodetic

    assert audiodetic.detect_video is detect_video and "detect_video" in dir(audiodetic)


def test_bad_arguments(clip_mp4, tiny_loaded_model):
    with pytest.raises(InputError, match="no prompts"):
        detect_video(clip_mp4.path, model=tiny_loaded_model)
    with pytest.raises(InputError, match="past the end"):
        detect_video(clip_mp4.path, soundtrack=True, start_s=10.0, model=tiny_loaded_model)
    with pytest.raises(InputError, match="reserved"):
        detect_video(clip_mp4.path, text_prompts=["soundtrack"], model=tiny_loaded_model)
    with pytest.raises(InputError, match="frame rate"):
        detect_video(clip_mp4.path.parent, text_prompts=["car"], model=tiny_loaded_model)
    with pytest.raises(InputError, match="fps"):
        detect_video(clip_mp4.path, soundtrack=True, fps=0, model=tiny_loaded_model)
