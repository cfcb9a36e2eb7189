"""Generated labelled-audio datasets in the ESC-50, UrbanSound8K and CSV layouts, and tiny checkpoints to score them
with (importable by any test; not a test module). Clips are 1-s 16 kHz tones whose pitch and noise colour depend on
the class, so classes differ for an audio tower; nothing is downloaded."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

ESC50_CLASSES = ("dog", "rooster", "crying_baby", "siren", "car_horn", "church_bells", "rain", "clock_tick")
ESC50_TARGETS = {"dog": 0, "rooster": 1, "rain": 10, "crying_baby": 20, "clock_tick": 38, "siren": 42,
                 "car_horn": 43, "church_bells": 46}
US8K_CLASSES = ("air_conditioner", "car_horn", "dog_bark", "siren")
US8K_IDS = {"air_conditioner": 0, "car_horn": 1, "dog_bark": 3, "siren": 8}
RATE = 16_000


def write_clip(path: Path, class_index: int, take: int, *, seconds: float = 1.0) -> Path:
    """A tone of the class's pitch with a take-dependent phase and noise: float32 mono WAV."""
    rng = np.random.default_rng([class_index, take])
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 180.0 * 1.45 ** class_index
    signal = 0.4 * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 6.28)) + 0.05 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal.astype(np.float32), RATE, subtype="FLOAT")
    return path


def make_esc50(root: Path, classes: Sequence[str] = ESC50_CLASSES, clips_per_class: int = 5) -> Path:
    """``root/audio/*.wav`` + ``root/meta/esc50.csv`` (ESC-50's columns; clip ``i`` of a class in fold ``i % 5 + 1``)."""
    rows = []
    for k, name in enumerate(classes):
        for i in range(clips_per_class):
            fold = i % 5 + 1
            filename = f"{fold}-{1000 + k}-A-{i}.wav"
            write_clip(root / "audio" / filename, k, i)
            rows.append({"filename": filename, "fold": fold, "target": ESC50_TARGETS[name], "category": name,
                         "esc10": "False", "src_file": 1000 + k, "take": "A"})
    write_rows(root / "meta" / "esc50.csv", rows)
    return root


def make_urbansound8k(root: Path, classes: Sequence[str] = US8K_CLASSES, clips_per_class: int = 4) -> Path:
    """``root/audio/fold<N>/*.wav`` + ``root/metadata/UrbanSound8K.csv`` (clip ``i`` in fold ``i % 10 + 1``)."""
    rows = []
    for k, name in enumerate(classes):
        for i in range(clips_per_class):
            fold = i % 10 + 1
            filename = f"{100 + k}-{US8K_IDS[name]}-0-{i}.wav"
            write_clip(root / "audio" / f"fold{fold}" / filename, k, i)
            rows.append({"slice_file_name": filename, "fsID": 100 + k, "start": 0.0, "end": 1.0, "salience": 1,
                         "fold": fold, "classID": US8K_IDS[name], "class": name})
    write_rows(root / "metadata" / "UrbanSound8K.csv", rows)
    return root


def make_csv(root: Path, labels: Sequence[str] = ("bark", "meow", "whistle"), clips_per_class: int = 4,
             folds: bool = True) -> Path:
    """``root/clips.csv`` with ``path,label[,fold]`` rows pointing at ``root/sounds/*.wav`` (relative paths)."""
    rows = []
    for k, label in enumerate(labels):
        for i in range(clips_per_class):
            write_clip(root / "sounds" / f"{label}-{i}.wav", k, i)
            rows.append({"path": f"sounds/{label}-{i}.wav", "label": label, **({"fold": i % 2} if folds else {})})
    return write_rows(root / "clips.csv", rows)


def write_rows(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_tiny_checkpoints(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """``(imagebind.pth, clip.pt)``: a tiny ImageBind checkpoint (audio + text towers, official key layout) and a
    tiny CLIP ViT-B/32-layout text tower state dict (512-d output)."""
    import torch

    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    imagebind = write_imagebind_checkpoint(folder / "imagebind_tiny.pth", "tiny", modalities=("audio", "text"),
                                           seed=seed)
    clip = folder / "clip_tiny.pt"
    torch.save(ClipTextEncoder.tiny(seed=seed).model.state_dict(), clip)
    return imagebind, clip
