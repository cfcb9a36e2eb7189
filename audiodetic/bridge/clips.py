"""Sound clips through the audio tower once: raw embeddings cached on disk by content hash, unusable clips skipped.

:func:`encode_clips` decodes each clip, skips (and reports) clips that cannot be used - undecodable, empty, holding
NaN/inf samples, or silent (the channel the encoder reads never leaves +-:data:`SILENCE_PEAK` around its mean; a
silent clip gives a valid-looking but meaningless embedding) - and encodes the rest with ``encode_sources``.
Embeddings are kept in ``<weights cache>/clip-embeddings/<encoder>.npz``, keyed by a hash of each file's bytes and
the encoder's fingerprint, so a rerun (or another dataset holding the same files) costs a hash per file.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audiodetic.encoders.cache import content_hash, encoder_id
from audiodetic.errors import AudioDecodeError
from audiodetic.io import save_npz

SILENCE_PEAK = 1e-4
"""A clip whose first channel stays within this of its mean (-80 dBFS, a few 16-bit steps) counts as silent."""
_SAVE_EVERY = 64


@dataclass(frozen=True)
class EncodedClips:
    """Raw audio-tower embeddings of the usable clips of a list.

    Attributes:
        embeddings: ``(K, D)`` float32 raw embeddings of the kept clips, in list order.
        kept: ``(K,)`` int64 indices of those clips in the list given.
        skipped: ``(index, reason)`` of every clip left out.
        encoded: how many clips went through the encoder in this call (the rest came from the cache).
    """

    embeddings: np.ndarray
    kept: np.ndarray
    skipped: tuple[tuple[int, str], ...]
    encoded: int

    def skipped_report(self, paths: Sequence[Path], rows: Sequence[int] | None = None,
                       limit: int = 20) -> dict[str, Any]:
        """``{"count": n, "clips": [{"path", "row", "reason"}, ...]}`` (at most ``limit`` listed) for reports;
        ``rows`` are the metadata lines of ``paths`` when they came from a dataset file."""
        listed = [{"path": str(paths[i]), **({"row": int(rows[i])} if rows is not None else {}), "reason": reason}
                  for i, reason in self.skipped[:limit]]
        return {"count": len(self.skipped), "clips": listed}


def clip_cache_path(encoder: Any, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of ``encoder``'s clip embeddings: ``<weights cache>/clip-embeddings/<hash of its id>.npz``."""
    from audiodetic.weights.cache import resolve_cache_dir

    key = hashlib.sha256(encoder_id(encoder).encode()).hexdigest()[:24]
    return resolve_cache_dir(cache_dir) / "clip-embeddings" / f"{key}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip((str(h) for h in data["hashes"]), np.array(data["embeddings"], np.float32)))
    except (OSError, KeyError, ValueError, EOFError):
        return {}  # a damaged cache is rebuilt


def _write_cache(path: Path, known: dict[str, np.ndarray]) -> None:
    merged = {**_read_cache(path), **known}  # keep what another run added meanwhile
    hashes = sorted(merged)
    save_npz(path, {"hashes": np.array(hashes), "embeddings": np.stack([merged[h] for h in hashes])},
             make_parents=True)


def usable_waveform(path: Path) -> tuple[tuple[np.ndarray, int] | None, str]:
    """``((waveform (C, n) float32, rate), "")`` for a usable clip, else ``(None, reason)``."""
    from audiodetic.encoders.audio.io import load_audio

    try:
        waveform, rate = load_audio(path)
    except (AudioDecodeError, OSError) as error:
        return None, str(error)
    channel = waveform[0].astype(np.float64)
    if np.max(np.abs(channel - channel.mean())) <= SILENCE_PEAK:
        return None, f"silent (the first channel never leaves +-{SILENCE_PEAK:g} around its mean)"
    return (waveform, rate), ""


def encode_clips(paths: Sequence[Path], audio_encoder: Any, *, cache_dir: str | os.PathLike[str] | None = None,
                 use_cache: bool = True, progress: bool = True, batch_size: int = 8,
                 what: str = "clips") -> EncodedClips:
    """Raw embeddings of every usable clip in ``paths`` (``audio_encoder.encode_sources``), through the disk cache.

    Returns :class:`EncodedClips`; raises nothing for bad clips (they are skipped with a reason) and
    ``FileNotFoundError`` only for paths that are not files.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    cache_path = clip_cache_path(audio_encoder, cache_dir)
    known = _read_cache(cache_path) if use_cache else {}
    hashes = [content_hash(p) for p in tqdm(paths, desc=f"hashing {what}", unit="clip", file=sys.stderr,
                                             disable=not progress or len(paths) < 200, leave=False)]
    skipped: dict[int, str] = {}
    todo = [i for i, h in enumerate(hashes) if h not in known]
    encoded, fresh = 0, 0
    with tqdm(total=len(todo), desc=f"encoding {what} (audio tower)", unit="clip", file=sys.stderr,
              disable=not progress or not todo) as bar:
        for start in range(0, len(todo), batch_size):
            batch, waves = [], []
            for i in todo[start:start + batch_size]:
                if hashes[i] in known:  # the same file twice in one list
                    continue
                wave, reason = usable_waveform(paths[i])
                if wave is None:
                    skipped[i] = reason
                else:
                    batch.append(i)
                    waves.append(wave)
            if waves:
                out = audio_encoder.encode_sources(waves)
                rows = np.asarray(out.detach().float().cpu().numpy() if hasattr(out, "detach") else out, np.float32)
                for i, row in zip(batch, rows):
                    if np.all(np.isfinite(row)) and np.linalg.norm(row) > 0:
                        known[hashes[i]] = row
                        fresh += 1
                    else:
                        skipped[i] = "the audio tower returned NaN/infinite or zero values for this clip"
                encoded += len(batch)
            bar.update(len(todo[start:start + batch_size]))
            if use_cache and fresh >= _SAVE_EVERY:  # an interrupted run keeps what it encoded
                _write_cache(cache_path, known)
                fresh = 0
    if use_cache and fresh:
        _write_cache(cache_path, known)
    kept = np.array([i for i in range(len(paths)) if i not in skipped and hashes[i] in known], np.int64)
    width = next(iter(known.values())).shape[0] if known else 0
    embeddings = np.stack([known[hashes[i]] for i in kept]) if len(kept) else np.zeros((0, width), np.float32)
    return EncodedClips(embeddings, kept, tuple(sorted(skipped.items())), encoded)
