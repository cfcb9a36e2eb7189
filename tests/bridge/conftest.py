"""Fixtures of the bridge tests: the synthetic world with and without a modality gap, and its bridges scored."""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic_world import SyntheticWorld, WorldConfig


def score_world(world: SyntheticWorld) -> dict:
    """``evaluate_bridges`` on the world's dataset: the text-fitted linear bridge (and its gap correction), the
    retrieval bridge over the whole label bank and over the dataset's classes, and the paired bridge."""
    from audiodetic.bridge import LinearBridge, RetrievalBridge
    from audiodetic.bridge.evaluate import evaluate_bridges

    bank, data = world.bank(), world.dataset()
    bridges = {
        "linear": LinearBridge.fit(bank.src, bank.dst, alpha="auto"),
        "retrieval": RetrievalBridge(bank.src, bank.dst, bank.names),
        "retrieval@classes": RetrievalBridge(data.class_src, data.class_dst, data.classes),
        "retrieval@classes-top1": RetrievalBridge(data.class_src, data.class_dst, data.classes, top_k=1),
        "paired": "paired",
    }
    return evaluate_bridges(data, bridges, bank=bank, text_weight=1.0)


@pytest.fixture(scope="session")
def gap_world() -> SyntheticWorld:
    """The default :class:`WorldConfig`: audio sits a gap of norm 2 away from its text."""
    return SyntheticWorld(WorldConfig())


@pytest.fixture(scope="session")
def no_gap_world() -> SyntheticWorld:
    """The same world with no gap (audio lands around its concept's ImageBind text)."""
    return SyntheticWorld(replace(WorldConfig(), gap=0.0))


@pytest.fixture(scope="session")
def gap_scores(gap_world: SyntheticWorld) -> dict:
    return score_world(gap_world)


@pytest.fixture(scope="session")
def no_gap_scores(no_gap_world: SyntheticWorld) -> dict:
    return score_world(no_gap_world)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """``(imagebind.pth, clip.pt)``: tiny random towers in the official layouts (see audio_datasets.py)."""
    from audio_datasets import write_tiny_checkpoints

    return write_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def esc50_root(tmp_path_factory: pytest.TempPathFactory):
    """A generated ESC-50-layout folder (8 classes x 4 clips, folds 1-4); tests must not change it (copy it to
    break it)."""
    from audio_datasets import make_esc50

    return make_esc50(tmp_path_factory.mktemp("esc50"), clips_per_class=4)
