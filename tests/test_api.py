"""Tests of audiodetic.api on tiny random-weight models and synthetic media."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image
from surfaces_fixtures import EncodeCounter, scene, shared_tiny_model, tiny_detector, write_tone

import audiodetic
from audiodetic import api
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def detector():
    return shared_tiny_model(0).detector


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    rng = np.random.default_rng(3)
    return Vocabulary(("alpha", "beta", "gamma"), rng.normal(size=(3, 512)))


def _same(a: Detections, b: Detections) -> None:
    assert a.names == b.names and a.image_size == b.image_size
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_detect_with_vocabulary_matches_detector(detector, vocab) -> None:
    model = api.AudiodeticModel(detector)
    image = scene()
    result = model.detect(image, vocab, score_threshold=0.3)
    assert isinstance(result, Detections) and result.image_size == image.shape[:2]
    assert len(result) > 0, "the tiny random detector should find something at 0.3"
    with torch.inference_mode():
        reference = detector.detect(image, vocab, score_threshold=0.3)
    _same(result, reference)
    assert set(result.labels) <= set(vocab.names)


def test_image_forms_and_batches(detector, vocab, tmp_path) -> None:
    model = api.AudiodeticModel(detector)
    image, other = scene(seed=0), scene(80, 112, seed=1)
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)
    single = model.detect(Image.fromarray(image), vocabulary=vocab, score_threshold=0.3, with_masks=False)
    batch = model.detect([path, other], vocabulary=vocab, score_threshold=0.3, with_masks=False)
    assert single.masks is None
    assert isinstance(batch, list) and len(batch) == 2
    _same(batch[0], single)
    assert batch[1].image_size == (80, 112)
    with pytest.raises(ValueError, match=r"image\[1\]"):
        model.detect([image, np.zeros((4, 4), np.float32)], vocabulary=vocab)


def test_predictor_encodes_once_and_matches_detect(detector, vocab) -> None:
    model = api.AudiodeticModel(detector)
    image = scene()
    counter = EncodeCounter(detector)
    try:
        predictor = model.predictor()
        predictor.set_image(image)
        first = predictor.predict(vocab, score_threshold=0.3)
        second = predictor.predict(vocab.select(["beta"]), score_threshold=0.6)
        assert counter.calls == 1
    finally:
        del detector.encode  # restore the class method
    _same(first, model.detect(image, vocab, score_threshold=0.3))
    assert second.names == ("beta",)
    assert np.all(second.scores > 0.6)


def test_errors_name_the_argument(detector, vocab) -> None:
    model = api.AudiodeticModel(detector)
    image = scene()
    with pytest.raises(ValueError, match="audio_prompts"):
        model.detect(image)
    with pytest.raises(ValueError, match="score_threshold"):
        model.detect(image, vocab, score_threshold=2)
    with pytest.raises(TypeError, match="image"):
        model.detect(object(), vocab)
    with pytest.raises(ValueError, match="no image set"):
        model.predictor().predict(vocab)
    with pytest.raises(TypeError, match="model"):
        api.detect(image, vocabulary=vocab, model=42)
    with pytest.raises(ValueError, match="audio encoder"):
        model.detect(image, {"dog": (np.zeros(16000, np.float32), 16000)})
    with pytest.raises(ValueError, match="512-d"):
        model.detect(image, vocabulary=np.ones((2, 64), np.float32))


def test_top_level_detect_and_exports(detector, vocab) -> None:
    model = api.AudiodeticModel(detector)
    result = audiodetic.detect(scene(), vocabulary=vocab, model=model, score_threshold=0.3)
    _same(result, model.detect(scene(), vocab, score_threshold=0.3))
    assert audiodetic.load is api.load and audiodetic.list_models is api.list_models


def test_default_model_loaded_once_across_threads(monkeypatch, detector, vocab) -> None:
    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        return api.AudiodeticModel(detector)

    monkeypatch.setattr(api, "load", fake_load)
    api.clear_cache()
    results = []
    threads = [threading.Thread(target=lambda: results.append(api.detect(scene(), vocabulary=vocab)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.clear_cache()
    assert len(calls) == 1 and calls[0][0] is None
    assert len(results) == 3


def test_sound_and_text_prompts(tmp_path) -> None:
    model = shared_tiny_model(0)
    image = scene()
    bark = write_tone(tmp_path / "bark.wav", 300.0)
    siren = write_tone(tmp_path / "siren.wav", 1200.0, sample_rate=22050, channels=2)
    vocabulary = model.vocabulary([bark, siren], ["a dog"])
    assert vocabulary.names == ("bark", "siren", "a dog") and vocabulary.embeddings.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vocabulary.embeddings, axis=1), 1.0, atol=1e-5)
    result = model.detect(image, [bark, siren], text_prompts=["a dog"], score_threshold=0.3, with_masks=False)
    assert result.names == vocabulary.names and len(result) > 0
    # a (waveform, rate) pair with the same samples as the file gives the same embedding
    from audiodetic.encoders.audio.io import load_audio

    pair = load_audio(bark)
    from_pair = model.vocabulary({"bark": pair})
    np.testing.assert_allclose(from_pair.embeddings[0], vocabulary.embeddings[0], atol=1e-5)
    # several clips under one name give one prompt, different from either clip alone
    both = model.vocabulary({"noise": [bark, siren]})
    assert both.names == ("noise",)
    assert not np.allclose(both.embeddings[0], vocabulary.embeddings[0], atol=1e-3)
    with pytest.raises(ValueError, match="unique"):
        model.vocabulary({"dog": bark}, {"dog": "a dog"})


def test_bad_audio_file_is_a_clear_error(tmp_path) -> None:
    model = shared_tiny_model(0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(ValueError, match="broken.wav"):
        model.detect(scene(), broken)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        model.detect(scene(), tmp_path / "missing.wav")


def test_list_models_names_the_default() -> None:
    names = api.list_models()
    assert api.DEFAULT_DETECTOR in names
    assert all(isinstance(name, str) for name in names)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_matches_cpu(vocab) -> None:
    detector = tiny_detector(0)
    image = scene()
    cpu = api.AudiodeticModel(detector).detect(image, vocab, score_threshold=0.3)
    model = api.AudiodeticModel(tiny_detector(0).to("cuda"), device="cuda", half=True)
    cuda = model.detect(image, vocab, score_threshold=0.3)
    assert cuda.boxes.dtype == np.float32 and cuda.image_size == cpu.image_size
    assert abs(len(cuda) - len(cpu)) <= max(2, len(cpu) // 10)


def test_wav2clip_weights_prompt_without_a_bridge(tmp_path) -> None:
    """Audio weights named Wav2CLIP load the Wav2CLIP encoder; its CLIP-space sounds skip the bridge."""
    pytest.importorskip("torchvision")
    from wav2clip_layout import released_wav2clip_layout

    from audiodetic.encoders.audio.wav2clip import Wav2ClipEncoder
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    state, _, _ = released_wav2clip_layout()
    weights = tmp_path / "Wav2CLIP.pt"
    torch.save(state, weights)
    checkpoint = make_detic_checkpoint(tmp_path / "tiny.pth", "tiny")
    model = audiodetic.load(checkpoint, audio_weights=weights, text_weights=None, bridge="linear")
    bark = write_tone(tmp_path / "bark.wav", 300.0)
    vocabulary = model.vocabulary({"bark": bark})
    expected = Wav2ClipEncoder.from_checkpoint(weights).encode_sources([bark]).numpy()[0]
    np.testing.assert_allclose(vocabulary.embeddings[0], expected / np.linalg.norm(expected), atol=1e-5)
    with pytest.raises(ValueError, match="no bridge"):
        model.bridge()  # none was fitted: Wav2CLIP sounds are in CLIP space already


def test_a_saved_bridge_of_another_width_is_refused_when_built(tmp_path) -> None:
    from audiodetic.bridge import LinearBridge
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    wide = LinearBridge.random(1024, 512, seed=0).save(tmp_path / "wide.npz")
    model = audiodetic.load(make_detic_checkpoint(tmp_path / "tiny.pth", "tiny"), text_weights=None, bridge=wide,
                            audio_weights=write_imagebind_checkpoint(tmp_path / "ib.pth", "tiny", seed=0))
    with pytest.raises(ValueError, match="1024-d inputs but the audio encoder outputs 64-d"):
        model.bridge()
