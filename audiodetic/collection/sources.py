"""Which images a collection run covers: files, folders, quoted globs and list files, in order, each once.

``photo.jpg`` is one image; a folder gives its image files (sorted, not recursive, by suffix); a quoted glob such
as ``'shots/**/*.jpg'`` gives its matching files (sorted; ``**`` recurses); a ``.txt`` file lists images, one path
a line (blank lines and lines starting with ``#`` are skipped; relative paths are relative to the list file's
folder). The same file named twice (through any spelling or link) is run once, where it first appears.

A file, folder or glob named on the command line that finds nothing is an error before anything runs. A path
in a list file that does not exist is a :class:`Missing` entry: reported and counted as a failed image while the
run goes on (or stops the run at once with ``--fail-fast``).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from audiodetic.errors import InputError, MissingFileError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
LIST_SUFFIXES = (".txt",)


@dataclass(frozen=True)
class ImageItem:
    """One image of the run.

    Attributes:
        image: the path as the results name it (as given, or joined to a list file's folder).
        path: the absolute path the image is read from.
        index: its position in the run's order (0-based).
    """

    image: str
    path: str
    index: int


@dataclass(frozen=True)
class Missing:
    """A list-file entry that names no file: ``where`` is ``"LIST.txt:LINE"``."""

    image: str
    where: str
    reason: str


def image_key(path: str) -> str:
    """The identity of an image file: its absolute path with links resolved."""
    return os.path.realpath(path)


def _folder_images(folder: Path) -> list[str]:
    images = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise MissingFileError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def _list_file(path: Path) -> tuple[list[str], list[Missing]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"list file {path} is not UTF-8 text (one image path a line)") from None
    except OSError as error:
        raise InputError(f"cannot read the list file {path}: {error}") from None
    found, missing = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        image = entry if os.path.isabs(entry) else os.path.join(os.path.dirname(str(path)), entry)
        if os.path.isfile(image):
            found.append(image)
        else:
            reason = "is a folder, not an image file" if os.path.isdir(image) else "no such file"
            missing.append(Missing(image, f"{path}:{number}", reason))
    return found, missing


def list_images(items: Sequence[str]) -> tuple[list[ImageItem], list[Missing]]:
    """The run's images (see the module docstring) and the list-file entries that name no file.

    Raises:
        MissingFileError: a named file, folder or glob finds nothing (or a folder holds no images).
        InputError: a list file cannot be read as text.
    """
    if not items:
        raise InputError("no images given: name image files, folders, quoted globs or a list file (.txt)")
    found: list[str] = []
    missing: list[Missing] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(_folder_images(path))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            listed, absent = _list_file(path)
            found.extend(listed)
            missing.extend(absent)
        elif path.is_file():
            found.append(str(item))
        elif glob.has_magic(item):
            matches = sorted(m for m in glob.glob(item, recursive=True) if os.path.isfile(m))
            if not matches:
                raise MissingFileError(f"no files match {item!r}")
            found.extend(matches)
        else:
            raise MissingFileError(f"image not found: {item}")
    unique: dict[str, str] = {}
    for image in found:
        unique.setdefault(image_key(image), image)
    images = [ImageItem(image, os.path.abspath(image), index) for index, image in enumerate(unique.values())]
    absent: dict[str, Missing] = {}
    for entry in missing:
        absent.setdefault(image_key(entry.image), entry)
    return images, list(absent.values())
