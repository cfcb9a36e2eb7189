"""`audiodetic bridge fit|show` on tiny checkpoints in the official layouts."""

from __future__ import annotations

import json

import numpy as np
import torch

from audiodetic.bridge import LinearBridge, RetrievalBridge, load_bridge
from audiodetic.cli import main
from audiodetic.encoders.clip_text import ClipTextEncoder
from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint


def test_bridge_fit_then_show(tmp_path, capsys):
    ckpt = write_imagebind_checkpoint(tmp_path / "ib.pth", "tiny", modalities=("text",), seed=1)
    clip = tmp_path / "clip.pt"
    torch.save(ClipTextEncoder.tiny(seed=2).model.state_dict(), clip)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["dog", "cat", "siren", "rain", "violin", "engine", "bird", "bell", "drum",
                                 "horse", "train", "water"]) + "\n")
    out = tmp_path / "bridge.npz"
    args = ["bridge", "fit", "--labels", str(labels), "--imagebind-weights", str(ckpt), "--clip-weights", str(clip),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--holdout", "0.25", "--json"]
    assert main(args + ["--kind", "linear", "--output", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "linear" and report["n_pairs"] == 12 and report["n_held_out"] == 3
    bridge = load_bridge(out)
    assert isinstance(bridge, LinearBridge) and (bridge.src_dim, bridge.dst_dim) == (64, 512)
    cached = list((tmp_path / "cache" / "bridges").glob("linear-ridge-*.npz"))
    assert len(cached) == 1
    np.testing.assert_array_equal(load_bridge(cached[0]).weight, bridge.weight)
    assert main(["bridge", "show", str(out)]) == 0
    assert "held-out (3) top-1" in capsys.readouterr().out
    assert main(args + ["--kind", "retrieval", "--top-k", "3", "--output", str(tmp_path / "r.npz")]) == 0
    assert isinstance(load_bridge(tmp_path / "r.npz"), RetrievalBridge)


def test_bridge_cli_errors(tmp_path, capsys):
    assert main(["bridge", "show", str(tmp_path / "none.npz")]) == 1
    assert "none.npz" in capsys.readouterr().err
    assert main(["bridge", "fit", "--labels", str(tmp_path / "missing.txt")]) == 1
    assert "missing.txt" in capsys.readouterr().err
    assert main(["bridge", "fit", "--holdout", "1.5"]) == 1
    assert "holdout" in capsys.readouterr().err


def test_fit_output_is_refused_when_it_exists_without_overwrite(tmp_path, capsys):
    out = tmp_path / "mine.npz"
    out.write_bytes(b"not a bridge of ours")
    assert main(["bridge", "fit", "--kind", "linear", "--output", str(out), "--no-progress"]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"not a bridge of ours"
