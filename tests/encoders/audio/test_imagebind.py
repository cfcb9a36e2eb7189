"""ImageBind audio/text towers: math against explicit formulas, tower-only checkpoint loading, errors, goldens."""

from __future__ import annotations

import math

import pytest
import soundfile as sf
import torch
from audio_media import tone

from audiodetic.encoders.audio.features import imagebind_audio_input
from audiodetic.encoders.audio.imagebind import (
    AudioTowerConfig,
    ImageBindAudioEncoder,
    ImageBindTextEncoder,
    TextTowerConfig,
)
from audiodetic.encoders.audio.imagebind_tower import Block, checkpoint_key_map
from audiodetic.errors import CheckpointError
from audiodetic.testing.imagebind_checkpoints import imagebind_layout, imagebind_state_dict, write_imagebind_checkpoint


def explicit_block(block: Block, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The block written out: pre-LN attention with an optional appended bias key/value, then the GELU MLP."""
    length, batch, dim = x.shape
    heads = block.attn.num_heads
    h = torch.nn.functional.layer_norm(x, (dim,), block.norm_1.weight, block.norm_1.bias, 1e-6)
    q, k, v = (h @ block.attn.in_proj_weight.T + block.attn.in_proj_bias).chunk(3, dim=-1)
    if block.attn.bias_k is not None:
        k = torch.cat([k, block.attn.bias_k.expand(1, batch, dim)])
        v = torch.cat([v, block.attn.bias_v.expand(1, batch, dim)])
    split = lambda t: t.reshape(t.shape[0], batch * heads, dim // heads).transpose(0, 1)  # noqa: E731
    scores = split(q) @ split(k).transpose(1, 2) / math.sqrt(dim // heads)
    if mask is not None:
        scores = scores + mask
    attended = (scores.softmax(-1) @ split(v)).transpose(0, 1).reshape(length, batch, dim)
    x = x + attended @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
    h = torch.nn.functional.layer_norm(x, (dim,), block.norm_2.weight, block.norm_2.bias, 1e-6)
    hidden = torch.nn.functional.gelu(h @ block.mlp.fc1.weight.T + block.mlp.fc1.bias)
    return x + hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias


@pytest.fixture(scope="module")
def towers(tiny_imagebind_checkpoint):
    return (ImageBindAudioEncoder.from_checkpoint(tiny_imagebind_checkpoint),
            ImageBindTextEncoder.from_checkpoint(tiny_imagebind_checkpoint))


def test_blocks_equal_explicit_attention():
    torch.manual_seed(0)
    for bias_kv in (True, False):
        block = Block(64, 2, bias_kv=bias_kv).eval()
        if bias_kv:
            torch.nn.init.normal_(block.attn.bias_k)
            torch.nn.init.normal_(block.attn.bias_v)
        x = torch.randn(7, 3, 64)
        mask = None if bias_kv else torch.full((7, 7), float("-inf")).triu(1)
        with torch.no_grad():
            torch.testing.assert_close(block(x, attn_mask=mask), explicit_block(block, x, mask), atol=1e-5, rtol=1e-5)


def test_audio_tower_norms_and_clip_mean(towers):
    audio, _ = towers
    feats = torch.stack([imagebind_audio_input(tone(s, 16000, seed=s), 16000) for s in (3, 9)])
    with torch.no_grad():
        per_clip = audio(feats.reshape(6, 1, 128, 204))
    torch.testing.assert_close(per_clip.norm(dim=-1), torch.full((6,), 20.0))
    out = audio.encode(feats)
    assert out.shape == (2, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, per_clip.reshape(2, 3, 64).mean(1))
    assert (out.norm(dim=-1) <= 20.0 + 1e-4).all()
    with pytest.raises(ValueError, match=r"\(B, clips, 1, 128, 204\)"):
        audio.encode(torch.zeros(2, 3, 1, 128, 200))


def test_golden_values_of_the_seeded_tiny_checkpoint(towers):
    # Recorded from this implementation, which matches upstream ImageBind on random full-size weights.
    audio, text = towers
    feats = imagebind_audio_input(tone(3.0, 16000), 16000)[None]
    torch.testing.assert_close(
        audio.encode(feats)[0, :6], torch.tensor([-2.35487, 1.19327, -3.57438, -2.58226, -0.35641, -6.01896]),
        atol=2e-4, rtol=0,
    )
    torch.testing.assert_close(
        text.encode(["a dog barking"])[0, :6], torch.tensor([-1.03721, 0.74433, -1.29685, -1.00569, -3.03385, 0.07101]),
        atol=2e-4, rtol=0,
    )


def test_text_tower_reads_the_eot_position_causally(towers):
    _, text = towers
    tokens = text.tokenize(["a dog barking", "a cat"])
    with torch.no_grad():
        reference = text(tokens)
        changed = tokens.clone()
        changed[0, 6:] = 123  # after EOT (position 4): invisible to it under the causal mask
        torch.testing.assert_close(text(changed), reference)
        earlier = tokens.clone()
        earlier[0, 1] = 2368
        assert not torch.allclose(text(earlier)[0], reference[0])
    torch.testing.assert_close(reference.norm(dim=-1), torch.full((2,), 1 / 0.07), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(text.encode("a cat")[0], reference[1], rtol=1e-5, atol=1e-5)
    big = ImageBindTextEncoder.tiny(seed=1)
    with torch.no_grad():
        big.log_logit_scale.fill_(math.log(500.0))
    torch.testing.assert_close(big.encode(["x", "y"]).norm(dim=-1), torch.full((2,), 100.0))  # clipped at 100
    with pytest.raises(ValueError, match=r"\(B, 77\)"):
        text(torch.zeros(1, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="no texts"):
        text.encode([])


def test_loading_takes_exactly_the_checkpoint_tensors(tiny_imagebind_checkpoint, towers):
    audio, text = towers
    state = torch.load(tiny_imagebind_checkpoint, weights_only=True)
    assert audio.config == AudioTowerConfig.tiny() and text.config == TextTowerConfig.tiny()
    for tower, modality in ((audio, "audio"), (text, "text")):
        ours = {**dict(tower.named_parameters()), **dict(tower.named_buffers())}
        key_map = checkpoint_key_map(modality, tower.config.depth)
        assert set(key_map) == set(ours)
        for name, key in key_map.items():
            torch.testing.assert_close(ours[name], state[key], atol=0, rtol=0)
        assert not tower.training


def test_huge_layout_infers_the_released_configs():
    meta = {k: torch.empty(shape, device="meta") for k, shape in imagebind_layout("huge").items()}
    assert ImageBindAudioEncoder.from_state_dict(meta).config == AudioTowerConfig.huge()
    assert ImageBindTextEncoder.from_state_dict(meta).config == TextTowerConfig.huge()
    audio_params = sum(p.numel() for p in ImageBindAudioEncoder.from_state_dict(meta).parameters())
    assert 85_000_000 < audio_params < 87_000_000


def test_one_tower_checkpoints_and_layout_errors(tmp_path):
    audio_only = write_imagebind_checkpoint(tmp_path / "audio.pth", modalities=["audio"], seed=3)
    assert ImageBindAudioEncoder.from_checkpoint(audio_only).config == AudioTowerConfig.tiny()
    with pytest.raises(CheckpointError, match="no text tower"):
        ImageBindTextEncoder.from_checkpoint(audio_only)

    state = imagebind_state_dict(modalities=["audio"])
    del state["modality_trunks.audio.blocks.1.attn.bias_k"]
    state["modality_heads.audio.0.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as info:
        ImageBindAudioEncoder.from_state_dict(state, source="'broken.pth'")
    message = str(info.value)
    assert "'broken.pth'" in message and "modality_trunks.audio.blocks.1.attn.bias_k" in message
    assert "modality_heads.audio.0.bias: (7,) (expected (128,))" in message

    with pytest.raises(CheckpointError, match="no audio tower"):
        ImageBindAudioEncoder.from_state_dict({"something.else": torch.zeros(1)})
    not_a_checkpoint = tmp_path / "notes.txt"
    not_a_checkpoint.write_text("hello")
    with pytest.raises(CheckpointError):
        ImageBindAudioEncoder.from_checkpoint(not_a_checkpoint)
    with pytest.raises(FileNotFoundError):
        ImageBindAudioEncoder.from_checkpoint(tmp_path / "missing.pth")


def test_half_precision_checkpoints_load_as_float32(tmp_path):
    path = write_imagebind_checkpoint(tmp_path / "half.pth", modalities=["audio"], seed=5, dtype=torch.float16)
    audio = ImageBindAudioEncoder.from_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in audio.parameters())
    half = torch.load(path, weights_only=True)["modality_heads.audio.2.weight"]
    torch.testing.assert_close(audio.head_proj.weight, half.float(), atol=0, rtol=0)


def test_fingerprint_and_dimensions(tmp_path, towers):
    audio, text = towers
    again = ImageBindAudioEncoder.from_checkpoint(write_imagebind_checkpoint(tmp_path / "a.pth", modalities=["audio"]))
    other = ImageBindAudioEncoder.from_checkpoint(
        write_imagebind_checkpoint(tmp_path / "b.pth", modalities=["audio"], seed=1)
    )
    assert audio.fingerprint == again.fingerprint != other.fingerprint
    assert len(audio.fingerprint) == 64 and audio.fingerprint != text.fingerprint
    assert audio.embed_dim == audio.output_dim == 64 and text.embed_dim == 64


def test_encode_sources_from_files_bytes_and_arrays(tmp_path, towers):
    audio, _ = towers
    path = tmp_path / "a.wav"
    sf.write(path, tone(4.0, 48000, channels=2), 48000, subtype="FLOAT")
    out = audio.encode_sources([path, path.read_bytes(), (tone(4.0, 48000, channels=2), 48000)], batch_size=2)
    assert out.shape == (3, 64)
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=0)  # same features; batched matmuls round per row
    torch.testing.assert_close(out[0], out[2], atol=1e-5, rtol=0)  # another batch size: float rounding only
    torch.testing.assert_close(audio.embed_files([path]), out[:1], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="no audio sources"):
        audio.encode_sources([])


@pytest.mark.slow
def test_full_size_audio_tower_from_a_released_layout_file(tmp_path):
    path = write_imagebind_checkpoint(tmp_path / "huge_audio.pth", "huge", modalities=["audio"], seed=2)
    audio = ImageBindAudioEncoder.from_checkpoint(path)
    assert audio.config == AudioTowerConfig.huge()
    out = audio.encode(imagebind_audio_input(tone(2.0, 16000), 16000)[None])
    assert out.shape == (1, 1024) and 0 < float(out.norm()) <= 20.0 + 1e-4


def test_only_the_towers_own_tensors_are_read():
    class Recording(dict):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            self.read: set[str] = set()

        def __getitem__(self, key: str) -> torch.Tensor:
            self.read.add(key)
            return super().__getitem__(key)

    for cls, modality in ((ImageBindAudioEncoder, "audio"), (ImageBindTextEncoder, "text")):
        state = Recording(imagebind_state_dict())
        tower = cls.from_state_dict(state)
        assert state.read == set(checkpoint_key_map(modality, tower.config.depth).values())
