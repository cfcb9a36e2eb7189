"""Tests of the Gradio demo's logic (audiodetic.demo) on a tiny random-weight model, without a browser."""

from __future__ import annotations

import gc
import json
import wave
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from surfaces_fixtures import EncodeCounter, scene, shared_tiny_model, write_tone
from upload_media import header_only_png, text_file

from audiodetic.demo import backend as demo_backend
from audiodetic.demo import media
from audiodetic.demo.media import EXAMPLE_FILES, write_example_media
from audiodetic.demo.uploads import UploadLimits, collect_sounds, name_rows
from audiodetic.structures import Detections


@pytest.fixture(scope="module")
def model():
    return shared_tiny_model(0)


@pytest.fixture()
def sounds(tmp_path):
    return [str(write_tone(tmp_path / "siren.wav", 1000.0)), str(write_tone(tmp_path / "engine.wav", 80.0))]


def picture(path, height: int = 96, width: int = 128, seed: int = 0) -> str:
    """A synthetic picture written as PNG (the page hands the backend upload paths)."""
    Image.fromarray(scene(height, width, seed=seed)).save(path)
    return str(path)


def test_image_encoded_once_while_prompts_and_threshold_change(model, sounds, tmp_path) -> None:
    backend = demo_backend.DemoBackend({"tiny": model})
    counter = EncodeCounter(model.detector)
    try:
        image = picture(tmp_path / "street.png")
        results = []
        for files, names, texts, threshold in [
            (sounds, None, "", 0.3),
            (sounds[:1], [["siren.wav", "alarm"]], "a car", 0.5),
            (sounds, None, "", 0.9),
        ]:
            results.append(backend.run(image, files, names, None, None, texts, threshold, "tiny", "session-1"))
            saved = json.loads(Path(results[-1].json_path).read_text())  # the session's file: the next request rewrites it
        assert counter.calls == 1, "only the first request may encode the image"
        backend.run(picture(tmp_path / "other.png", seed=5), sounds, None, None, None, "", 0.3, "tiny", "session-1")
        assert counter.calls == 2, "a new image is encoded"
        backend.run(image, sounds, None, None, None, "", 0.3, "tiny", "session-2")
        assert counter.calls == 3, "another session never uses this session's encoding"
    finally:
        del model.detector.encode
    first = results[0]
    assert first.annotated.size == (128, 96)
    assert first.detections.names == ("siren", "engine") and len(first.rows) == len(first.detections) > 0
    assert first.rows[0][0] in first.detections.names
    assert first.rows[0][1] == pytest.approx(float(first.detections.scores.max()), abs=1e-3)
    assert results[1].detections.names == ("alarm", "a car")
    assert all(row[1] > 0.9 for row in results[2].rows)
    assert isinstance(saved, list) and saved[0]["width"] == 128 and saved[0]["image"] == "street.png"
    assert len(Detections.from_json_dict(saved[0])) == len(results[2].detections)
    expected = model.detect(image, {"siren": sounds[0], "engine": sounds[1]}, score_threshold=0.3)
    assert first.rows == demo_backend.table_rows(expected)


def test_encodings_held_are_bounded_and_freed(model, sounds, tmp_path) -> None:
    """At most max_sessions encoded pictures are held; a dropped one is freed, and its session encodes again."""
    backend = demo_backend.DemoBackend({"tiny": model}, max_sessions=2)
    image = picture(tmp_path / "street.png")
    counter = EncodeCounter(model.detector)
    held = {}
    try:
        for session_id in ("a", "b", "c"):
            backend.run(image, sounds[:1], None, None, None, "", 0.5, "tiny", session_id)
            with backend.sessions.use(session_id) as session:
                held[session_id] = weakref.ref(session.predictor)
        assert len(backend.sessions) == 2 and "a" not in backend.sessions
        gc.collect()
        assert held["a"]() is None, "the dropped session's encoding must be freed"
        assert held["b"]() is not None and held["c"]() is not None
        backend.forget("b")  # a closed tab
        gc.collect()
        assert held["b"]() is None and len(backend.sessions) == 1
        backend.run(image, sounds[:1], None, None, None, "", 0.5, "tiny", "a")
        assert counter.calls == 4, "three first requests, and 'a' again after it was dropped"
    finally:
        del model.detector.encode
        backend.close()


def test_same_name_files_are_one_prompt_and_recording_is_added(tmp_path, sounds) -> None:
    recorded = str(write_tone(tmp_path / "mic.wav", 500.0, sample_rate=48000, channels=2))
    table = [["siren.wav", "noise"], ["engine.wav", "noise"]]
    assert collect_sounds(sounds, table, recorded, "  my voice ") == {"noise": sounds, "my voice": [recorded]}
    assert collect_sounds(sounds, None, recorded, "") == {"siren": [sounds[0]], "engine": [sounds[1]],
                                                          "recording": [recorded]}
    assert name_rows(sounds, [["siren.wav", "alarm"]]) == [["siren.wav", "alarm"], ["engine.wav", "engine"]]


def test_errors_are_messages(model, tmp_path, sounds) -> None:
    backend = demo_backend.DemoBackend({"tiny": model})
    image = picture(tmp_path / "street.png")
    with pytest.raises(ValueError, match="Add an image"):
        backend.run(None, sounds, None, None, None, "", 0.5, "tiny", None)
    with pytest.raises(ValueError, match="at least one sound"):
        backend.run(image, [], None, None, None, " , ", 0.5, "tiny", None)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match="broken.wav"):
        backend.run(image, [str(broken)], None, None, None, "", 0.5, "tiny", None)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        backend.run(image, sounds, None, None, None, "", 1.5, "tiny", None)
    with pytest.raises(ValueError, match="unknown model"):
        backend.model("nope")


def test_upload_limits_and_non_media_are_refused_before_any_work(model, tmp_path) -> None:
    """Each limit is in its message, and nothing is decoded or encoded for a refused request."""
    limits = UploadLimits(max_bytes=200_000, max_image_pixels=20_000, max_audio_seconds=1.5)
    backend = demo_backend.DemoBackend({"tiny": model}, limits=limits)
    image = picture(tmp_path / "street.png")  # 128 x 96 = 12288 pixels
    fresh = [str(write_tone(tmp_path / "fresh.wav", 1717.0))]  # a clip no other test encodes (no cache hit)
    long_sound = str(write_tone(tmp_path / "long.wav", 300.0, seconds=2.0))
    big_sound = tmp_path / "big.wav"
    big_sound.write_bytes(b"\0" * 300_000)
    cases = [
        (str(header_only_png(tmp_path / "huge.png", 8000, 8000)), fresh,
         r"huge\.png is 8000 x 8000 = 64,000,000 pixels \(64 megapixels\), above the limit of 20,000 pixels "
         r"\(0\.02 megapixels\); pictures of at most 0\.02 megapixels are accepted"),
        (picture(tmp_path / "wide.png", 100, 250), fresh, r"wide\.png is 250 x 100 = 25,000 pixels"),
        (str(text_file(tmp_path / "notes.png")), fresh, r"image: cannot read .*notes\.png as an image"),
        (str(tmp_path / "gone.png"), fresh, r"gone\.png"),
        (image, fresh + [long_sound], (r"sound 'long': .*long\.wav is 2\.0 s long; sounds of at most 1\.5 s are "
                                       r"accepted")),
        (image, fresh + [str(big_sound)], r"sound 'big': .*big\.wav is 293\.0 kB; files of at most 195\.3 kB"),
        (image, fresh + [str(text_file(tmp_path / "notes.wav"))], r"sound 'notes': .*notes\.wav.*cannot decode"),
    ]
    counter = EncodeCounter(model.detector)
    audio = model.audio_encoder()
    audio_calls = []
    original = audio.encode_sources
    audio.encode_sources = lambda sources: audio_calls.append(len(sources)) or original(sources)
    try:
        for picture_path, files, message in cases:
            with pytest.raises((ValueError, FileNotFoundError), match=message):
                backend.run(picture_path, files, None, None, None, "", 0.5, "tiny", "s")
        assert counter.calls == 0 and not audio_calls, "a refused request must not decode or encode anything"
        assert backend.run(image, fresh, None, None, None, "", 0.5, "tiny", "s").annotated.size == (128, 96)
        assert counter.calls == 1 and audio_calls == [1]
    finally:
        del model.detector.encode
        del audio.encode_sources
    loads = []
    lazy = demo_backend.DemoBackend({"tiny": model, "other": lambda: loads.append(1) or model}, limits=limits)
    with pytest.raises(ValueError, match="huge.png"):
        lazy.run(cases[0][0], fresh, None, None, None, "", 0.5, "other", "s")
    assert not loads, "a refused upload must not load a model either"
    with pytest.raises(ValueError, match="max_bytes must be a positive number"):
        UploadLimits(max_bytes=0)


def test_models_load_lazily_once(model) -> None:
    calls = []

    def loader():
        calls.append(1)
        return model

    backend = demo_backend.DemoBackend({"first": model, "second": loader})
    assert backend.model_names == ["first", "second"] and not calls
    assert backend.model("second") is model and backend.model("second") is model
    assert len(calls) == 1


def test_build_demo_has_queue_and_examples(model) -> None:
    import gradio as gr

    from audiodetic.demo import page

    demo = page.build_demo(model, concurrency_limit=1, max_queue=7)
    assert isinstance(demo, gr.Blocks)
    assert demo._queue is not None and demo._queue.default_concurrency_limit == 1 and demo._queue.max_size == 7
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"input-image", "sound-files", "annotated", "results-table", "detect-button", "heard-as"} <= ids
    assert {"input-video", "soundtrack", "video-fps", "video-button", "annotated-video", "tracks-table"} <= ids
    assert not list(Path(page.__file__).parent.glob("*.pyi")), "Gradio writes stubs beside component subclasses"


def test_example_media_are_small_and_valid(tmp_path) -> None:
    paths = write_example_media(tmp_path)
    assert set(paths) == set(EXAMPLE_FILES)
    for name, path in paths.items():
        assert path.stat().st_size < 100_000
        if name.endswith(".wav"):
            with wave.open(str(path)) as handle:
                assert handle.getframerate() == 16000 and handle.getnframes() == 24000
                samples = np.frombuffer(handle.readframes(24000), "<i2")
            assert np.abs(samples).max() > 10000  # audible, not silent
    shipped = media.example_dir()
    assert all((shipped / name).is_file() for name in EXAMPLE_FILES)


def test_missing_weights_is_a_message_and_the_next_request_works(model, sounds, tmp_path) -> None:
    from audiodetic.errors import WeightsNotFoundError
    from audiodetic.model import AudiodeticModel, Deferred

    def absent():
        raise WeightsNotFoundError("imagebind_huge is not in the cache and AUDIODETIC_OFFLINE=1 forbids downloads")

    broken = AudiodeticModel(model.detector, audio_encoder=Deferred(absent, "absent"), bridge=model.bridge(),
                             text_encoder=model.text_encoder(), name="no-audio-weights")
    backend = demo_backend.DemoBackend({"no-audio-weights": broken})
    image = picture(tmp_path / "street.png")
    with pytest.raises(FileNotFoundError, match="imagebind_huge"):
        backend.run(image, sounds, None, None, None, "", 0.5, None, None)
    assert backend.run(image, [], None, None, None, "a car", 0.5, None, None).detections.names == ("a car",)


def test_sounds_are_shown_as_what_the_retrieval_bridge_heard(tmp_path, sounds) -> None:
    from surfaces_fixtures import tiny_audio_encoder

    from audiodetic.bridge import RetrievalBridge
    from audiodetic.model import AudiodeticModel

    rng = np.random.default_rng(0)
    audio = tiny_audio_encoder(0)
    bridge = RetrievalBridge(rng.normal(size=(12, 64)), rng.normal(size=(12, 512)),
                             [f"label {i}" for i in range(12)], temperature=0.05, top_k=5)
    model = AudiodeticModel(shared_tiny_model(0).detector, audio_encoder=audio, bridge=bridge, name="retrieval")
    picture = tmp_path / "scene.png"
    Image.fromarray(scene()).save(picture)
    result = demo_backend.DemoBackend({"retrieval": model}).run(str(picture), sounds, None, None, None, "", 0.3,
                                                                None, None)
    assert [line.split(":")[0] for line in result.heard_as] == ["siren", "engine"]
    raw = audio.encode_sources([sounds[0]]).numpy()[0]
    expected = bridge.explain(raw / np.linalg.norm(raw))[0][:3]
    assert result.heard_as[0] == "siren: heard as " + ", ".join(f"{label} {weight:.2f}" for label, weight in expected)
    linear = demo_backend.DemoBackend({"tiny": shared_tiny_model(0)})
    assert linear.run(str(picture), sounds, None, None, None, "", 0.3, None, None).heard_as == []  # mixes no labels


def test_a_video_is_annotated_with_its_soundtrack_and_tracked(tmp_path) -> None:
    import av

    from audiodetic.testing.video_media import write_test_video

    clip = write_test_video(tmp_path / "clip.mp4", duration_s=3.0, fps=4.0, size=(160, 128))
    backend = demo_backend.DemoBackend({"tiny": shared_tiny_model(0)},
                                       limits=UploadLimits(max_video_seconds=2.0))
    result = backend.run_video(str(clip.path), None, None, None, None, "", 0.0, None, "s1", fps=2.0)
    with av.open(result.video_path) as container:
        assert container.streams.audio, "the original audio is copied into the annotated video"
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 4  # 2 frames per second over the first 2.0 s (max_video_seconds)
    assert all(len(row) == 6 for row in result.tracks)
    with pytest.raises(ValueError, match="Add a video first"):
        backend.run_video(None, None, None, None, None, "", 0.5, None, None)
    with pytest.raises(ValueError, match="soundtrack, or add a sound"):
        backend.run_video(str(clip.path), None, None, None, None, "", 0.5, None, None, soundtrack=False)
