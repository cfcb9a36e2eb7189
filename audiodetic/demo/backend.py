"""What the demo page's buttons do, without Gradio (so it is tested directly): sessions, prompts from uploads,
the result table and the JSON download.

Each browser session keeps a :class:`~audiodetic.model.Predictor` in its state: the picture is encoded once and
changing only the sounds, texts or threshold re-scores the stored encoding. Errors are ``ValueError`` subclasses
with messages meant for the page.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audiodetic import io
from audiodetic.errors import InputError
from audiodetic.model import AudiodeticModel, Predictor
from audiodetic.structures import Detections
from audiodetic.viz import draw

TABLE_HEADERS = ["label", "score", "x1", "y1", "x2", "y2"]
NAME_HEADERS = ["file", "name"]
ModelSource = AudiodeticModel | Callable[[], AudiodeticModel]


class DemoBackend:
    """What the page's buttons do, without Gradio (so it can be tested directly).

    Args:
        models: ``{display name: model or zero-argument loader}``; loaders run on first selection, once.
    """

    def __init__(self, models: Mapping[str, ModelSource]) -> None:
        if not models:
            raise InputError("the demo needs at least one model")
        self._sources = dict(models)
        self._loaded: dict[str, AudiodeticModel] = {}
        self._lock = threading.Lock()

    @property
    def model_names(self) -> list[str]:
        return list(self._sources)

    def model(self, name: str | None) -> AudiodeticModel:
        """The model called ``name`` (the first one when ``None``), loading it on first use."""
        name = name or self.model_names[0]
        if name not in self._sources:
            raise InputError(f"unknown model {name!r}; available: {self.model_names}")
        with self._lock:
            if name not in self._loaded:
                source = self._sources[name]
                self._loaded[name] = source if isinstance(source, AudiodeticModel) else source()
            return self._loaded[name]

    def predictor(self, session: dict[str, Any] | None, image: np.ndarray, model_name: str | None
                  ) -> tuple[Predictor, dict[str, Any]]:
        """The session's predictor for ``image``; encodes only when the image or the model changed."""
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
        digest.update(str(image.shape).encode())
        key = (model_name or self.model_names[0], digest.hexdigest())
        if session and session.get("key") == key:
            return session["predictor"], session
        predictor = self.model(model_name).predictor()
        predictor.set_image(image)
        return predictor, {"key": key, "predictor": predictor}

    def run(self, image: np.ndarray | None, sound_files: Sequence[Any] | None, names: Any, recording: str | None,
            recording_name: str | None, texts: str | None, threshold: float, model_name: str | None,
            session: dict[str, Any] | None) -> tuple[Any, list[list[Any]], str, dict[str, Any], Detections]:
        """Detect and return ``(annotated PIL image, table rows, JSON file path, new session, detections)``.

        Raises ``ValueError`` (and subclasses) with a message meant for the page.
        """
        if image is None:
            raise InputError("Add an image first (upload, paste or take a webcam picture).")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise InputError(f"The image must be an RGB picture; got an array of shape {image.shape}.")
        image = np.ascontiguousarray(image[..., :3])
        sounds = collect_sounds(sound_files, names, recording, recording_name)
        text_prompts = [t.strip() for t in (texts or "").split(",") if t.strip()]
        if not sounds and not text_prompts:
            raise InputError("Add at least one sound (upload or record one) or a text prompt.")
        predictor, session = self.predictor(session, image, model_name)
        detections = predictor.predict(sounds or None, text_prompts=text_prompts or None, score_threshold=threshold)
        return (draw(image, detections), table_rows(detections), write_json(detections), session, detections)


def collect_sounds(sound_files: Sequence[Any] | None, names: Any, recording: str | None,
                   recording_name: str | None) -> dict[str, list[str]]:
    """``{name: [paths]}`` from uploaded files (named by the names table, else by file stem) and a recording.

    Files given the same name are averaged into one prompt.
    """
    by_file = {}
    for row in _rows(names):
        if len(row) >= 2 and str(row[0]).strip() and str(row[1]).strip():
            by_file[str(row[0]).strip()] = str(row[1]).strip()
    sounds: dict[str, list[str]] = {}
    for item in sound_files or []:
        path = _upload_path(item)
        name = by_file.get(path.name, path.stem)
        sounds.setdefault(name, []).append(str(path))
    if recording:
        sounds.setdefault((recording_name or "").strip() or "recording", []).append(str(recording))
    return sounds


def name_rows(sound_files: Sequence[Any] | None, names: Any = None) -> list[list[str]]:
    """Rows ``[file, name]`` for the uploaded files, keeping names the user already edited."""
    kept = {str(row[0]): str(row[1]) for row in _rows(names) if len(row) >= 2}
    rows = []
    for item in sound_files or []:
        path = _upload_path(item)
        rows.append([path.name, kept.get(path.name, path.stem)])
    return rows


def _upload_path(item: Any) -> Path:
    """The server-side path of one Gradio upload (a path string, or a file object with ``.name``)."""
    return Path(item if isinstance(item, (str, Path)) else getattr(item, "name", str(item)))


def _rows(table: Any) -> list[list[Any]]:
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, dict):
        return [list(row) for row in table.get("data", [])]
    return [list(row) for row in table]


def short_paths(message: str, paths: Sequence[Any]) -> str:
    """``message`` with the server's temporary upload paths replaced by the uploaded file names."""
    for path in paths:
        if path:
            message = message.replace(str(path), Path(str(path)).name)
    return message


def table_rows(detections: Detections) -> list[list[Any]]:
    """``[label, score, x1, y1, x2, y2]`` per detection, best first (box in image pixels, 1 decimal)."""
    ordered = detections.sorted_by_score()
    return [[label, round(float(score), 3), *(round(float(v), 1) for v in box)]
            for label, score, box in zip(ordered.labels, ordered.scores, ordered.boxes)]


def write_json(detections: Detections, image_name: str = "image") -> str:
    """Write the CLI's JSON (a list with one object per image) to a new temporary file; returns its path."""
    directory = Path(tempfile.mkdtemp(prefix="audiodetic-demo-"))
    return str(io.write_json(directory / "detections.json", [detections.to_json_dict(image=image_name)], indent=1))
