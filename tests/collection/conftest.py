"""Fixtures of the collection tests: a tiny random Detic checkpoint file, a vocabulary file and small images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

SIZES = [(90, 120), (70, 50), (90, 120), (60, 100), (90, 120), (48, 96)]  # no 1x1 P7 map (tiny GN)


def picture(height: int, width: int, seed: int) -> np.ndarray:
    """A seeded ``(H, W, 3)`` uint8 picture with two coloured blocks on a noisy background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
    image[height // 5 : height // 2, width // 6 : width // 2] = (220, 40, 40)
    image[height // 2 :, width // 2 :] = (40, 60, 230)
    return image


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


SETTINGS = dict(score_threshold=0.2, input_size=(128, 160), max_detections=8, names=("a", "b", "c", "d"))


@pytest.fixture(scope="session")
def settings(assets):
    """The :class:`DetectionSettings` of the tests (tiny detector, the vocabulary file, small inputs)."""
    from audiodetic.collection.settings import DetectionSettings

    return DetectionSettings(detector=str(assets["checkpoint"]), vocabulary=str(assets["vocabulary"]), **SETTINGS)


def loop_records(assets: dict[str, Any], settings: Any) -> dict[str, dict[str, Any]]:
    """``{image path: JSON record}`` from the public API one image at a time: load, vocabulary, predictor,
    set_image, predict (the loop a user would write)."""
    import audiodetic

    model = audiodetic.load(assets["checkpoint"])
    vocabulary = model.vocabulary(vocabulary=assets["vocabulary"], names=list(settings.names))
    predictor = model.predictor()
    records = {}
    for path in assets["images"]:
        predictor.set_image(path, input_size=settings.input_size)
        found = predictor.predict(vocabulary, score_threshold=settings.score_threshold,
                                  max_detections=settings.max_detections)
        records[str(path)] = json.loads(json.dumps(found.to_json_dict(image=str(path))))
    return records


@pytest.fixture(scope="session")
def plain_loop(assets, settings):
    """:func:`loop_records` of the test images (computed once)."""
    records = loop_records(assets, settings)
    assert sum(len(r["detections"]) for r in records.values()) > 0
    return records


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]
