"""Writing files: every write is atomic, and no output ever replaces one of the run's inputs.

:func:`atomic_writer` is the one way audiodetic writes a file: the bytes go to a unique temporary file in the
destination's folder (so the final rename never crosses file systems), are flushed and ``fsync``-ed, and only then
renamed over the destination. Readers see the old file or the whole new one, never a part; when writing fails the
temporary file is removed and the destination is untouched. The helpers below (:func:`write_bytes`,
:func:`write_text`, :func:`write_json`, :func:`save_npz`, :func:`save_npy`, :func:`save_image`,
:func:`save_figure`) are thin wrappers.

:func:`check_output` is the rule for output paths given by a user: refuse a path that is one of the inputs
(the same file, through any spelling or link), and refuse an existing file unless the caller allows replacing it.

Append-only JSON Lines (one JSON value per line) are the one exception to whole-file atomic writes: a long run
adds a line per finished item with :class:`JsonLinesAppender` (each line written in one call, flushed and
``fsync``-ed), so a killed process leaves every finished line intact and at most a torn last line without its
newline. :func:`iter_json_lines` skips such a tail and :func:`repair_json_lines` cuts it off.
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


class JsonLinesAppender:
    """Append JSON values to a JSON Lines file, one durable line each (see the module docstring).

    Use as a context manager or call :meth:`close`. ``path``'s folder must exist; the file is created if needed.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise MissingFileError(f"cannot write {self.path}: the folder {self.path.parent} does not exist")
        self._handle = open(self.path, "ab")

    def append(self, value: Any) -> int:
        """Write ``value`` as one line (flushed and fsynced); returns the byte offset where the line starts."""
        offset = self._handle.tell()
        self._handle.write(json.dumps(value).encode("utf-8") + b"\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return offset

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JsonLinesAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_json_lines(path: PathLike) -> Iterator[tuple[int, int, Any]]:
    """``(line_number, byte_offset, value)`` of each complete line of a JSON Lines file (1-based line numbers).

    Blank lines are skipped; a last line without its newline (a torn write) is ignored; any other line that is
    not JSON raises :class:`~audiodetic.errors.InputError` naming the file and line.
    """
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                return  # torn final write
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                raise InputError(f"{path}: line {number} is not JSON; the file is damaged or not a JSON Lines "
                                 f"file written by audiodetic") from None
            yield number, start, value


def read_json_line(path: PathLike, offset: int) -> bytes:
    """The raw bytes of the line starting at ``offset`` (without its newline)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.readline().rstrip(b"\n")


def repair_json_lines(path: PathLike) -> int:
    """Cut a torn last line (bytes after the final newline) off a JSON Lines file; returns the bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        end = size
        while end > 0:  # look backwards for the last newline, one block at a time
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            position = block.rfind(b"\n")
            if position >= 0:
                end = start + position + 1
                break
            end = start
        if end < size:
            handle.truncate(end)
    return size - end
