"""Hard uploads made in the tests: pictures whose header claims a size their file does not hold, and files that
are not media under media names.

A helper module (``tests/helpers/`` is on pytest's ``pythonpath``), imported by the input-rule and demo tests.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def header_only_png(path: str | Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header says ``width`` x ``height`` RGB pixels but whose image data is a
    stub: opening it reads the size, decoding it fails. A check that refuses it by size decoded nothing."""
    path = Path(path)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))
    return path


def text_file(path: str | Path, text: str = "these are notes, not media\n") -> Path:
    """A plain text file under whatever name (``notes.wav``, ``notes.png``) the test gives it."""
    path = Path(path)
    path.write_text(text * 20)
    return path
