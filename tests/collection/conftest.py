"""Fixtures of the collection tests: a tiny random Detic checkpoint file, a vocabulary file and small images (the
helpers they use are in tests/helpers/collection_helpers.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from collection_helpers import SETTINGS, SIZES, loop_records, picture
from PIL import Image


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Any]:
    """``checkpoint`` (tiny Detic, official layout), ``vocabulary`` ((4, 512) .npy), ``photos`` (a folder of
    six PNG images of mixed sizes) and ``images`` (their paths)."""
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    root = tmp_path_factory.mktemp("collection_assets")
    checkpoint = make_detic_checkpoint(root / "tiny.pth", "tiny", seed=0)
    vocabulary = root / "vocab.npy"
    np.save(vocabulary, np.random.default_rng(0).normal(size=(4, 512)).astype(np.float32))
    photos = root / "photos"
    photos.mkdir()
    images = []
    for index, (height, width) in enumerate(SIZES):
        path = photos / f"img{index}.png"
        Image.fromarray(picture(height, width, index)).save(path)
        images.append(path)
    return {"root": root, "checkpoint": checkpoint, "vocabulary": vocabulary, "photos": photos, "images": images}


@pytest.fixture(scope="session")
def settings(assets):
    """The :class:`DetectionSettings` of the tests (tiny detector, the vocabulary file, small inputs)."""
    from audiodetic.collection.settings import DetectionSettings

    return DetectionSettings(detector=str(assets["checkpoint"]), vocabulary=str(assets["vocabulary"]), **SETTINGS)


@pytest.fixture(scope="session")
def plain_loop(assets, settings):
    """:func:`loop_records` of the test images (computed once)."""
    records = loop_records(assets, settings)
    assert sum(len(r["detections"]) for r in records.values()) > 0
    return records
