"""ClipImageEncoder: OpenAI-layout checkpoints give open_clip's encode_image of CLIP-preprocessed images."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP
from PIL import Image as PILImage

from audiodetic.encoders.cache import EmbeddingCache
from audiodetic.encoders.clip_image import ClipImageConfig, ClipImageEncoder
from audiodetic.encoders.clip_text import ClipTextEncoder
from audiodetic.errors import CheckpointError
from audiodetic.prompts import Image, Mix, build_vocabulary
from audiodetic.spaces import CLIP_IMAGE_SPACE


@pytest.fixture(scope="module")
def reference() -> CLIP:
    torch.manual_seed(7)
    model = CLIP(embed_dim=512, vision_cfg={"image_size": 64, "layers": 2, "width": 64, "patch_size": 32},
                 text_cfg={"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
                 quick_gelu=True).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model


def _picture(seed: int, size=(90, 70)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_matches_open_clip_encode_image(tmp_path, reference):
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.script(reference).save(str(path))  # OpenAI ships a TorchScript archive
    encoder = ClipImageEncoder.from_checkpoint(path)
    assert encoder.embed_dim == 512 and encoder.space == CLIP_IMAGE_SPACE
    pictures = [_picture(0), _picture(1, (40, 120))]
    preprocess = open_clip.image_transform(64, is_train=False)
    with torch.no_grad():
        expected = reference.encode_image(torch.stack([preprocess(PILImage.fromarray(p)) for p in pictures]))
    png = tmp_path / "p.png"
    PILImage.fromarray(pictures[1]).save(png)
    got = encoder.encode([pictures[0], str(png)])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert ClipImageConfig.from_state_dict({f"visual.{k}": v for k, v in reference.visual.state_dict().items()}) \
        == ClipImageConfig.tiny()


def test_image_prompts_in_vocabularies(reference):
    image_encoder = ClipImageEncoder.tiny(seed=0)
    text_encoder = ClipTextEncoder.tiny(seed=0)
    a, b = _picture(2), _picture(3)
    cache = EmbeddingCache()
    vocab = build_vocabulary({"one": Image(a), "both": Image([a, PILImage.fromarray(b)]),
                              "mixed": Mix([(0.5, Image(a)), (0.5, "dog")])},
                             image_encoder=image_encoder, text_encoder=text_encoder, cache=cache)
    raw = image_encoder.encode([a, b]).numpy().astype(np.float64)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(vocab.embeddings[0], unit[0], atol=1e-5)
    mean = unit.mean(axis=0)
    np.testing.assert_allclose(vocab.embeddings[1], mean / np.linalg.norm(mean), atol=1e-5)
    dog = text_encoder.encode(["dog"]).numpy()[0].astype(np.float64)
    mixed = 0.5 * unit[0] + 0.5 * dog / np.linalg.norm(dog)
    np.testing.assert_allclose(vocab.embeddings[2], mixed / np.linalg.norm(mixed), atol=1e-5)
    assert cache.encoded == 3  # a (array), b (PIL), "dog": each once


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        Image(np.zeros((4, 4), np.uint8))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        Image(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="image encoder"):
        build_vocabulary({"x": Image(_picture(0))})
    bad = tmp_path / "bad.pt"
    torch.save({"text_projection": torch.zeros(4, 4)}, bad)
    with pytest.raises(CheckpointError, match="vision tower"):
        ClipImageEncoder.from_checkpoint(bad)
