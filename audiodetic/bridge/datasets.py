"""Labelled sound clips for fitting and scoring bridges: the ESC-50 and UrbanSound8K layouts and a plain CSV.

* **ESC-50**: ``ROOT/audio/*.wav`` and ``ROOT/meta/esc50.csv`` with columns ``filename, fold, target, category``
  (others ignored); 50 classes, 5 folds. Categories are ESC-50's own (``dog``, ``car_horn`` ...).
* **UrbanSound8K**: ``ROOT/audio/fold<N>/<slice_file_name>`` and ``ROOT/metadata/UrbanSound8K.csv`` with columns
  ``slice_file_name, fold, classID, class``; 10 classes, 10 folds.
* **CSV**: a file with a header holding ``path`` and ``label`` (and optionally ``fold``, an integer); paths are
  relative to the CSV's folder unless absolute; any labels.

Class names are cleaned for prompting (``car_horn`` -> ``car horn``). Errors name the file and the row (the line
number in the CSV, header = line 1) and say what is allowed. Clips that cannot be used (empty, silent, NaN) are not
rejected here: :mod:`audiodetic.bridge.clips` skips and counts them when it encodes them.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from audiodetic.errors import InputError, MissingFileError

LAYOUTS = ("esc50", "urbansound8k", "csv")
URBANSOUND8K_CLASSES = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
                        "gun_shot", "jackhammer", "siren", "street_music")
"""UrbanSound8K's classes in ``classID`` order (0..9)."""
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
_HINT = ("expected an ESC-50 folder (audio/*.wav + meta/esc50.csv), an UrbanSound8K folder (audio/foldN/*.wav + "
         "metadata/UrbanSound8K.csv) or a CSV file with the columns path,label[,fold]")


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


@dataclass(frozen=True)
class LabelledClips:
    """Sound clips with class labels (and folds, when the dataset defines them).

    Attributes:
        source: the folder or CSV given. layout: one of :data:`LAYOUTS`. name: a short dataset name for reports.
        paths: ``N`` clip files. labels: ``N`` class indices into ``classes``. classes: ``C`` class names, cleaned.
        folds: ``N`` fold numbers, or ``None``. rows: the metadata line of each clip (for messages).
    """

    source: str
    layout: str
    name: str
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    folds: tuple[int, ...] | None
    rows: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.paths)
        if not n:
            raise InputError(f"{self.source}: lists no clips")
        if len(self.labels) != n or len(self.rows) != n or (self.folds is not None and len(self.folds) != n):
            raise InputError(f"{self.source}: paths, labels, rows and folds must have one entry per clip")
        used = sorted(set(self.labels))
        if used != list(range(len(self.classes))):
            raise InputError(f"{self.source}: class indices {used[:8]} do not match {len(self.classes)} classes")
        if len(self.classes) < 2:
            raise InputError(f"{self.source}: only one class ({self.classes[0]!r}) among {n} clips; zero-shot "
                             f"classification and a paired bridge need at least 2 classes")

    def __len__(self) -> int:
        return len(self.paths)

    def label_array(self) -> np.ndarray:
        """``(N,)`` int64 class indices."""
        return np.asarray(self.labels, np.int64)

    def fold_array(self) -> np.ndarray | None:
        """``(N,)`` int64 folds, or ``None``."""
        return None if self.folds is None else np.asarray(self.folds, np.int64)


def _read_rows(path: Path, required: Sequence[str], what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """``(columns, [(line number, row)])`` of a CSV whose header has every ``required`` column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in columns]
            if missing:
                raise InputError(f"{path}: a {what} CSV needs the columns {', '.join(required)}; found "
                                 f"{', '.join(columns) or 'no header'} (missing {', '.join(missing)})")
            rows = []
            for row in reader:
                cleaned = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
                if any(cleaned.values()):
                    rows.append((reader.line_num, cleaned))
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text CSV ({error})") from None
    if not rows:
        raise InputError(f"{path}: the CSV has a header but no rows")
    return columns, rows


def _fold(value: str, path: Path, line: int, allowed: range | None) -> int:
    try:
        fold = int(value)
    except ValueError:
        fold = -1
    if fold < (allowed.start if allowed else 0) or (allowed is not None and fold not in allowed):
        span = f"{allowed.start}..{allowed.stop - 1}" if allowed else "an integer >= 0"
        raise InputError(f"{path}, row {line}: fold {value!r} is not allowed; folds are {span}")
    return fold


def _check_files(paths: list[Path], lines: list[int], meta: Path) -> None:
    missing = [(line, p) for line, p in zip(lines, paths) if not p.is_file()]
    if missing:
        shown = "; ".join(f"row {line}: {p}" for line, p in missing[:3])
        raise MissingFileError(f"{meta}: {len(missing)} of {len(paths)} listed clips are missing ({shown}"
                               f"{' ...' if len(missing) > 3 else ''}); fix the files or remove those rows")
    seen: dict[Path, int] = {}
    for line, p in zip(lines, paths):
        if p in seen:
            raise InputError(f"{meta}, row {line}: {p} is listed again (first at row {seen[p]}); list each clip once")
        seen[p] = line


def _known_class_rows(rows: list[tuple[int, dict]], meta: Path, known: Sequence[str], label_column: str,
                      id_column: str, dataset: str) -> list[int]:
    """Index into ``known`` of every row's label, checked against its numeric class id column."""
    index = {_key(name): i for i, name in enumerate(known)}
    out = []
    for line, row in rows:
        label = row[label_column]
        if _key(label) not in index:
            shown = ", ".join(known[:6])
            raise InputError(f"{meta}, row {line}: {label_column} {label!r} is not one of the {len(known)} "
                             f"{dataset} classes ({shown}, ...); for other labels use a CSV with path,label[,fold]")
        i = index[_key(label)]
        if row[id_column] and row[id_column] != str(i):
            raise InputError(f"{meta}, row {line}: {id_column} {row[id_column]!r} does not match {label_column} "
                             f"{label!r} (class {i} of {dataset})")
        out.append(i)
    return out


def _finish(source: Path, layout: str, name: str, paths: list[Path], class_ids: list[int], names: Sequence[str],
            folds: list[int] | None, lines: list[int]) -> LabelledClips:
    """Renumber the classes present (in the dataset's own order) and build the :class:`LabelledClips`."""
    from audiodetic.labels import clean_name

    present = sorted(set(class_ids))
    renumber = {c: i for i, c in enumerate(present)}
    return LabelledClips(str(source), layout, name, tuple(paths), tuple(renumber[c] for c in class_ids),
                         tuple(clean_name(names[c]) for c in present), None if folds is None else tuple(folds),
                         tuple(lines))


def read_esc50(root: Path) -> LabelledClips:
    """The ESC-50 layout under ``root``."""
    from audiodetic.labels import dataset_names

    meta = root / "meta" / "esc50.csv"
    _, rows = _read_rows(meta, ("filename", "fold", "target", "category"), "ESC-50 meta")
    classes = _known_class_rows(rows, meta, dataset_names("esc50"), "category", "target", "ESC-50")
    paths = [root / "audio" / row["filename"] for _, row in rows]
    lines = [line for line, _ in rows]
    folds = [_fold(row["fold"], meta, line, range(1, 6)) for line, row in rows]
    _check_files(paths, lines, meta)
    return _finish(root, "esc50", "ESC-50", paths, classes, dataset_names("esc50"), folds, lines)


def read_urbansound8k(root: Path) -> LabelledClips:
    """The UrbanSound8K layout under ``root``."""
    meta = root / "metadata" / "UrbanSound8K.csv"
    _, rows = _read_rows(meta, ("slice_file_name", "fold", "classID", "class"), "UrbanSound8K metadata")
    classes = _known_class_rows(rows, meta, URBANSOUND8K_CLASSES, "class", "classID", "UrbanSound8K")
    lines = [line for line, _ in rows]
    folds = [_fold(row["fold"], meta, line, range(1, 11)) for line, row in rows]
    paths = [root / "audio" / f"fold{fold}" / row["slice_file_name"] for fold, (_, row) in zip(folds, rows)]
    _check_files(paths, lines, meta)
    return _finish(root, "urbansound8k", "UrbanSound8K", paths, classes, URBANSOUND8K_CLASSES, folds, lines)


def read_csv(path: Path) -> LabelledClips:
    """A ``path,label[,fold]`` CSV (paths relative to its folder)."""
    from audiodetic.labels import clean_name

    columns, rows = _read_rows(path, ("path", "label"), "labelled-clips")
    has_fold = "fold" in columns
    paths, labels, folds, lines = [], [], [], []
    for line, row in rows:
        if not row["path"] or not clean_name(row["label"]):
            raise InputError(f"{path}, row {line}: every row needs a path and a non-empty label, got "
                             f"path={row['path']!r}, label={row['label']!r}")
        clip = Path(row["path"])
        paths.append(clip if clip.is_absolute() else path.parent / clip)
        labels.append(clean_name(row["label"]))
        if has_fold:
            folds.append(_fold(row["fold"], path, line, None))
        lines.append(line)
    _check_files(paths, lines, path)
    names = sorted(set(labels), key=str.lower)
    if len({n.lower() for n in names}) != len(names):
        raise InputError(f"{path}: labels differ only in case ({names[:6]}...); spell each class one way")
    index = {n: i for i, n in enumerate(names)}
    return _finish(path, "csv", path.stem, paths, [index[n] for n in labels], names, folds if has_fold else None,
                   lines)


def load_labelled_clips(source: str | os.PathLike[str]) -> LabelledClips:
    """Read a labelled-audio dataset: an ESC-50 or UrbanSound8K folder, or a ``path,label[,fold]`` CSV file."""
    path = Path(source)
    if not path.exists():
        raise MissingFileError(f"dataset not found: {path} ({_HINT})")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InputError(f"{path}: {_HINT}")
        return read_csv(path)
    if (path / "meta" / "esc50.csv").is_file():
        return read_esc50(path)
    if (path / "metadata" / "UrbanSound8K.csv").is_file():
        return read_urbansound8k(path)
    raise InputError(f"{path}: not a labelled-audio dataset; {_HINT}")


def audio_files(source: str | os.PathLike[str]) -> list[Path]:
    """Sound files for unlabelled statistics: a dataset's clips (any layout above), or every audio file under a
    folder (recursively, sorted; suffixes :data:`AUDIO_SUFFIXES`)."""
    path = Path(source)
    if not path.exists():
        raise MissingFileError(f"audio folder not found: {path}")
    if path.is_file() or (path / "meta" / "esc50.csv").is_file() or (path / "metadata" / "UrbanSound8K.csv").is_file():
        return list(load_labelled_clips(path).paths)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputError(f"{path}: holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files
