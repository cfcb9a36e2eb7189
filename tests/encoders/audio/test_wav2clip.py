"""Wav2CLIP: a checkpoint in the released layout gives the same embeddings as an independent rebuild of the recipe
(torchaudio spectrogram + torchvision ResNet-18 + MLP)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from wav2clip_layout import released_wav2clip_layout

from audiodetic.encoders.audio.wav2clip import Wav2ClipEncoder
from audiodetic.errors import AudioDecodeError, CheckpointError
from audiodetic.prompts import Sound, build_vocabulary
from audiodetic.spaces import CLIP_IMAGE_SPACE

torchaudio = pytest.importorskip("torchaudio")
torchvision = pytest.importorskip("torchvision")


def _reference(resnet: nn.Module, mlp: nn.Module, wave: torch.Tensor) -> torch.Tensor:
    spec = torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)(wave[None, None])
    x = torch.log(spec + 1e-7)
    x = (x - x.mean()) / (x.std() + 1e-9)
    with torch.no_grad():
        return mlp(resnet(x))[0]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    state, resnet, mlp = released_wav2clip_layout()
    path = tmp_path_factory.mktemp("w2c") / "Wav2CLIP.pt"
    torch.save(state, path)
    return path, resnet, mlp


def test_matches_independent_rebuild(released):
    path, resnet, mlp = released
    model = Wav2ClipEncoder.from_checkpoint(path)
    assert model.embed_dim == 512 and model.space == CLIP_IMAGE_SPACE
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal(24_000).astype(np.float32) * 0.1)
    with torch.no_grad():
        ours = model(wave)
    torch.testing.assert_close(ours, _reference(resnet, mlp, wave), rtol=1e-4, atol=1e-4)


def test_encode_sources_resamples_and_downmixes(released, tmp_path):
    path, resnet, mlp = released
    model = Wav2ClipEncoder.from_checkpoint(path)
    t = np.arange(int(1.5 * 44_100)) / 44_100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)], axis=1).astype(np.float32)
    wav = tmp_path / "stereo.wav"
    sf.write(wav, stereo, 44_100, subtype="FLOAT")
    got = model.encode_sources([str(wav), (stereo.T.copy(), 44_100)])
    mono = torch.from_numpy(stereo.mean(axis=1))
    expected = _reference(resnet, mlp, torchaudio.functional.resample(mono, 44_100, 16_000))
    assert got.shape == (2, 512)
    torch.testing.assert_close(got[0], expected, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(got[1], got[0], rtol=1e-5, atol=1e-5)
    first = model.encode_sources([(stereo.T.copy(), 44_100)], downmix=False)
    assert not torch.allclose(first, got[1:], atol=1e-3)


def test_prompts_without_bridge(released, tmp_path):
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.2 * np.sin(np.arange(16_000) * 0.2)).astype(np.float32), 16_000)
    model = Wav2ClipEncoder.tiny(seed=0)
    vocab = build_vocabulary({"tone": Sound(wav)}, audio_encoder=model)
    raw = model.encode_sources([str(wav)]).numpy()[0]
    np.testing.assert_allclose(vocab.embeddings[0], raw / np.linalg.norm(raw), atol=1e-6)


def test_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="not a Wav2CLIP checkpoint"):
        Wav2ClipEncoder.from_checkpoint(bad)
    state, _, _ = released_wav2clip_layout()
    state["audio_transform.sequential.3.weight"] = torch.zeros(512, 256)
    with pytest.raises(CheckpointError, match="wrong shape"):
        Wav2ClipEncoder.from_state_dict(state)
    with pytest.raises(AudioDecodeError, match="too short"):
        Wav2ClipEncoder.tiny().encode_sources([(np.zeros(100, np.float32), 16_000)])
    with pytest.raises(ValueError, match="no audio sources"):
        Wav2ClipEncoder.tiny().encode_sources([])
