"""audiodetic.model: one rule per input across the layers (rates, thresholds, images, bridges), image prompts, and
the one public Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from surfaces_fixtures import scene, shared_tiny_model, tiny_audio_encoder

import audiodetic
from audiodetic.bridge import LinearBridge
from audiodetic.encoders.clip_image import ClipImageEncoder
from audiodetic.model import AudiodeticModel, Predictor


def test_a_float_sample_rate_is_the_same_rate_everywhere() -> None:
    model = shared_tiny_model(0)
    wave = (0.3 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    as_int = model.vocabulary({"dog": (wave, 16000)})
    as_float = model.vocabulary({"dog": (wave, 16000.0)})
    np.testing.assert_array_equal(as_int.embeddings, as_float.embeddings)
    with pytest.raises(ValueError, match=r"prompt 'dog'.*whole number of Hz, got 16000\.5"):
        model.vocabulary({"dog": (wave, 16000.5)})
    with pytest.raises(FileNotFoundError, match=r"prompt 'cat'.*nope\.wav"):
        model.vocabulary({"cat": "nope.wav"})


def test_one_threshold_rule_for_model_predictor_and_detector() -> None:
    model = shared_tiny_model(0)
    vocabulary = model.vocabulary(text_prompts=["a dog"])
    image = scene()
    assert len(model.detect(image, vocabulary=vocabulary, score_threshold=1.0)) == 0  # [0, 1]: 1.0 keeps none
    predictor = model.predictor(image)
    assert len(predictor.predict(vocabulary=vocabulary, score_threshold=1.0)) == 0
    with torch.inference_mode():
        assert len(model.detector.detect(image, vocabulary, score_threshold=1.0)) == 0
    for call in (lambda: model.detect(image, vocabulary=vocabulary, score_threshold=1.5),
                 lambda: predictor.predict(vocabulary=vocabulary, score_threshold=1.5),
                 lambda: model.detector.detect(image, vocabulary, score_threshold=1.5)):
        with pytest.raises(ValueError, match=r"score_threshold must be a number in \[0, 1\], got 1\.5"):
            call()


def test_image_prompts_are_clip_image_embeddings_read_upright(tmp_path) -> None:
    image_encoder = ClipImageEncoder.tiny(seed=0)
    model = AudiodeticModel(shared_tiny_model(0).detector, image_encoder=image_encoder)
    upright = scene(48, 64, seed=4)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels must be turned 90 degrees clockwise to be upright
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif, quality=100)
    vocabulary = model.vocabulary(image_prompts={"mine": rotated, "array": upright})
    expected = image_encoder.encode([upright]).numpy()[0]
    np.testing.assert_allclose(vocabulary.embeddings[1], expected / np.linalg.norm(expected), atol=1e-6)
    # the file went through the same EXIF-aware reader as the detector (JPEG rounding aside)
    assert float(vocabulary.embeddings[0] @ vocabulary.embeddings[1]) > 0.99
    with pytest.raises(ValueError, match="this model has no image encoder"):
        shared_tiny_model(0).vocabulary(image_prompts={"x": upright})
    with pytest.raises(ValueError, match="image_prompts"):
        model.vocabulary(image_prompts=[upright])


def test_the_public_predictor_sets_then_predicts() -> None:
    model = shared_tiny_model(0)
    predictor = model.predictor()
    assert isinstance(predictor, Predictor) and audiodetic.Predictor is Predictor
    assert predictor.image_size is None and not predictor.is_image_set
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict(text_prompts=["a dog"])
    assert predictor.set_image(scene()) is None and predictor.image_size == (96, 128)
    one_shot = model.detect(scene(), text_prompts=["a dog"], score_threshold=0.3)
    again = predictor.predict(text_prompts=["a dog"], score_threshold=0.3)
    np.testing.assert_allclose(again.boxes, one_shot.boxes, atol=1e-4)
    predictor.reset_image()
    assert predictor.image_size is None
    assert not hasattr(model, "set_image")


def test_bridge_specs_fail_at_load_time(tmp_path) -> None:
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    checkpoint = make_detic_checkpoint(tmp_path / "tiny.pth", "tiny")
    with pytest.raises(ValueError, match="unknown bridge kind 'quadratic'"):
        audiodetic.load(checkpoint, bridge="quadratic")
    with pytest.raises(FileNotFoundError, match="bridge file not found: .*missing.npz"):
        audiodetic.load(checkpoint, bridge=tmp_path / "missing.npz")


def test_clip_space_sounds_skip_the_bridge_by_space_not_by_name() -> None:
    class ClipSpaceSounds:
        """An audio encoder whose sounds are already CLIP ViT-B/32 image embeddings (like Wav2CLIP)."""

        space = "clip-vit-b32-image"
        embed_dim = 512
        fingerprint = "clip-space-test"

        def encode_sources(self, sources):
            return np.tile(np.arange(1, 513, dtype=np.float32), (len(sources), 1))

    bridge = LinearBridge.random(512, 512, seed=1)  # would scramble the rows if it were (wrongly) applied
    model = AudiodeticModel(shared_tiny_model(0).detector, audio_encoder=ClipSpaceSounds(), bridge=bridge)
    vocabulary = model.vocabulary({"x": (np.zeros(1600, np.float32), 16000)})
    expected = np.arange(1, 513, dtype=np.float64)
    np.testing.assert_allclose(vocabulary.embeddings[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert tiny_audio_encoder(0).space == "imagebind"
