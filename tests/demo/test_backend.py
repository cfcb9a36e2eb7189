"""Tests of the Gradio demo's logic (audiodetic.demo) on a tiny random-weight model, without a browser."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from surfaces_fixtures import EncodeCounter, scene, shared_tiny_model, write_tone

from audiodetic.demo import backend as demo_backend
from audiodetic.demo import media, page
from audiodetic.demo.media import EXAMPLE_FILES, write_example_media
from audiodetic.structures import Detections


@pytest.fixture(scope="module")
def model():
    return shared_tiny_model(0)


@pytest.fixture()
def sounds(tmp_path):
    return [str(write_tone(tmp_path / "siren.wav", 1000.0)), str(write_tone(tmp_path / "engine.wav", 80.0))]


def test_image_encoded_once_while_prompts_and_threshold_change(model, sounds) -> None:
    backend = demo_backend.DemoBackend({"tiny": model})
    counter = EncodeCounter(model.detector)
    try:
        image = scene()
        session = None
        outputs = []
        for files, names, texts, threshold in [
            (sounds, None, "", 0.3),
            (sounds[:1], [["siren.wav", "alarm"]], "a car", 0.5),
            (sounds, None, "", 0.9),
        ]:
            annotated, rows, json_path, session, dets = backend.run(image, files, names, None, None, texts,
                                                                   threshold, "tiny", session)
            outputs.append((annotated, rows, json_path, dets))
        assert counter.calls == 1, "only the first request may encode the image"
        backend.run(scene(seed=5), sounds, None, None, None, "", 0.3, "tiny", session)
        assert counter.calls == 2, "a new image is encoded"
    finally:
        del model.detector.encode
    annotated, rows, json_path, dets = outputs[0]
    assert annotated.size == (image.shape[1], image.shape[0])
    assert dets.names == ("siren", "engine") and len(rows) == len(dets) > 0
    assert rows[0][0] in dets.names and rows[0][1] == pytest.approx(float(dets.scores.max()), abs=1e-3)
    assert outputs[1][3].names == ("alarm", "a car")
    assert all(row[1] > 0.9 for row in outputs[2][1])
    saved = json.loads(open(json_path).read())
    assert isinstance(saved, list) and saved[0]["width"] == image.shape[1]
    back = Detections.from_json_dict(saved[0])
    assert len(back) == len(dets)


def test_same_name_files_are_one_prompt_and_recording_is_added(tmp_path, sounds) -> None:
    recorded = str(write_tone(tmp_path / "mic.wav", 500.0, sample_rate=48000, channels=2))
    table = [["siren.wav", "noise"], ["engine.wav", "noise"]]
    collected = demo_backend.collect_sounds(sounds, table, recorded, "  my voice ")
    assert collected == {"noise": sounds, "my voice": [recorded]}
    assert demo_backend.collect_sounds(sounds, None, recorded, "") == {"siren": [sounds[0]], "engine": [sounds[1]],
                                                              "recording": [recorded]}
    rows = demo_backend.name_rows(sounds, [["siren.wav", "alarm"]])
    assert rows == [["siren.wav", "alarm"], ["engine.wav", "engine"]]


def test_errors_are_messages(model, tmp_path, sounds) -> None:
    backend = demo_backend.DemoBackend({"tiny": model})
    with pytest.raises(ValueError, match="Add an image"):
        backend.run(None, sounds, None, None, None, "", 0.5, "tiny", None)
    with pytest.raises(ValueError, match="at least one sound"):
        backend.run(scene(), [], None, None, None, " , ", 0.5, "tiny", None)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match="broken.wav"):
        backend.run(scene(), [str(broken)], None, None, None, "", 0.5, "tiny", None)
    with pytest.raises(ValueError, match="unknown model"):
        backend.model("nope")


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

    demo = page.build_demo(model, concurrency_limit=1)
    assert isinstance(demo, gr.Blocks)
    assert demo._queue is not None and demo._queue.default_concurrency_limit == 1
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"input-image", "sound-files", "annotated", "results-table", "detect-button"} <= ids


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


def test_cli_demo_parser() -> None:
    from audiodetic.cli import build_parser

    args = build_parser().parse_args(["demo", "--detector", "/x/model.pth", "--audio-weights", "/x/ib.pth",
                                      "--host", "0.0.0.0", "--port", "9000"])
    assert (args.detector, args.audio_weights, args.host, args.port) == ("/x/model.pth", "/x/ib.pth", "0.0.0.0",
                                                                         9000)
    assert args.func.__module__ == "audiodetic.cli.demo"


def test_missing_weights_is_a_message_and_the_next_request_works(model, sounds) -> None:
    from audiodetic.errors import WeightsNotFoundError
    from audiodetic.model import AudiodeticModel, Deferred

    def absent():
        raise WeightsNotFoundError("imagebind_huge is not in the cache and AUDIODETIC_OFFLINE=1 forbids downloads")

    broken = AudiodeticModel(model.detector, audio_encoder=Deferred(absent, "absent"), bridge=model.bridge(),
                             text_encoder=model.text_encoder(), name="no-audio-weights")
    backend = demo_backend.DemoBackend({"no-audio-weights": broken})
    with pytest.raises(FileNotFoundError, match="imagebind_huge"):
        backend.run(scene(), sounds, None, None, None, "", 0.5, None, None)
    *_, detections = backend.run(scene(), [], None, None, None, "a car", 0.5, None, None)
    assert detections.names == ("a car",)
