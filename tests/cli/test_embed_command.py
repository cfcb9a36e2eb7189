"""`audiodetic embed audio|text` on tiny checkpoints written in the official layouts."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audiodetic.cli import main
from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder, ImageBindTextEncoder
from audiodetic.encoders.clip_text import ClipTextEncoder
from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

SR = 16_000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    ckpt = write_imagebind_checkpoint(root / "imagebind_tiny.pth", "tiny", modalities=("audio", "text"), seed=3)
    clip = root / "clip_tiny.pt"
    torch.save(ClipTextEncoder.tiny(seed=4).model.state_dict(), clip)
    waves = []
    for i, freq in enumerate((330.0, 880.0)):
        t = np.arange(int(2.2 * SR)) / SR
        path = root / f"clip{i}.wav"
        sf.write(path, (0.25 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
        waves.append(path)
    return root, ckpt, clip, waves


def test_embed_audio_writes_raw_embeddings_in_file_order(files, capsys):
    root, ckpt, _, waves = files
    out = root / "audio.npy"
    assert main(["embed", "audio", str(waves[1]), str(waves[0]), "--weights", str(ckpt), "--output", str(out)]) == 0
    got = np.load(out)
    expected = ImageBindAudioEncoder.from_checkpoint(ckpt).encode_sources([str(waves[1]), str(waves[0])]).numpy()
    assert got.shape == (2, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert "(2, 64)" in capsys.readouterr().out


def test_embed_text_both_encoders(files):
    root, ckpt, clip, _ = files
    out = root / "ib.npy"
    assert main(["embed", "text", "a dog", "rain", "--encoder", "imagebind", "--weights", str(ckpt),
                 "-o", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), ImageBindTextEncoder.from_checkpoint(ckpt).encode(["a dog", "rain"]),
                               atol=1e-5)
    out = root / "clip.npy"
    assert main(["embed", "text", "dog", "--encoder", "clip", "--weights", str(clip), "-o", str(out)]) == 0
    encoder = ClipTextEncoder.from_checkpoint(clip)
    np.testing.assert_allclose(np.load(out), encoder.encode(["dog"]), atol=1e-5)  # Detic's "a dog"
    assert main(["embed", "text", "dog", "--encoder", "clip", "--weights", str(clip), "--template", "{}",
                 "-o", str(out), "--overwrite"]) == 0  # the same file again: replaced only when asked
    np.testing.assert_allclose(np.load(out), encoder.encode(["dog"], template=False), atol=1e-5)


def test_embed_errors(files, capsys):
    root, ckpt, clip, waves = files
    assert main(["embed", "audio", str(root / "missing.wav"), "--weights", str(ckpt), "-o", str(root / "x.npy")]) == 1
    assert "missing.wav" in capsys.readouterr().err
    assert main(["embed", "audio", str(waves[0]), "--weights", str(ckpt), "-o", str(root / "x.txt")]) == 1
    assert ".npy" in capsys.readouterr().err
    assert main(["embed", "audio", str(waves[0]), "--weights", str(clip), "-o", str(root / "x.npy")]) == 1
    assert "imagebind" in capsys.readouterr().err.lower()
    assert main(["embed", "text", "dog", "--encoder", "imagebind", "--weights", str(ckpt), "--template", "{}",
                 "-o", str(root / "x.npy")]) == 1
    with pytest.raises(SystemExit):
        main(["embed", "text", "dog", "-o", str(root / "x.npy")])  # --encoder is required
    assert not (root / "x.npy").exists()


def test_an_existing_output_is_kept_unless_overwrite_is_given(files, tmp_path, capsys):
    _, ckpt, _, waves = files
    out = tmp_path / "kept.npy"
    out.write_bytes(b"somebody's data")
    argv = ["embed", "audio", str(waves[0]), "--weights", str(ckpt), "--output", str(out)]
    assert main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"somebody's data"
    assert main([*argv, "--overwrite"]) == 0 and np.load(out).shape == (1, 64)
