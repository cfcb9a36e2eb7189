"""Writing files: every write is atomic, and no output ever replaces one of the run's inputs.

:func:`atomic_writer` is the one way audiodetic writes a file: the bytes go to a unique temporary file in the
destination's folder (so the final rename never crosses file systems), are flushed and ``fsync``-ed, and only then
renamed over the destination. Readers see the old file or the whole new one, never a part; when writing fails the
temporary file is removed and the destination is untouched. The helpers below (:func:`write_bytes`,
:func:`write_text`, :func:`write_json`, :func:`save_npz`, :func:`save_npy`, :func:`save_image`,
:func:`save_figure`) are thin wrappers.

:func:`check_output` is the rule for output paths given by a user: refuse a path that is one of the inputs
(the same file, through any spelling or link), and refuse an existing file unless the caller allows replacing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Mapping

import numpy as np

from audiodetic.errors import InputError, MissingFileError, OutputExistsError

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_writer(path: PathLike, *, make_parents: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success it replaces ``path`` atomically.

    Args:
        path: the destination file.
        make_parents: create missing parent folders (otherwise a missing folder raises ``MissingFileError``).

    Yields: a binary file object. Leaving the ``with`` block normally publishes the file; an exception removes
    the temporary file and re-raises, leaving ``path`` as it was.
    """
    path = Path(path)
    folder = path.parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise MissingFileError(f"cannot write {path}: the folder {folder} does not exist")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable where the platform allows opening folders (POSIX); a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_bytes(path: PathLike, data: bytes, **options: Any) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_writer(path, **options) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: PathLike, text: str, **options: Any) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"), **options)


def write_json(path: PathLike, data: Any, *, indent: int | None = 2, **options: Any) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(data, indent=indent) + "\n", **options)


def save_npz(path: PathLike, arrays: Mapping[str, np.ndarray], **options: Any) -> Path:
    """``np.savez(path, **arrays)`` atomically (the name is kept as given; no ``.npz`` is appended)."""
    with atomic_writer(path, **options) as handle:
        np.savez(handle, **arrays)
    return Path(path)


def save_npy(path: PathLike, array: np.ndarray, **options: Any) -> Path:
    """``np.save(path, array)`` atomically (the name is kept as given; no ``.npy`` is appended)."""
    with atomic_writer(path, **options) as handle:
        np.save(handle, np.asarray(array))
    return Path(path)


def save_image(path: PathLike, image: Any, **options: Any) -> Path:
    """Save a ``PIL.Image`` atomically, in the format its suffix names (``.png``, ``.jpg``...)."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    image_format = Image.registered_extensions().get(suffix)
    if image_format is None:
        raise InputError(f"cannot save an image as {Path(path).name!r}: unknown picture suffix {suffix!r} "
                         f"(use .png or .jpg)")
    with atomic_writer(path, **options) as handle:
        image.save(handle, format=image_format)
    return Path(path)


def save_figure(path: PathLike, figure: Any, *, dpi: int = 110, **options: Any) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, e.g. ``.png``)."""
    with atomic_writer(path, **options) as handle:
        figure.savefig(handle, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=dpi)
    return Path(path)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (after resolving links, ``..`` and case where the file system
    ignores it). A path that does not exist is the same as another only when both resolve to one spelling."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_output(path: PathLike, *, inputs: Iterable[PathLike] = (), overwrite: bool = True,
                 what: str = "output") -> Path:
    """Check an output path before any work starts; returns it as a ``Path``.

    Args:
        path: where the output will be written.
        inputs: the files the run reads (images, sounds, videos, vocabularies...): the output may be none of them.
        overwrite: whether an existing file at ``path`` may be replaced.
        what: the option's name for messages (``"--output"``, ``"--draw"``).

    Raises:
        OutputExistsError: ``path`` is one of ``inputs``, or exists and ``overwrite`` is false, or is a folder.
        MissingFileError: the folder that would hold ``path`` does not exist.
    """
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise OutputExistsError(f"{what} {path} is one of the inputs ({source}); refusing to write over it - "
                                    f"choose another output path")
    if path.is_dir():
        raise OutputExistsError(f"{what} {path} is a folder; give a file path")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{what} {path} already exists; pass --overwrite (or overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise MissingFileError(f"{what} {path}: the folder {path.parent} does not exist")
    return path
