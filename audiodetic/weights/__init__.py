"""Model files: the table of known files, the download cache, and safe checkpoint loading.

``resolve("detic-r50")`` returns the path of the cached Detic R50 checkpoint, downloading and verifying it first
when it is missing; ``resolve("/some/file.pth")`` checks and returns a local file. ``load_state_dict(path)`` reads
a checkpoint with ``torch.load(weights_only=True, mmap=True)``. Settings (cache directory, offline mode, mirror,
pinned digests) are described in :mod:`audiodetic.weights.cache`.

Verification: a file enters the cache under its final name only after its SHA-256 matches, in this order, the
digest pinned by the caller (``sha256=`` / ``AUDIODETIC_SHA256_<NAME>`` / ``audiodetic download --sha256``), the
published digest in :data:`MODELS`, or the digest the manifest recorded when the file was first downloaded. A file
with nothing to match against is accepted and its digest recorded (trust on first use). Later calls re-check size
and mtime against the manifest and re-hash only files that changed; ``full_check=True`` always re-hashes. A cached
file that fails is deleted (and downloaded again unless offline).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from audiodetic.errors import CheckpointError, DownloadError, InputError, InputTypeError, WeightsNotFoundError
from audiodetic.weights.cache import (
    ENV_OFFLINE,
    Manifest,
    ManifestEntry,
    download_timeout,
    is_offline,
    mirror_url,
    normalise_sha256,
    now_iso,
    pinned_sha256,
    resolve_cache_dir,
    sha256_file,
)
from audiodetic.weights.download import download_file
from audiodetic.weights.loading import load_state_dict
from audiodetic.weights.table import MODELS, ModelFile, find_model, known_names, suggest_names

__all__ = [
    "MODELS", "ModelFile", "find_model", "known_names", "resolve", "load_state_dict", "cached_path",
    "resolve_cache_dir",
]

_HASH_PROGRESS_MIN_BYTES = 64 << 20


def cached_path(name: str | ModelFile, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the known model ``name`` lives (or would live) in the cache; the file may not exist."""
    model = name if isinstance(name, ModelFile) else _known(name)
    return resolve_cache_dir(cache_dir) / model.filename


def resolve(
    name_or_path: str | os.PathLike[str] | ModelFile,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    progress: bool = True,
    sha256: str | None = None,
    timeout: float | None = None,
    full_check: bool = False,
) -> Path:
    """The local path of a model file, downloading a known file into the cache when it is missing.

    Args:
        name_or_path: a name or alias from :data:`MODELS` (case-insensitive; wins over a same-named file in the
            working directory, write ``./name`` for that), a :class:`ModelFile`, or the path of a local file
            (``str`` or ``os.PathLike``; a ``Path`` is always taken as a path).
        cache_dir: cache directory (default: ``AUDIODETIC_CACHE`` -> ``$XDG_CACHE_HOME/audiodetic`` ->
            ``~/.cache/audiodetic``).
        offline: never use the network (default: ``AUDIODETIC_OFFLINE``).
        progress: show tqdm progress bars on stderr while downloading or hashing.
        sha256: pin the expected SHA-256 (64 hex digits). For a local path the file is hashed and checked.
        timeout: socket timeout in seconds (default: ``AUDIODETIC_DOWNLOAD_TIMEOUT`` or 60).
        full_check: re-hash a cached file even when the manifest says it is unchanged.

    Returns:
        The file's path: for a local file the path as given (``~`` expanded), else ``<cache_dir>/<filename>``.

    Raises:
        WeightsNotFoundError: unknown name / missing local file / missing file in offline mode.
        DownloadError: HTTP error, timeout, truncated body or digest mismatch while downloading.
        CheckpointError: a local file does not match ``sha256``.
        ValueError: malformed ``sha256`` or settings.
    """
    pin = normalise_sha256(sha256) if sha256 is not None else None
    if isinstance(name_or_path, ModelFile):
        return _resolve_known(name_or_path, cache_dir, offline, progress, pin, timeout, full_check)
    if isinstance(name_or_path, os.PathLike):
        return _resolve_local(Path(name_or_path), pin, str(name_or_path))
    if not isinstance(name_or_path, str):
        raise InputTypeError(f"resolve() takes a model name, a path or a ModelFile, got {type(name_or_path).__name__}")
    if not name_or_path.strip():
        raise InputError("resolve() got an empty model name/path")
    model = find_model(name_or_path)
    if model is not None:
        return _resolve_known(model, cache_dir, offline, progress, pin, timeout, full_check)
    return _resolve_local(Path(name_or_path), pin, name_or_path)


def _known(name: str) -> ModelFile:
    model = find_model(name)
    if model is None:
        raise WeightsNotFoundError(_unknown_message(name))
    return model


def _unknown_message(text: str) -> str:
    hint = suggest_names(text)
    did_you_mean = f" Did you mean {', '.join(hint)}?" if hint else ""
    return (f"{text!r} is neither a known model name nor an existing file.{did_you_mean} Known names: "
            + "; ".join(known_names()) + ". Run `audiodetic models` for details, or pass the path of a file.")


def _resolve_local(path: Path, pin: str | None, original: str) -> Path:
    path = path.expanduser()
    if not path.exists():
        looks_like_path = os.sep in original or "/" in original or bool(path.suffix)
        if looks_like_path:
            raise WeightsNotFoundError(f"model file not found: {original} (absolute: {path.absolute()})")
        raise WeightsNotFoundError(_unknown_message(original))
    if not path.is_file():
        raise WeightsNotFoundError(f"{original} is not a regular file (a directory?); pass a model file")
    if pin is not None:
        actual = sha256_file(path)
        if actual != pin:
            raise CheckpointError(f"{path}: sha256 is {actual}, expected {pin}")
    return path


def _hash(path: Path, progress: bool) -> str:
    size = path.stat().st_size
    from audiodetic.status import is_quiet, say

    show = progress and size >= _HASH_PROGRESS_MIN_BYTES and not is_quiet()
    if show and not sys.stderr.isatty():  # a log gets one line, not a bar's carriage returns and blank line
        say(f"verifying {path.name} ({size / 2 ** 20:.0f} MiB)")
        show = False
    with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"verifying {path.name}",
              disable=not show, leave=False, file=sys.stderr) as bar:
        return sha256_file(path, on_chunk=bar.update)


def _check_cached(model: ModelFile, dest: Path, manifest: Manifest, pin: str | None, full: bool,
                  progress: bool) -> str | None:
    """None when the cached ``dest`` passes verification (recording its digest if new), else the problem."""
    stat = dest.stat()
    entry = manifest.get(model.filename)
    if model.size is not None and stat.st_size != model.size:
        return f"size is {stat.st_size} bytes, the published size is {model.size}"
    unchanged = entry is not None and entry.matches_stat(stat) and not full
    actual = entry.sha256 if unchanged and entry is not None else _hash(dest, progress)
    if pin is not None:
        expected, source = pin, "the pinned sha256"
    elif model.sha256 is not None:
        expected, source = model.sha256, "the published sha256"
    elif entry is not None:
        expected, source = entry.sha256, f"the sha256 recorded at its first download (in {manifest.path})"
    else:
        expected, source = None, ""
    if expected is not None and actual != expected:
        return f"its sha256 is {actual} but {source} is {expected}"
    if not unchanged or (pin is not None and entry is not None and not entry.pinned):
        manifest.record(model.filename, ManifestEntry(
            sha256=actual, size=stat.st_size, mtime_ns=stat.st_mtime_ns, url=model.url,
            pinned=pin is not None or bool(entry and entry.pinned and entry.sha256 == actual),
            recorded_at=now_iso(),
        ))
    return None


def _resolve_known(model: ModelFile, cache_dir: str | os.PathLike[str] | None, offline: bool | None,
                   progress: bool, pin: str | None, timeout: float | None, full_check: bool) -> Path:
    root = resolve_cache_dir(cache_dir)
    dest = root / model.filename
    pin = pin or pinned_sha256(model.name)
    manifest = Manifest(root)
    offline_mode = is_offline(offline)
    problem = _check_cached(model, dest, manifest, pin, full_check, progress) if dest.is_file() else None
    if dest.is_file() and problem is None:
        return dest
    if offline_mode and problem is None:
        raise WeightsNotFoundError(_offline_message(model, dest, pin))
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / f".{model.filename}.lock"))
        lock.acquire()
    except OSError as error:
        prefix = f"cached {dest} failed verification ({problem}) and " if problem else ""
        raise DownloadError(f"{prefix}cannot write to the cache directory {root} ({error}); set AUDIODETIC_CACHE "
                            "or pass cache_dir to use another directory") from None
    try:
        if dest.is_file():  # re-check under the lock: another process may have finished or replaced it
            problem = _check_cached(model, dest, manifest, pin, full_check, progress)
            if problem is None:
                return dest
            if offline_mode:  # it cannot be fetched again: keep it, out of the way, for the user to judge
                aside = _set_aside(dest)
                raise WeightsNotFoundError(f"cached {dest} failed verification: {problem}. It was kept aside as "
                                           f"{aside} (offline mode: it cannot be downloaded again).\n"
                                           + _offline_message(model, dest, pin))
            dest.unlink()  # its manifest record stays: the new download must match it (unless pinned otherwise)
            print(f"audiodetic: removed cached {dest}: {problem}; downloading it again", file=sys.stderr)
        entry = manifest.get(model.filename)
        expected = pin or model.sha256 or (entry.sha256 if entry is not None else None)
        url = mirror_url(model.url)
        try:
            digest, size = download_file(url, dest, sha256=expected, size=model.size, progress=progress,
                                         timeout=download_timeout(timeout), description=model.filename)
        except DownloadError as error:
            raise DownloadError(f"{error}\n{_placing_help(model, dest, pin)}") from None
        stat = dest.stat()
        manifest.record(model.filename, ManifestEntry(
            sha256=digest, size=size, mtime_ns=stat.st_mtime_ns, url=url,
            pinned=pin is not None, recorded_at=now_iso(),
        ))
        return dest
    finally:
        lock.release()


def _set_aside(path: Path) -> Path:
    """Rename a rejected cached file to ``<name>.rejected-<UTC time>`` beside it; returns the new path."""
    aside = path.with_name(f"{path.name}.rejected-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(path, aside)
    return aside


def _placing_help(model: ModelFile, dest: Path, pin: str | None) -> str:
    """What a user can do when a model file cannot be downloaded: where it goes and the other ways to provide it."""
    url = mirror_url(model.url)
    via_mirror = f" (through the mirror: {url})" if url != model.url else ""
    digest = pin or model.sha256
    check = f" Its sha256 must be {digest}." if digest else ""
    return (
        f"  looked for: {dest}\n"
        f"  download URL: {model.url}{via_mirror}\n"
        f"  to place it by hand: download that URL on a machine with network access and copy the file to {dest}, "
        f"or set AUDIODETIC_CACHE to a directory holding {model.filename}, or pass the file's path instead of the "
        f"name (e.g. --detector PATH, --audio-weights PATH).{check}\n"
        f"  {ENV_OFFLINE}=1 makes audiodetic use only files already present and never touch the network."
    )


def _offline_message(model: ModelFile, dest: Path, pin: str | None) -> str:
    return (f"model file {model.filename!r} ({model.name}) is not in the cache and offline mode is on "
            f"(offline=True or {ENV_OFFLINE}=1), so it was not downloaded.\n" + _placing_help(model, dest, pin))
