"""Media made by real tools (espeak-ng speech, sox-encoded MP3/OGG/FLAC) decode and embed; skipped without the tools."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from audiodetic.encoders.audio.features import load_imagebind_audio
from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
from audiodetic.encoders.audio.io import audio_info, load_audio


def _run(*command: str) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_espeak_speech(tmp_path):
    path = tmp_path / "speech.wav"
    _run("espeak-ng", "-w", str(path), "a dog is barking loudly")
    waveform, rate = load_audio(path)
    assert rate == 22050 and waveform.shape[0] == 1 and waveform.shape[1] > rate // 2
    assert np.abs(waveform).max() > 0.05  # not silence
    feats = load_imagebind_audio(path)
    assert feats.shape == (3, 1, 128, 204) and torch.isfinite(feats).all()


@pytest.fixture(scope="module")
def audio() -> ImageBindAudioEncoder:
    return ImageBindAudioEncoder.tiny(seed=0)


@pytest.mark.parametrize(("suffix", "lossless"), [("flac", True), ("ogg", False), ("mp3", False)])
def test_sox_encoded_files(tmp_path, audio, suffix, lossless):
    path = tmp_path / f"tone.{suffix}"
    _run("sox", "-n", "-r", "44100", "-c", "2", str(path), "synth", "3", "sine", "440", "sine", "660")
    info = audio_info(path)
    assert info.sample_rate == 44100 and info.channels == 2 and abs(info.duration - 3.0) < 0.1
    if lossless:
        assert info.frames == 3 * 44100
    embedding = audio.encode_sources([path])
    assert embedding.shape == (1, 64) and torch.isfinite(embedding).all()
    assert 0 < float(embedding.norm()) <= 20 + 1e-4
