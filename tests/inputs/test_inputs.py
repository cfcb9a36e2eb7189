"""Tests of the argument parsing behind audiodetic.detect (no models needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from audiodetic.inputs import as_rgb_array, check_device, check_threshold, parse_audio_prompts, parse_text_prompts


def test_audio_prompt_forms(tmp_path) -> None:
    wave = (np.zeros(1600, np.float32), 16000)
    assert parse_audio_prompts(None) == {}
    assert parse_audio_prompts("sounds/dog_bark.wav") == {"dog_bark": ["sounds/dog_bark.wav"]}
    assert parse_audio_prompts(tmp_path / "siren.flac") == {"siren": [tmp_path / "siren.flac"]}
    assert list(parse_audio_prompts(wave)) == ["sound_1"]
    listed = parse_audio_prompts(["a/dog.wav", wave, "b/cat.ogg"])
    assert list(listed) == ["dog", "sound_2", "cat"]
    mapped = parse_audio_prompts({"dog": ["1.wav", "2.wav"], "bird": wave})
    assert mapped["dog"] == ["1.wav", "2.wav"] and mapped["bird"][0] is wave


@pytest.mark.parametrize(
    "value, error, message",
    [
        ([], ValueError, "empty"),
        ({}, ValueError, "empty"),
        (["a/x.wav", "b/x.wav"], ValueError, "stem 'x'"),
        ({"": "a.wav"}, ValueError, "non-empty"),
        ({"dog": []}, ValueError, "dog"),
        ({"dog": [3]}, ValueError, "not an audio source"),
        ([1.5], ValueError, r"audio_prompts\[0\]"),
        (42, TypeError, "file path"),
    ],
)
def test_audio_prompt_errors(value, error, message) -> None:
    with pytest.raises(error, match=message):
        parse_audio_prompts(value)


def test_text_prompt_forms_and_errors() -> None:
    assert parse_text_prompts("a dog") == {"a dog": "a dog"}
    assert parse_text_prompts(["dog", " cat "]) == {"dog": "dog", "cat": "cat"}
    assert parse_text_prompts({"pet": "a dog"}) == {"pet": "a dog"}
    with pytest.raises(ValueError, match="non-empty"):
        parse_text_prompts([""])
    with pytest.raises(ValueError, match="twice"):
        parse_text_prompts(["dog", "dog"])
    with pytest.raises(TypeError, match="text_prompts"):
        parse_text_prompts(3)


def test_images_and_thresholds(tmp_path) -> None:
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = tmp_path / "x.png"
    Image.fromarray(array).save(path)
    np.testing.assert_array_equal(as_rgb_array(path), array)
    np.testing.assert_array_equal(as_rgb_array(Image.fromarray(array)), array)
    np.testing.assert_array_equal(as_rgb_array(Image.fromarray(array).convert("L")).shape, (2, 3, 3))
    with pytest.raises(ValueError, match=r"image: arrays must be uint8"):
        as_rgb_array(array.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        as_rgb_array(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(ValueError, match="cannot read"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        as_rgb_array(tmp_path / "bad.png")
    assert check_threshold(0.25) == 0.25
    for bad in (-0.1, 1.5, "x", None):
        with pytest.raises(ValueError, match="score_threshold"):
            check_threshold(bad)


def test_devices() -> None:
    import torch

    assert check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device"):
        check_device("tpu")
    with pytest.raises(ValueError, match="half=True needs a CUDA device"):
        check_device("cpu", half=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")
