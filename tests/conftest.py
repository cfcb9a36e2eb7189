"""Fixtures shared by test folders: tiny random-weight model files in the official layouts, and a model loaded
from them the way the CLI loads one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"detector", "imagebind", "bridge", "clip"}``: tiny Detic and ImageBind checkpoints, a random linear
    bridge between them and a tiny CLIP text checkpoint (all seed 0)."""
    import torch

    from audiodetic.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.bridge import LinearBridge
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint
    from audiodetic.text import ClipTextEncoder

    root = tmp_path_factory.mktemp("tiny_models")
    detector = make_detic_checkpoint(root / "detic_tiny.pth", "tiny", seed=0)
    imagebind = write_imagebind_checkpoint(root / "imagebind_tiny.pth", "tiny", seed=0)
    bridge = root / "bridge.npz"
    LinearBridge.random(ImageBindAudioEncoder.from_checkpoint(imagebind).embed_dim, 512, seed=0).save(bridge)
    clip = root / "clip_tiny.pt"
    torch.save(ClipTextEncoder.tiny(seed=0).model.state_dict(), clip)
    return {"detector": Path(detector), "imagebind": Path(imagebind), "bridge": bridge, "clip": clip}


@pytest.fixture(scope="session")
def tiny_loaded_model(tiny_model_files: dict[str, Path]):
    """``audiodetic.load`` of :func:`tiny_model_files` (tests must not change it)."""
    from audiodetic import api

    files = tiny_model_files
    return api.load({"detector": files["detector"], "audio": files["imagebind"], "bridge": files["bridge"],
                     "text": files["clip"]})


@pytest.fixture(scope="session")
def tiny_model_args(tiny_model_files: dict[str, Path]) -> list[str]:
    """The CLI options that select :func:`tiny_model_files`."""
    files = tiny_model_files
    return ["--detector", str(files["detector"]), "--audio-weights", str(files["imagebind"]),
            "--bridge", str(files["bridge"]), "--text-weights", str(files["clip"])]
