"""What the demo page's buttons do, without Gradio (so it is tested directly): sessions, prompts from uploads,
the result table, the JSON download, what each sound was heard as, and videos.

Each browser session keeps a :class:`~audiodetic.model.Predictor` (:mod:`.sessions`, bounded): the picture is
encoded once and changing only the sounds, texts or threshold re-scores the stored encoding. Every upload is
checked against the :class:`~audiodetic.demo.uploads.UploadLimits` before any work starts. Errors are
``ValueError`` subclasses (and ``FileNotFoundError`` for missing files) with messages meant for the page.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiodetic import io
from audiodetic.demo.sessions import DEFAULT_MAX_SESSIONS, Session, SessionStore
from audiodetic.demo.uploads import UploadLimits, check_picture, check_sounds, collect_sounds, upload_path
from audiodetic.errors import InputError
from audiodetic.inputs import as_rgb_array, check_file_size, check_threshold
from audiodetic.model import AudiodeticModel
from audiodetic.structures import Detections
from audiodetic.viz import draw

TABLE_HEADERS = ["label", "score", "x1", "y1", "x2", "y2"]
NAME_HEADERS = ["file", "name"]
ModelSource = AudiodeticModel | Callable[[], AudiodeticModel]


@dataclass(frozen=True)
class ImageResult:
    """What one detection request on a picture shows: the drawing (RGB ``PIL.Image`` of the picture's size), the
    table rows (:func:`table_rows`), the path of the session's JSON download (rewritten by its next request; the
    page hands Gradio a copy at once), the :class:`Detections` themselves, and what each sound prompt was heard as
    (one line per sound: the retrieval bridge's three heaviest labels and their weights; empty for other bridges)."""

    annotated: Any
    rows: list[list[Any]]
    json_path: str
    detections: Detections
    heard_as: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VideoResult:
    """A video request's results: the annotated ``.mp4`` (sampled frames, the original audio) and the track table
    rows (:data:`audiodetic.video.backend.TRACK_COLUMNS`)."""

    video_path: str
    tracks: list[list[Any]]


class DemoBackend:
    """What the page's buttons do, without Gradio (so it can be tested directly).

    Args:
        models: ``{display name: model or zero-argument loader}``; loaders run on first selection, once.
        limits: the largest uploads accepted (:class:`UploadLimits`).
        max_sessions: how many sessions (each holding one encoded picture) are kept at once.
    """

    def __init__(self, models: Mapping[str, ModelSource], *, limits: UploadLimits | None = None,
                 max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if not models:
            raise InputError("the demo needs at least one model")
        self._sources = dict(models)
        self._loaded: dict[str, AudiodeticModel] = {}
        self._lock = threading.Lock()
        self.limits = limits or UploadLimits()
        self.sessions = SessionStore(max_sessions)

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

    def forget(self, session_id: str | None) -> None:
        """Drop a session's encoding and outputs (its browser tab closed)."""
        self.sessions.drop(session_id)

    def close(self) -> None:
        """Drop every session and its files."""
        self.sessions.close()

    def run(self, image: Any, sound_files: Sequence[Any] | None, names: Any, recording: Any,
            recording_name: str | None, texts: str | None, threshold: float, model_name: str | None,
            session_id: str | None) -> ImageResult:
        """Detect the sounds' and texts' things in ``image`` for session ``session_id``.

        Args:
            image: the picture's upload (a path or Gradio's file record, :func:`upload_path`).
            sound_files, names, recording, recording_name: uploads and the names table (:func:`collect_sounds`).
            texts: comma-separated text prompts. threshold: the score threshold in ``[0, 1]``.
            model_name: one of :attr:`model_names` (``None``: the first).
            session_id: the caller's session (``None``: a one-off session).

        Raises ``ValueError`` (and subclasses) or ``FileNotFoundError`` with a message meant for the page; every
        limit is checked before the picture is decoded or anything is encoded.
        """
        if image is None or str(upload_path(image)) in ("", "."):
            raise InputError("Add an image first (upload, paste or take a webcam picture).")
        sounds = collect_sounds(sound_files, names, recording, recording_name)
        text_prompts = [t.strip() for t in (texts or "").split(",") if t.strip()]
        if not sounds and not text_prompts:
            raise InputError("Add at least one sound (upload or record one) or a text prompt.")
        threshold = check_threshold(threshold, argument="the score threshold")
        picture = check_picture(image, self.limits)
        check_sounds(sounds, self.limits)
        model = self.model(model_name)
        with self.sessions.use(session_id) as session:
            pixels = self._set_picture(session, picture, model_name or self.model_names[0], model)
            detections = session.predictor.predict(sounds or None, text_prompts=text_prompts or None,
                                                   score_threshold=threshold)
            json_path = io.write_json(session.folder / "detections.json",
                                      [detections.to_json_dict(image=picture.name)], indent=1)
        return ImageResult(draw(pixels, detections), table_rows(detections), str(json_path), detections,
                           heard_as(model, sounds))

    def run_video(self, video: Any, sound_files: Sequence[Any] | None, names: Any, recording: Any,
                  recording_name: str | None, texts: str | None, threshold: float, model_name: str | None,
                  session_id: str | None, *, soundtrack: bool = True, fps: float = 2.0) -> VideoResult:
        """Find what is sounding in ``video`` (its own soundtrack as a prompt, with the sounds and texts given),
        over at most :attr:`UploadLimits.max_video_seconds` from its start; same arguments as :meth:`run`."""
        from audiodetic.video.backend import annotate_video

        if video is None or str(upload_path(video)) in ("", "."):
            raise InputError("Add a video first.")
        sounds = collect_sounds(sound_files, names, recording, recording_name)
        text_prompts = [t.strip() for t in (texts or "").split(",") if t.strip()]
        if not (soundtrack or sounds or text_prompts):
            raise InputError("Use the video's soundtrack, or add a sound or a text prompt.")
        threshold = check_threshold(threshold, argument="the score threshold")
        path = upload_path(video)
        check_file_size(path, max_bytes=self.limits.max_bytes, argument="video")
        check_sounds(sounds, self.limits)
        model = self.model(model_name)
        with self.sessions.use(session_id) as session:
            annotated, rows = annotate_video(path, model=model, audio_prompts=sounds or None,
                                             text_prompts=text_prompts or None, soundtrack=soundtrack, fps=fps,
                                             end_s=self.limits.max_video_seconds, score_threshold=threshold,
                                             output_dir=session.folder)
        return VideoResult(str(annotated), rows)

    def _set_picture(self, session: Session, picture: Path, model_name: str, model: AudiodeticModel) -> np.ndarray:
        """The checked picture's pixels (``(H, W, 3)`` uint8 RGB, upright), with ``session.predictor`` holding their
        encoding: decoded and encoded only when the file's bytes or the model changed (a re-score of the same
        upload hashes the compressed file, and decodes nothing)."""
        digest = hashlib.blake2b(digest_size=16)
        with open(picture, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        key = (model_name, digest.hexdigest())
        if session.key != key:
            session.key = session.predictor = session.pixels = None
            pixels = as_rgb_array(picture)
            predictor = model.predictor()
            predictor.set_image(pixels)
            session.key, session.predictor, session.pixels = key, predictor, pixels
        return session.pixels


def heard_as(model: AudiodeticModel, sounds: Mapping[str, Sequence[str]]) -> list[str]:
    """What each sound prompt was heard as (:func:`audiodetic.bridge.explain.format_explanation`), when the model's
    sounds go through a bridge that mixes labels (retrieval); otherwise no lines."""
    from audiodetic.bridge.explain import explain_sounds, format_explanation
    from audiodetic.spaces import needs_bridge

    if not sounds:
        return []
    encoder = model.audio_encoder()
    if not needs_bridge(encoder.space):
        return []
    bridge = model.bridge()
    if not hasattr(bridge, "explain"):
        return []
    return format_explanation(explain_sounds(sounds, audio_encoder=encoder, bridge=bridge))


def table_rows(detections: Detections) -> list[list[Any]]:
    """``[label, score, x1, y1, x2, y2]`` per detection, best first (box in image pixels, 1 decimal)."""
    ordered = detections.sorted_by_score()
    return [[label, round(float(score), 3), *(round(float(v), 1) for v in box)]
            for label, score, box in zip(ordered.labels, ordered.scores, ordered.boxes)]
