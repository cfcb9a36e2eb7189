"""Helpers of the collection tests: seeded pictures, the runs' settings, the plain public-API loop the engines must
equal, reading JSON Lines, and the CLI options that select the test model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SIZES = [(90, 120), (70, 50), (90, 120), (60, 100), (90, 120), (48, 96)]  # no 1x1 P7 map (tiny GN)
SETTINGS = dict(score_threshold=0.2, input_size=(128, 160), max_detections=8, names=("a", "b", "c", "d"))


def picture(height: int, width: int, seed: int) -> np.ndarray:
    """A seeded ``(H, W, 3)`` uint8 picture with two coloured blocks on a noisy background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
    image[height // 5 : height // 2, width // 6 : width // 2] = (220, 40, 40)
    image[height // 2 :, width // 2 :] = (40, 60, 230)
    return image


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
        found = predictor.predict(vocabulary=vocabulary, score_threshold=settings.score_threshold,
                                  max_detections=settings.max_detections)
        records[str(path)] = json.loads(json.dumps(found.to_json_dict(image=str(path))))
    return records


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def cli_options(assets: dict[str, Any]) -> list[str]:
    """``audiodetic detect`` options selecting the tiny test model, the vocabulary and :data:`SETTINGS`."""
    low, high = SETTINGS["input_size"]
    return ["--detector", str(assets["checkpoint"]), "--vocabulary", str(assets["vocabulary"]),
            "--names", ",".join(SETTINGS["names"]), "--score-threshold", str(SETTINGS["score_threshold"]),
            "--input-size", f"{low},{high}", "--max-detections", str(SETTINGS["max_detections"])]
