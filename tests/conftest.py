"""Fixtures shared by every test folder: the loopback weights server and a clean weights environment, and tiny
random-weight model files in the official layouts (with a model loaded from them the way the CLI loads one).
Helper modules (tiny models, generated media, the weights server) live in ``tests/helpers/`` and
``tests/upstream/``, which pytest puts on ``sys.path`` (``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from weights_server import WeightsServer

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def weights_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """No AUDIODETIC_* settings, no proxies, HOME and XDG_CACHE_HOME inside ``tmp_path``; returns ``tmp_path``."""
    for variable in list(os.environ):
        if variable.startswith("AUDIODETIC_") or variable.lower() in _PROXY_VARS:
            monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture
def server() -> Iterator[WeightsServer]:
    """A running :class:`~weights_server.WeightsServer` on 127.0.0.1, stopped after the test."""
    with WeightsServer() as running:
        yield running


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"detector", "imagebind", "bridge", "clip"}``: tiny Detic and ImageBind checkpoints, a random linear
    bridge between them and a tiny CLIP text checkpoint (all seed 0)."""
    import torch

    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

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
