"""Shared media and checkpoints for the audio tests: everything is made here (numpy signals, tiny checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_imagebind_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny six-modality checkpoint in the imagebind_huge key layout (seed 0)."""
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    return write_imagebind_checkpoint(tmp_path_factory.mktemp("imagebind") / "tiny.pth", "tiny", seed=0)
