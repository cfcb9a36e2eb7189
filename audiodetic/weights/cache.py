"""Where model files live, the settings that steer downloads, and the cache's digest manifest.

Settings (argument first, then environment):

- cache directory: ``cache_dir`` argument -> ``AUDIODETIC_CACHE`` -> ``$XDG_CACHE_HOME/audiodetic`` (only when
  ``XDG_CACHE_HOME`` is an absolute path) -> ``~/.cache/audiodetic``. Never the working directory; a relative
  argument or ``AUDIODETIC_CACHE`` is made absolute. Files sit directly in it under their table file names.
- offline: ``offline`` argument -> ``AUDIODETIC_OFFLINE`` (``1/true/yes/on`` or ``0/false/no/off``).
- mirror: ``AUDIODETIC_MIRROR=<scheme>://host/prefix/`` replaces the scheme and host of every URL and puts the
  prefix before the URL's path, e.g. with ``https://mirror.example/models/``,
  ``https://dl.fbaipublicfiles.com/detic/X.pth`` -> ``https://mirror.example/models/detic/X.pth`` and
  ``https://openaipublic.azureedge.net/clip/models/<sha>/ViT-B-32.pt`` ->
  ``https://mirror.example/models/clip/models/<sha>/ViT-B-32.pt``. Query strings are kept.
- pinned digest: ``sha256`` argument -> ``AUDIODETIC_SHA256_<NAME>`` where ``<NAME>`` is the official name in
  upper case with every character other than A-Z/0-9 replaced by ``_`` (``AUDIODETIC_SHA256_IMAGEBIND_HUGE``).

The manifest (``manifest.json`` in the cache directory) records, per file name, the SHA-256 and size measured
when the file entered the cache, plus its mtime so later checks need not re-hash unchanged files. It is rewritten
atomically (temporary file + rename) under a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from filelock import FileLock

from audiodetic import io
from audiodetic.errors import InputError, InputTypeError

__all__ = [
    "ENV_CACHE", "ENV_OFFLINE", "ENV_MIRROR", "ENV_TIMEOUT", "ENV_SHA256_PREFIX", "MANIFEST_NAME",
    "ManifestEntry", "Manifest", "resolve_cache_dir", "is_offline", "mirror_url", "pinned_sha256",
    "normalise_sha256", "sha256_file", "download_timeout",
]

ENV_CACHE = "AUDIODETIC_CACHE"
ENV_OFFLINE = "AUDIODETIC_OFFLINE"
ENV_MIRROR = "AUDIODETIC_MIRROR"
ENV_TIMEOUT = "AUDIODETIC_DOWNLOAD_TIMEOUT"
ENV_SHA256_PREFIX = "AUDIODETIC_SHA256_"
MANIFEST_NAME = "manifest.json"
DEFAULT_TIMEOUT_S = 60.0

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_log = logging.getLogger(__name__)


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The absolute cache directory (not created here); see the module docstring for the order."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser().absolute()
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg) / "audiodetic"
    return Path.home() / ".cache" / "audiodetic"


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else ``AUDIODETIC_OFFLINE`` read as a boolean (unset -> False)."""
    if offline is not None:
        return bool(offline)
    value = os.environ.get(ENV_OFFLINE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(f"{ENV_OFFLINE}={value!r} is not a boolean; use one of {_TRUE + _FALSE[1:]}")


def mirror_url(url: str, mirror: str | None = None) -> str:
    """``url`` rewritten for ``mirror`` (default ``AUDIODETIC_MIRROR``; unset/empty -> ``url`` unchanged)."""
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR, "")
    mirror = mirror.strip()
    if not mirror:
        return url
    base = urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise InputError(f"{ENV_MIRROR}={mirror!r} must look like http(s)://host/optional/prefix/")
    if base.query or base.fragment:
        raise InputError(f"{ENV_MIRROR}={mirror!r} must not have a query or fragment")
    original = urlsplit(url)
    path = base.path.rstrip("/") + "/" + original.path.lstrip("/")
    return urlunsplit((base.scheme, base.netloc, path, original.query, ""))


def normalise_sha256(value: str, *, what: str = "sha256") -> str:
    """``value`` as 64 lower-case hex digits; ValueError naming ``what`` when it is not a SHA-256 digest."""
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:"):]
    if not _HEX64.match(text):
        raise InputError(f"{what}={value!r} is not a SHA-256 digest (64 hex digits)")
    return text


def pinned_sha256(name: str) -> str | None:
    """The digest pinned for model ``name`` through ``AUDIODETIC_SHA256_<NAME>``, or None."""
    variable = ENV_SHA256_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())
    value = os.environ.get(variable, "").strip()
    return normalise_sha256(value, what=variable) if value else None


def download_timeout(timeout: float | None = None) -> float:
    """Socket timeout in seconds: ``timeout`` -> ``AUDIODETIC_DOWNLOAD_TIMEOUT`` -> 60."""
    if timeout is None:
        raw = os.environ.get(ENV_TIMEOUT, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT_S
        try:
            timeout = float(raw)
        except ValueError:
            raise InputError(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds") from None
    if not timeout > 0:
        raise InputError(f"download timeout must be > 0 seconds, got {timeout}")
    return float(timeout)


def sha256_file(path: Path, *, on_chunk: Callable[[int], object] | None = None, chunk_size: int = 1 << 22) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks (``on_chunk(n_bytes)`` after each)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """What the cache knows about one file: digest and size when it entered, and the mtime it had then."""

    sha256: str
    size: int
    mtime_ns: int
    url: str = ""
    pinned: bool = False
    recorded_at: str = ""

    def matches_stat(self, stat: os.stat_result) -> bool:
        """True when ``stat`` shows the same size and mtime as recorded (the file is unchanged)."""
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


class Manifest:
    """The JSON manifest of a cache directory: ``{"version": 1, "files": {filename: entry}}``."""

    VERSION = 1

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.path = cache_dir / MANIFEST_NAME

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            files = data["files"]
            if not isinstance(files, dict):
                raise InputTypeError("'files' is not an object")
            return files
        except (ValueError, KeyError, TypeError) as error:
            backup = self.path.with_name(MANIFEST_NAME + ".corrupt")
            warnings.warn(
                f"cache manifest {self.path} is unreadable ({error}); moving it to {backup} and starting a new "
                "one (files will be re-hashed and recorded again)",
                RuntimeWarning,
                stacklevel=3,
            )
            try:
                os.replace(self.path, backup)
            except OSError:
                pass
            return {}

    def get(self, filename: str) -> ManifestEntry | None:
        """The recorded entry for ``filename``, or None (also when the record is malformed)."""
        raw = self._read().get(filename)
        if not isinstance(raw, dict):
            return None
        try:
            return ManifestEntry(**raw)  # type: ignore[arg-type]
        except TypeError:
            return None

    def record(self, filename: str, entry: ManifestEntry) -> bool:
        """Store ``entry`` for ``filename``; returns False (and logs) when the cache is read-only."""
        return self._update(lambda files: files.__setitem__(filename, asdict(entry)))

    def _update(self, change: Callable[[dict[str, dict[str, object]]], object]) -> bool:
        try:
            with FileLock(str(self.path) + ".lock"):
                files = self._read()
                change(files)
                payload = json.dumps({"version": self.VERSION, "files": files}, indent=2, sort_keys=True)
                io.write_text(self.path, payload + "\n")
            return True
        except OSError as error:
            _log.info("could not update cache manifest %s: %s", self.path, error)
            return False


def now_iso() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (for manifest records)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
