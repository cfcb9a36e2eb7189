"""Sound-source localisation datasets in their public layouts.

* **VGG-Sound Source**: ``vggss.json``, a list of ``{"file", "class", "bbox": [[x1, y1, x2, y2], ...]}`` with
  coordinates normalised to ``[0, 1]``; media under ``DATA/frames/<file>.jpg`` and ``DATA/audio/<file>.wav``.
* **Flickr-SoundNet**: one XML file per test image, ``ANNOTATIONS/<id>.xml``, whose ``bbox`` elements hold
  ``xmin, ymin, xmax, ymax`` in the 256-pixel frame the images were annotated in (the reference loaders skip the
  element's first child and read the next four in that order; named children are read by name when present);
  media under ``DATA/frames/<id>.jpg`` and ``DATA/audio/<id>.wav``.
* **AVSBench S4**: ``s4_meta_data.csv`` (first column the video name, columns ``category`` and ``split``); frames
  ``ROOT/visual_frames/<split>/<category>/<video>/<video>_<k>.png`` and masks
  ``ROOT/gt_masks/<split>/<category>/<video>/<video>_<k>.png`` for ``k = 1..5``, audio
  ``ROOT/audio_wav/<split>/<category>/<video>.wav``. Frame ``k`` shows second ``k`` of the 5-s clip; its audio
  window is centred on ``k - 0.5`` s.

Frames may be any image format (``.jpg``, ``.png``...); a missing file raises
:class:`~audiodetic.errors.MissingFileError` naming it, unless ``skip_missing`` (then it is left out and counted).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from audiodetic.errors import InputError, MissingFileError
from audiodetic.eval.localisation_metrics import FLICKR_FRAME, flickr_gt_map, vggss_gt_map

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
S4_FRAMES = 5
DATASETS = ("vggss", "flickr", "s4")


@dataclass(frozen=True)
class FrameSample:
    """One frame with its audio: ``centre_s`` is the time its audio window is centred on (``None``: the middle
    of the audio file); ``boxes`` the truth boxes ``[x1, y1, x2, y2]`` (single-frame protocol: normalised to
    ``[0, 1]`` when ``box_frame`` is ``None``, else pixels of a ``box_frame``-pixel frame, Flickr's 256) or
    ``mask`` the truth mask file (S4). :attr:`gt` builds the truth map from the boxes."""

    name: str
    image: Path
    audio: Path
    centre_s: float | None = None
    boxes: tuple[tuple[float, ...], ...] = ()
    box_frame: int | None = None
    mask: Path | None = None
    video: str = ""
    category: str = ""

    @property
    def gt(self) -> np.ndarray | None:
        """The ``(224, 224)`` float64 truth map of :attr:`boxes` (built on each call), ``None`` without boxes."""
        if not self.boxes:
            return None
        if self.box_frame is None:
            return vggss_gt_map(self.boxes)
        return flickr_gt_map(self.boxes, frame=self.box_frame)


@dataclass
class Loaded:
    """Samples and the names of the ones left out because files were missing."""

    samples: list[FrameSample]
    missing: list[str]


def _find(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _media(data: Path, name: str, missing: list[str], skip_missing: bool) -> tuple[Path, Path] | None:
    image = _find(data / "frames", name, IMAGE_SUFFIXES)
    audio = _find(data / "audio", name, AUDIO_SUFFIXES)
    if image is not None and audio is not None:
        return image, audio
    absent = f"{data / 'frames' / name}.jpg" if image is None else f"{data / 'audio' / name}.wav"
    if not skip_missing:
        raise MissingFileError(f"{absent} not found (frames/<name>.jpg|.png and audio/<name>.wav are needed for "
                               f"every annotated sample; pass --skip-missing to leave such samples out)")
    missing.append(name)
    return None


def read_vggss(annotations: str | os.PathLike[str], data: str | os.PathLike[str], *,
               skip_missing: bool = False) -> Loaded:
    """VGG-SS samples from ``vggss.json`` and the ``frames/``, ``audio/`` folders under ``data``."""
    path, data = Path(annotations), Path(data)
    if not path.is_file():
        raise MissingFileError(f"VGG-SS annotation file not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not JSON ({error})") from None
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of {{'file', 'class', 'bbox'}} entries")
    samples, missing = [], []
    for index, entry in enumerate(entries):
        try:
            name, boxes = str(entry["file"]), [[float(v) for v in box] for box in entry["bbox"]]
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{path}: entry {index} is not {{'file', 'class', 'bbox': [[x1, y1, x2, y2]]}} "
                             f"({error!r})") from None
        if not boxes or any(len(box) != 4 for box in boxes):
            raise InputError(f"{path}: entry {index} ({name}) needs at least one [x1, y1, x2, y2] box")
        media = _media(data, name, missing, skip_missing)
        if media is not None:
            samples.append(FrameSample(name, media[0], media[1], boxes=tuple(tuple(box) for box in boxes),
                                       category=str(entry.get("class", ""))))
    return Loaded(samples, missing)


def flickr_boxes(path: Path) -> list[list[int]]:
    """The annotator boxes of one Flickr-SoundNet XML file (256-pixel frame)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise InputError(f"{path} is not a readable XML annotation ({error})") from None
    boxes = []
    for element in root.iter("bbox"):
        children = list(element)
        named = {child.tag.lower(): child.text for child in children}
        try:
            if all(k in named for k in ("xmin", "ymin", "xmax", "ymax")):
                values = [named[k] for k in ("xmin", "ymin", "xmax", "ymax")]
            else:
                values = [child.text for child in children[1:5]]
            box = [int(float(str(v).strip())) for v in values]
        except (TypeError, ValueError) as error:
            raise InputError(f"{path}: a bbox does not hold four integers ({error})") from None
        if len(box) != 4:
            raise InputError(f"{path}: a bbox needs xmin, ymin, xmax, ymax; found {len(box)} values")
        boxes.append(box)
    if not boxes:
        raise InputError(f"{path} holds no bbox element")
    return boxes


def read_flickr(annotations: str | os.PathLike[str], data: str | os.PathLike[str], *,
                skip_missing: bool = False) -> Loaded:
    """Flickr-SoundNet samples from a folder of XML files and the ``frames/``, ``audio/`` folders under ``data``."""
    folder, data = Path(annotations), Path(data)
    if not folder.is_dir():
        raise MissingFileError(f"Flickr-SoundNet annotation folder not found: {folder}")
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise InputError(f"{folder} holds no .xml annotation files")
    samples, missing = [], []
    for file in files:
        media = _media(data, file.stem, missing, skip_missing)
        if media is not None:
            boxes = tuple(tuple(box) for box in flickr_boxes(file))
            samples.append(FrameSample(file.stem, media[0], media[1], boxes=boxes, box_frame=FLICKR_FRAME))
    return Loaded(samples, missing)


def read_s4(root: str | os.PathLike[str], meta: str | os.PathLike[str] | None = None, *, split: str = "test",
            skip_missing: bool = False) -> Loaded:
    """AVSBench S4 frames (5 per video) with their masks and audio, for one ``split``."""
    root = Path(root)
    meta = Path(meta) if meta is not None else root.parent / "s4_meta_data.csv"
    if not meta.is_file():
        raise MissingFileError(f"S4 meta file not found: {meta} (give --meta s4_meta_data.csv)")
    with open(meta, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or "category" not in rows[0] or "split" not in rows[0]:
        raise InputError(f"{meta}: expected a header with 'category' and 'split' columns (AVSBench's s4_meta_data)")
    header = rows[0]
    category_at, split_at = header.index("category"), header.index("split")
    samples, missing = [], []
    for line, row in enumerate(rows[1:], 2):
        if len(row) <= max(category_at, split_at):
            raise InputError(f"{meta}:{line}: expected {len(header)} columns, got {len(row)}")
        if row[split_at] != split:
            continue
        video, category = row[0], row[category_at]
        audio = root / "audio_wav" / split / category / f"{video}.wav"
        for k in range(1, S4_FRAMES + 1):
            image = root / "visual_frames" / split / category / video / f"{video}_{k}.png"
            mask = root / "gt_masks" / split / category / video / f"{video}_{k}.png"
            absent = next((p for p in (image, mask, audio) if not p.is_file()), None)
            if absent is not None:
                if not skip_missing:
                    raise MissingFileError(f"{absent} not found (S4 layout; pass --skip-missing to leave it out)")
                missing.append(f"{video}_{k}")
                continue
            samples.append(FrameSample(f"{video}_{k}", image, audio, centre_s=k - 0.5, mask=mask, video=video,
                                       category=category))
    return Loaded(samples, missing)


def read_mask(path: Path) -> np.ndarray:
    """A PNG mask as ``(H, W)`` bool (any non-zero pixel is foreground, as PIL's mode ``1`` reads it)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L")) > 0
    except OSError as error:
        raise InputError(f"cannot read mask {path} ({error})") from None


def load_dataset(kind: str, *, annotations: Any = None, data: Any = None, meta: Any = None, split: str = "test",
                 skip_missing: bool = False) -> Loaded:
    """Samples of ``kind`` (``vggss``, ``flickr``, ``s4``) from the paths the CLI takes."""
    if kind not in DATASETS:
        raise InputError(f"unknown dataset {kind!r}; choose one of {', '.join(DATASETS)}")
    if data is None:
        raise InputError(f"--data is needed: the {kind} media folder")
    if kind == "s4":
        return read_s4(data, meta, split=split, skip_missing=skip_missing)
    if annotations is None:
        raise InputError(f"--annotations is needed for {kind} ({'vggss.json' if kind == 'vggss' else 'the XML folder'})")
    reader = read_vggss if kind == "vggss" else read_flickr
    return reader(annotations, data, skip_missing=skip_missing)
