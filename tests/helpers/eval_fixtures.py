"""Small COCO/LVIS-format datasets the eval tests build: PNG images with known boxes and masks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

CATEGORIES = [  # (id, name, LVIS frequency); ids have gaps like COCO's
    (1, "dog", "f"), (3, "car", "c"), (7, "toilet", "r"), (9, "bell", "f"),
]


def _rle(mask: np.ndarray) -> dict[str, Any]:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def _object_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ellipse of random size and place, fully inside the image."""
    h = int(rng.integers(12, height // 2))
    w = int(rng.integers(12, width // 2))
    top = int(rng.integers(0, height - h))
    left = int(rng.integers(0, width - w))
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = top + (h - 1) / 2, left + (w - 1) / 2
    return ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1.0


def make_dataset(root: Path, kind: str = "coco", *, num_images: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/images/...`` and ``root/annotations.json``; returns ``(annotations, images_dir)``.

    Image ``i`` (id ``10 + 3 i``) is ``64 x (72 + 4 i)`` noise with 1-3 ellipse objects of random categories.
    LVIS files name images by ``coco_url`` under ``images/val2017`` and mark absent categories as negatives.
    """
    rng = np.random.default_rng(seed)
    images_dir = root / "images"
    folder = images_dir / ("val2017" if kind == "lvis" else "")
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        image_id = 10 + 3 * index
        height, width = 64, 72 + 4 * index
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        name = f"{image_id:012d}.png"
        Image.fromarray(pixels).save(folder / name)
        present = set()
        for _ in range(int(rng.integers(1, 4))):
            category_id = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))][0]
            mask = _object_mask(rng, height, width)
            rle = _rle(mask)
            ys, xs = np.nonzero(mask)
            x, y = float(xs.min()), float(ys.min())
            w, h = float(xs.max() + 1) - x, float(ys.max() + 1) - y
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "bbox": [x, y, w, h], "area": float(mask.sum()), "iscrowd": 0,
                                "segmentation": rle})
            present.add(category_id)
        record: dict[str, Any] = {"id": image_id, "height": height, "width": width}
        if kind == "lvis":
            record["coco_url"] = f"http://images.cocodataset.org/val2017/{name}"
            record["neg_category_ids"] = [c[0] for c in CATEGORIES if c[0] not in present]
            record["not_exhaustive_category_ids"] = []
        else:
            record["file_name"] = name
        images.append(record)
    categories = []
    for category_id, name, frequency in CATEGORIES:
        category: dict[str, Any] = {"id": category_id, "name": name}
        if kind == "lvis":
            category.update(frequency=frequency, synonyms=[name])
        categories.append(category)
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, images_dir


def perfect_results(annotations: Path) -> list[dict[str, Any]]:
    """One detection per ground-truth object: its own box and mask, score decreasing with the annotation id."""
    data = json.loads(annotations.read_text())
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
             "score": 1.0 - 0.001 * a["id"], "segmentation": dict(a["segmentation"])}
            for a in data["annotations"]]


def shifted_results(annotations: Path, shift: float, *, seed: int = 1) -> list[dict[str, Any]]:
    """Each ground-truth box moved right by ``shift`` pixels, random scores, plus one false positive per image."""
    rng = np.random.default_rng(seed)
    data = json.loads(annotations.read_text())
    results = []
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        results.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": [x + shift, y, w, h],
                        "score": float(rng.uniform(0.2, 1.0))})
    for image in data["images"]:
        results.append({"image_id": image["id"], "category_id": CATEGORIES[0][0], "bbox": [1.0, 1.0, 8.0, 8.0],
                        "score": float(rng.uniform(0.0, 1.0))})
    return results


ESC50_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def make_esc50(root: Path, classes: list[str], *, clips_per_class: int = 3, seconds: float = 1.0,
               sample_rate: int = 16000) -> Path:
    """An ESC-50-layout folder (``audio/*.wav`` + ``meta/esc50.csv``) of tones: class ``c`` clip ``j`` is a sine
    at ``220 * (c + 1) * (1 + 0.05 j)`` Hz with a little noise. Returns ``root``."""
    import csv

    import soundfile

    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rows = []
    for target, name in enumerate(classes):
        for take in range(clips_per_class):
            frequency = 220.0 * (target + 1) * (1 + 0.05 * take)
            wave = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.normal(size=t.size)
            filename = f"{1 + take % 5}-{1000 + target * 10 + take}-A-{target}.wav"
            soundfile.write(root / "audio" / filename, wave.astype(np.float32), sample_rate)
            rows.append({"filename": filename, "fold": 1 + take % 5, "target": target, "category": name,
                         "esc10": "False", "src_file": 1000 + target * 10 + take, "take": "A"})
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ESC50_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def write_map(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A sound map CSV of ``(sound_class, category)`` rows."""
    lines = ["sound_class,category,notes"] + [f"{sound},{category}," for sound, category in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def shifted_mask_results(annotations: Path, shift: int, *, seed: int = 2) -> list[dict[str, Any]]:
    """Each ground-truth mask moved down by ``shift`` pixels, random scores; ``bbox`` is deliberately the original
    box scaled by 3 (mask AP must not use it)."""
    rng = np.random.default_rng(seed)
    data = json.loads(annotations.read_text())
    results = []
    for a in data["annotations"]:
        rle = {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()}
        mask = np.roll(mask_utils.decode(rle), shift, axis=0)
        x, y, w, h = a["bbox"]
        results.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": [x, y, 3 * w, 3 * h],
                        "score": float(rng.uniform(0.2, 1.0)), "segmentation": _rle(mask.astype(bool))})
    return results
