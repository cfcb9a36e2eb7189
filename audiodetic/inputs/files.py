"""Files as users hand them in: the size rule every upload passes before it is opened."""

from __future__ import annotations

import os
from pathlib import Path

from audiodetic.errors import InputError, MissingFileError

MEGABYTE = 1024 * 1024
"""Bytes in the megabyte of every size message (the 1024-based unit browsers and Gradio show as "MB")."""


def format_size(size: int) -> str:
    """``52428800`` -> ``"50.0 MB"`` (1024-based units, one decimal; bytes below 1 kB)."""
    if size < 1024:
        return f"{size} bytes"
    if size < MEGABYTE:
        return f"{size / 1024:.1f} kB"
    return f"{size / MEGABYTE:.1f} MB"


def check_file_size(path: str | os.PathLike[str], *, max_bytes: int, argument: str = "file") -> int:
    """The size of ``path`` in bytes, refusing a missing file or one larger than ``max_bytes`` (the message gives
    both sizes) before anything reads it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{argument}: file not found: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{argument}: {path} is {format_size(size)}; files of at most {format_size(max_bytes)} "
                         "are accepted")
    return size
