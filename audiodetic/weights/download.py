"""Streamed, resumable, verified HTTP download of one file (standard-library ``urllib`` + ``tqdm``).

:func:`download_file` writes into ``<dest>.part`` and renames it to ``dest`` only after the size and digest
checks pass. A connection that breaks (timeout, reset, body shorter than ``Content-Length``) leaves the ``.part``
file for the next call to resume with an HTTP ``Range`` request (plus ``If-Range`` with the ETag/Last-Modified of
the first response, kept in ``<dest>.part.etag``, so a file that changed on the server is fetched whole instead of
spliced); a body that fails verification removes it.
Callers serialise downloads of one destination with a lock (see :func:`audiodetic.weights.resolve`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from audiodetic import __version__, io
from audiodetic.errors import DownloadError

__all__ = ["download_file", "part_path"]

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIABLE = re.compile(r"^bytes\s+\*/(\d+)$")
_MAX_RESTARTS = 3


class _Restart(Exception):
    """Internal: the server's answer means the partial file must be discarded and the download restarted."""


def part_path(dest: Path) -> Path:
    """The partial-download file of ``dest`` (``<dest>.part``, same directory)."""
    return dest.with_name(dest.name + ".part")


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    description: str | None = None,
) -> tuple[str, int]:
    """Download ``url`` to ``dest`` and return ``(sha256 hex, size in bytes)`` of what was written.

    ``sha256`` / ``size``, when given, must match or the partial file is removed and :class:`DownloadError` is
    raised (``dest`` is never created then). A pre-existing ``<dest>.part`` is resumed; if the finished file then
    fails the digest check, the download is retried once from byte 0 before giving up.
    Raises :class:`DownloadError` (with the URL) on HTTP errors, timeouts and truncated bodies; the ``.part``
    file is kept in those cases so that calling again resumes.
    """
    part = part_path(dest)
    resumed = part.exists() and part.stat().st_size > 0
    for attempt in range(2):
        digest, written = _fetch_to_part(url, part, size=size, progress=progress, timeout=timeout,
                                         description=description or dest.name)
        problem = _verification_problem(digest, written, sha256=sha256, size=size)
        if problem is None:
            os.replace(part, dest)
            _validator_path(part).unlink(missing_ok=True)
            return digest, written
        _discard(part)
        if not (resumed and attempt == 0):
            raise DownloadError(f"{url}: {problem}; the downloaded data was deleted")
        resumed = False  # the stale partial file may have been the culprit: try once more from byte 0
    raise AssertionError("unreachable")


def _verification_problem(digest: str, written: int, *, sha256: str | None, size: int | None) -> str | None:
    if size is not None and written != size:
        return f"size mismatch: expected {size} bytes, got {written}"
    if sha256 is not None and digest != sha256:
        return f"checksum mismatch: expected sha256 {sha256}, got {digest}"
    return None


def _fetch_to_part(url: str, part: Path, *, size: int | None, progress: bool, timeout: float,
                   description: str) -> tuple[str, int]:
    """Bring ``part`` to the complete body of ``url``; returns its digest and length."""
    for _ in range(_MAX_RESTARTS):
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            _discard(part)
            offset = 0
        try:
            return _fetch_once(url, part, offset, progress=progress, timeout=timeout, description=description)
        except _Restart:
            _discard(part)
    raise DownloadError(f"{url}: the server kept answering inconsistently to range requests; gave up")


def _hash_existing(part: Path, length: int) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(part, "rb") as handle:
        remaining = length
        while remaining > 0 and (chunk := handle.read(min(_CHUNK * 4, remaining))):
            digest.update(chunk)
            remaining -= len(chunk)
    return digest


def _discard(part: Path) -> None:
    """Delete a partial download and its validator file."""
    part.unlink(missing_ok=True)
    _validator_path(part).unlink(missing_ok=True)


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


def _read_validator(part: Path) -> str | None:
    try:
        text = _validator_path(part).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def _write_validator(part: Path, response: http.client.HTTPResponse) -> None:
    """Remember the ETag (or Last-Modified) of a fresh download so a resume can send ``If-Range``."""
    etag = response.headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified")
    path = _validator_path(part)
    if validator:
        io.write_text(path, validator)
    else:
        path.unlink(missing_ok=True)


def _open(url: str, offset: int, timeout: float, validator: str | None) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"audiodetic/{__version__}", "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        if validator:  # the server sends the whole (new) file instead if it changed since the partial download
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) checked by callers)


def _fetch_once(url: str, part: Path, offset: int, *, progress: bool, timeout: float,
                description: str) -> tuple[str, int]:
    try:
        response = _open(url, offset, timeout, _read_validator(part) if offset > 0 else None)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset > 0:
            return _complete_or_restart(url, part, offset, error.headers.get("Content-Range", ""))
        reason = f" {error.reason}" if error.reason else ""
        raise DownloadError(f"{url}: HTTP {error.code}{reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        status = response.status
        total = _expected_total(url, response, offset)
        if status == 200:
            offset = 0  # fresh download, or the server ignored Range / the file changed (If-Range): from byte 0
            _write_validator(part, response)
        digest = _hash_existing(part, offset) if offset > 0 else hashlib.sha256()
        written = offset
        mode = "ab" if offset > 0 else "wb"
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
                   disable=not progress, file=sys.stderr, leave=False)
        try:
            with open(part, mode) as handle:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except http.client.IncompleteRead as error:
                        chunk = error.partial
                        handle.write(chunk)
                        written += len(chunk)
                        raise DownloadError(_truncated(url, written, total, part)) from None
                    except (socket.timeout, TimeoutError):
                        raise DownloadError(f"{url}: timed out after {timeout:g} s with {written} bytes received; "
                                            f"partial data kept in {part}, run again to resume") from None
                    except OSError as error:
                        raise DownloadError(f"{url}: connection lost after {written} bytes ({error}); partial "
                                            f"data kept in {part}, run again to resume") from None
                    if not chunk:
                        break
                    handle.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    if total is not None and written != total:
        raise DownloadError(_truncated(url, written, total, part))
    return digest.hexdigest(), written


def _truncated(url: str, written: int, total: int | None, part: Path) -> str:
    expected = f" of {total}" if total is not None else ""
    return (f"{url}: connection closed early, received {written}{expected} bytes; partial data kept in {part}, "
            "run again to resume")


def _expected_total(url: str, response: http.client.HTTPResponse, offset: int) -> int | None:
    """Total file length announced by the response (None when unknown); raises _Restart on a bad range."""
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
        if match is None or int(match.group(1)) != offset:
            raise _Restart()  # a range we did not ask for: do not splice it onto our partial file
        return int(match.group(3)) if match.group(3) != "*" else (offset + length if length is not None else None)
    if response.status != 200:
        raise DownloadError(f"{url}: unexpected HTTP status {response.status}")
    return length


def _complete_or_restart(url: str, part: Path, offset: int, content_range: str) -> tuple[str, int]:
    """Handle 416 for ``Range: bytes=<offset>-``: the partial file is complete, or it is longer than the file."""
    match = _UNSATISFIABLE.match(content_range.strip())
    if match is not None and int(match.group(1)) == offset:
        return _hash_existing(part, offset).hexdigest(), offset
    raise _Restart()
