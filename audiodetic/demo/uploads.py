"""What the page hands the backend - upload paths, the table of sound names - and the limits every upload passes
before any work starts.

An upload is checked from its size and header only (:mod:`audiodetic.inputs` owns the rules): a file larger than
:attr:`UploadLimits.max_bytes`, a picture of more than :attr:`UploadLimits.max_image_pixels` pixels or a sound
longer than :attr:`UploadLimits.max_audio_seconds` is refused with the limit in the message, and so is a file that
is not a picture or not a sound, before anything is decoded or encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiodetic.errors import InputError
from audiodetic.inputs import MEGABYTE, check_file_size, check_image_file, check_sound_file


@dataclass(frozen=True)
class UploadLimits:
    """The largest uploads the demo works on.

    Attributes:
        max_bytes: largest file, in bytes (also given to Gradio, which stops larger uploads in the browser).
        max_image_pixels: largest picture, width x height.
        max_audio_seconds: longest sound, in seconds.
        max_video_seconds: how much of an uploaded video is analysed, from its start, in seconds.
    """

    max_bytes: int = 50 * MEGABYTE
    max_image_pixels: int = 40_000_000
    max_audio_seconds: float = 300.0
    max_video_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_image_pixels", "max_audio_seconds", "max_video_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"upload limit {name} must be a positive number, got {value!r}")


def upload_path(item: Any) -> Path:
    """The server-side path of one Gradio upload: a path, Gradio's file record (``{"path": ...}``, what a handler
    gets without preprocessing) or a file object with ``.name``."""
    if isinstance(item, Mapping):
        item = item.get("path") or ""
    return Path(item if isinstance(item, (str, Path)) else getattr(item, "name", str(item)))


def check_picture(image: Any, limits: UploadLimits) -> Path:
    """The uploaded picture's path, after its size and header passed ``limits`` (nothing is decoded)."""
    path = upload_path(image)
    check_file_size(path, max_bytes=limits.max_bytes, argument="image")
    return check_image_file(path, max_pixels=limits.max_image_pixels,
                            hint=f"pictures of at most {limits.max_image_pixels / 1e6:g} megapixels are accepted")


def check_sounds(sounds: Mapping[str, Sequence[str]], limits: UploadLimits) -> None:
    """Refuse any sound file over the size or duration limit, or that is not audio, from its size and header."""
    for name, paths in sounds.items():
        for path in paths:
            check_file_size(path, max_bytes=limits.max_bytes, argument=f"sound {name!r}")
            check_sound_file(path, max_seconds=limits.max_audio_seconds, argument=f"sound {name!r}")


def collect_sounds(sound_files: Sequence[Any] | None, names: Any, recording: Any,
                   recording_name: str | None) -> dict[str, list[str]]:
    """``{name: [paths]}`` from uploaded files (named by the names table, else by file stem) and a recording.

    Files given the same name are averaged into one prompt.
    """
    by_file = {}
    for row in table_rows_of(names):
        if len(row) >= 2 and str(row[0]).strip() and str(row[1]).strip():
            by_file[str(row[0]).strip()] = str(row[1]).strip()
    sounds: dict[str, list[str]] = {}
    for item in sound_files or []:
        path = upload_path(item)
        name = by_file.get(path.name, path.stem)
        sounds.setdefault(name, []).append(str(path))
    if recording:
        sounds.setdefault((recording_name or "").strip() or "recording", []).append(str(upload_path(recording)))
    return sounds


def name_rows(sound_files: Sequence[Any] | None, names: Any = None) -> list[list[str]]:
    """Rows ``[file, name]`` for the uploaded files, keeping names the user already edited."""
    kept = {str(row[0]): str(row[1]) for row in table_rows_of(names) if len(row) >= 2}
    rows = []
    for item in sound_files or []:
        path = upload_path(item)
        rows.append([path.name, kept.get(path.name, path.stem)])
    return rows


def table_rows_of(table: Any) -> list[list[Any]]:
    """The rows of a Gradio table value: a list of rows, ``{"data": rows}`` or a pandas ``DataFrame``."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, dict):
        return [list(row) for row in table.get("data", [])]
    return [list(row) for row in table]


def short_paths(message: str, paths: Sequence[Any]) -> str:
    """``message`` with the server's temporary upload paths replaced by the uploaded file names."""
    for item in paths:
        path = upload_path(item) if item is not None else None
        if path is not None and str(path) not in ("", "."):
            message = message.replace(str(path), path.name)
    return message
