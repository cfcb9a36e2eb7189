"""Sound-class -> detection-category tables and the audio clips behind each sound class.

Tables are CSV files with columns ``sound_class, category, notes``: one row per sound class, at most one
category per sound class (a clip must not prompt two categories), empty ``category`` for sounds that left out
(no visible object, or an ambiguous one; ``notes`` says why). Several sound classes may map to one category
(ESC-50 ``rooster``, ``hen``, ``crow`` -> COCO ``bird``); that category's prompt then draws clips from all of them.
Built-in tables live in ``audiodetic/eval/data/``: ``esc50`` (all 50 classes), ``audioset`` (AudioSet display
names) and ``vggsound`` (VGGSound class names), each for ``coco`` and ``lvis``; the last two list only classes
with a clear sounding object.

Clips are listed by a metadata CSV with at least ``filename`` and ``category`` columns (the ESC-50 layout:
``<root>/audio/<filename>`` and ``<root>/meta/esc50.csv`` with ``filename, fold, target, category, esc10,
src_file, take``); another dataset can be used by writing such a CSV.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

from audiodetic.errors import InputError, MissingFileError

BUILTIN_MAPS: tuple[str, ...] = ("esc50", "audioset", "vggsound")


def sound_key(name: str) -> str:
    """Sound-class names compare case-insensitively with ``_`` = space (ESC-50's CSV writes ``car_horn``)."""
    return " ".join(name.replace("_", " ").split()).lower()


@dataclass(frozen=True)
class MappingRow:
    """One table row; ``category`` is ``None`` for a sound class that was left out."""

    sound_class: str
    category: str | None
    notes: str = ""


@dataclass(frozen=True)
class SoundMapping:
    """A sound-class -> category table."""

    rows: tuple[MappingRow, ...]
    source: str

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for row in self.rows:
            if sound_key(row.sound_class) in seen:
                raise InputError(f"{self.source}: sound class {row.sound_class!r} appears twice; each sound class "
                                 "maps to at most one category")
            seen.add(sound_key(row.sound_class))
        if not self.mapped_rows:
            raise InputError(f"{self.source}: no sound class is mapped to a category")

    @property
    def mapped_rows(self) -> tuple[MappingRow, ...]:
        return tuple(row for row in self.rows if row.category)

    @property
    def categories(self) -> tuple[str, ...]:
        """Mapped category names, in first-appearance order, without repeats."""
        return tuple(dict.fromkeys(row.category for row in self.mapped_rows if row.category))

    def sound_classes(self, category: str) -> tuple[str, ...]:
        """The sound classes whose clips prompt ``category``."""
        return tuple(row.sound_class for row in self.mapped_rows if row.category == category)


def builtin_mapping_path(name: str, kind: str) -> Path:
    """The packaged table for ``name`` in ``BUILTIN_MAPS`` and dataset ``kind`` (``coco`` or ``lvis``)."""
    if name not in BUILTIN_MAPS:
        raise InputError(f"unknown built-in sound map {name!r}; choose one of {BUILTIN_MAPS} or give a CSV path")
    if kind not in ("coco", "lvis"):
        raise InputError(f"dataset kind must be 'coco' or 'lvis', got {kind!r}")
    return Path(str(resources.files("audiodetic.eval") / "data" / f"{name}_{kind}.csv"))


def read_mapping(path: str | os.PathLike[str]) -> SoundMapping:
    """Read a ``sound_class, category[, notes]`` CSV table."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"sound map not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"sound_class", "category"} <= set(reader.fieldnames):
            raise InputError(f"{path}: a sound map needs the columns sound_class,category[,notes]; "
                             f"found {reader.fieldnames}")
        rows = tuple(MappingRow(row["sound_class"].strip(), (row["category"] or "").strip() or None,
                                (row.get("notes") or "").strip()) for row in reader if row["sound_class"].strip())
    return SoundMapping(rows, str(path))


def load_mapping(name_or_path: str | os.PathLike[str], kind: str) -> SoundMapping:
    """A built-in table (``"esc50"``, ``"audioset"``) for dataset ``kind``, or a CSV file."""
    if str(name_or_path) in BUILTIN_MAPS:
        return read_mapping(builtin_mapping_path(str(name_or_path), kind))
    if not Path(name_or_path).is_file():
        raise MissingFileError(f"sound map {str(name_or_path)!r} is neither a built-in table {BUILTIN_MAPS} "
                                "nor a CSV file")
    return read_mapping(name_or_path)


@dataclass(frozen=True)
class ClipIndex:
    """Audio clips per sound class: ``{sound_key(sound_class): (path, ...)}``, paths sorted by file name."""

    clips: dict[str, tuple[Path, ...]]
    source: str

    def for_classes(self, sound_classes: Iterable[str]) -> tuple[Path, ...]:
        """All clips of these sound classes (sorted, so sampling is reproducible)."""
        keys = {sound_key(c) for c in sound_classes}
        return tuple(sorted((p for k in keys for p in self.clips.get(k, ())), key=lambda p: p.name))


def read_clip_index(audio_root: str | os.PathLike[str], meta: str | os.PathLike[str] | None = None,
                    audio_dir: str = "audio") -> ClipIndex:
    """Index clips in the ESC-50 layout: ``meta`` (default ``<root>/meta/esc50.csv``) lists ``filename`` and
    ``category``; files are ``<root>/<audio_dir>/<filename>``. Missing files are an error (naming a few)."""
    root = Path(audio_root)
    if not root.is_dir():
        raise MissingFileError(f"audio folder not found: {root}")
    meta_path = Path(meta) if meta is not None else root / "meta" / "esc50.csv"
    if not meta_path.is_file():
        raise MissingFileError(f"audio metadata CSV not found: {meta_path} (ESC-50 layout: <root>/meta/esc50.csv; "
                                "or pass --audio-meta with filename,category columns)")
    clips: dict[str, list[Path]] = {}
    missing: list[str] = []
    with open(meta_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"filename", "category"} <= set(reader.fieldnames):
            raise InputError(f"{meta_path}: needs columns filename,category (ESC-50 meta format); "
                             f"found {reader.fieldnames}")
        for row in reader:
            path = root / audio_dir / row["filename"]
            if not path.is_file():
                missing.append(str(path))
                continue
            clips.setdefault(sound_key(row["category"]), []).append(path)
    if missing:
        raise MissingFileError(f"{len(missing)} clips listed in {meta_path} are missing, e.g. {missing[:3]}")
    return ClipIndex({k: tuple(sorted(v, key=lambda p: p.name)) for k, v in clips.items()}, str(meta_path))
