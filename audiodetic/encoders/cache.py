"""Process-wide cache of raw encoder outputs, keyed by encoder fingerprint and content hash, and the cached
encoding of sounds, texts and images that the prompt builders use.

Keys are ``(encoder_id(encoder), kind + ":" + content hash)``. Content hashes cover what an input *holds*: file
bytes for paths, the bytes themselves, waveform/image arrays with dtype, shape (and sample rate), PIL pixels with
mode and size, or the text. :class:`EmbeddingCache.get_many` encodes only missing keys, and a key another thread
is already encoding is waited for rather than encoded twice. :func:`encode_sounds`, :func:`encode_texts` and
:func:`encode_images` return raw ``(N, D)`` float32 encoder outputs through a cache.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from audiodetic.errors import InputError, InputTypeError
from audiodetic.inputs import check_image_prompt, check_sound_source

if TYPE_CHECKING:
    from audiodetic.encoders.protocols import AudioEncoder, ImageEncoder, TextEncoder

_TOKENS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
_TOKENS_LOCK = threading.Lock()


def encoder_id(encoder: Any) -> str:
    """A cache key for an encoder: its ``fingerprint`` (content hash) when it has one, else a per-object token."""
    fingerprint = getattr(encoder, "fingerprint", None)
    if isinstance(fingerprint, str) and fingerprint:
        return f"{type(encoder).__name__}:{fingerprint}"
    with _TOKENS_LOCK:
        if encoder not in _TOKENS:
            _TOKENS[encoder] = f"{type(encoder).__name__}:object-{uuid.uuid4().hex}"
        return _TOKENS[encoder]


def content_hash(source: Any) -> str:
    """blake2b of what a (checked) source holds: file bytes, bytes, a waveform array + sample rate, an image
    array, or a PIL image."""
    digest = hashlib.blake2b(digest_size=20)
    if hasattr(source, "tobytes") and hasattr(source, "mode") and hasattr(source, "size"):  # PIL image
        digest.update(f"pil:{source.mode}:{source.size}:".encode())
        digest.update(source.tobytes())
    elif isinstance(source, np.ndarray):
        digest.update(f"image:{source.dtype.str}:{source.shape}:".encode())
        digest.update(np.ascontiguousarray(source).tobytes())
    elif isinstance(source, Path):
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    elif isinstance(source, bytes):
        digest.update(source)
    else:
        samples, rate = source
        samples = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
        digest.update(f"array:{samples.dtype.str}:{samples.shape}:{int(rate)}:".encode())
        digest.update(np.ascontiguousarray(samples).tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Thread-safe LRU map ``key -> float32 vector``; :meth:`get_many` encodes only the missing keys, once."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = int(max_entries)
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], threading.Event] = {}
        self.encoded = 0  # number of items actually encoded (for tests and stats)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def get_many(self, keys: Sequence[tuple[str, str]], items: Sequence[Any],
                 encode: Callable[[list[Any]], Any]) -> list[np.ndarray]:
        """Vectors for ``keys`` (aligned with ``items``); missing ones come from ``encode(items) -> (n, D)``.

        A key another thread is already encoding is waited for, not encoded again.
        """
        found: dict[tuple[str, str], np.ndarray] = {}
        while len(found) < len(set(keys)):
            mine: list[int] = []
            wait_for: list[threading.Event] = []
            with self._lock:
                claimed = set()
                for i, key in enumerate(keys):
                    if key in found or key in claimed:
                        continue
                    if key in self._data:
                        self._data.move_to_end(key)
                        found[key] = self._data[key]
                    elif key in self._inflight:
                        wait_for.append(self._inflight[key])
                    else:
                        self._inflight[key] = threading.Event()
                        claimed.add(key)
                        mine.append(i)
            if mine:
                try:
                    vectors = np.asarray(_to_numpy(encode([items[i] for i in mine])), np.float32)
                    if vectors.ndim != 2 or vectors.shape[0] != len(mine):
                        raise RuntimeError(f"encoder returned shape {vectors.shape} for {len(mine)} items")
                    with self._lock:
                        for i, vector in zip(mine, vectors):
                            found[keys[i]] = self._data[keys[i]] = vector
                        self.encoded += len(mine)
                        while len(self._data) > self.max_entries:
                            self._data.popitem(last=False)
                finally:
                    with self._lock:
                        for i in mine:
                            self._inflight.pop(keys[i]).set()
            for event in wait_for:
                event.wait()
            # keys waited for are picked up from the cache on the next round (or claimed, if that encoding failed)
        return [found[key] for key in keys]


DEFAULT_CACHE = EmbeddingCache()
"""The process-wide cache :func:`build_vocabulary` uses unless given another."""


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


# ------------------------------------------------------------------------------------------------ cached encoding
def cache_keys(kind: str, encoder: Any, items: Sequence[Any], hashes: dict[int, str] | None = None
               ) -> list[tuple[str, str]]:
    """``(encoder_id, kind:content_hash)`` per item. ``hashes`` memoises hashes by ``id(item)`` while the caller
    keeps the items alive (one vocabulary build), so a file is read and hashed once, not again per prompt."""
    eid = encoder_id(encoder)
    if hashes is None:
        return [(eid, f"{kind}:{content_hash(item)}") for item in items]
    for item in items:
        if id(item) not in hashes:
            hashes[id(item)] = content_hash(item)
    return [(eid, f"{kind}:{hashes[id(item)]}") for item in items]


def text_cache_keys(encoder: Any, texts: Sequence[str]) -> list[tuple[str, str]]:
    """``(encoder_id, "text:" + text)`` per text: the keys :func:`encode_texts` stores its rows under."""
    eid = encoder_id(encoder)
    return [(eid, "text:" + text) for text in texts]


def _as_encoder_input(item: Any) -> Any:
    return str(item) if isinstance(item, Path) else item


def _encode_cached(items: Sequence[Any], encoder: Any, *, kind: str, method: str, check: Callable[[Any], Any],
                   missing: str, empty: str, cache: EmbeddingCache | None, hashes: dict[int, str] | None,
                   checked: bool) -> np.ndarray:
    """Raw ``(N, D)`` float32 rows of ``encoder.<method>(items)``, in order, through the cache (keys of ``kind``).

    ``check`` puts one item in its checked form (skipped when ``checked``); ``missing`` is the error when
    ``encoder`` is ``None`` and ``empty`` the one when no items are given.
    """
    if encoder is None:
        raise InputError(missing)
    encode = getattr(encoder, method, None)
    if not callable(encode):
        raise InputTypeError(f"{type(encoder).__name__} has no {method}(...) method")
    checked_items = list(items) if checked else [check(item) for item in items]
    if not checked_items:
        raise InputError(empty)
    keys = cache_keys(kind, encoder, checked_items, hashes)
    rows = (DEFAULT_CACHE if cache is None else cache).get_many(
        keys, checked_items, lambda todo: encode([_as_encoder_input(item) for item in todo]))
    return np.stack(rows)


def encode_sounds(sources: Sequence[Any], audio_encoder: "AudioEncoder", *, cache: EmbeddingCache | None = None,
                  hashes: dict[int, str] | None = None, checked: bool = False) -> np.ndarray:
    """Raw audio-encoder embeddings ``(A, D)`` float32 of ``sources`` (``audio_encoder.encode_sources``), in
    order, through the cache.

    ``checked=True`` says the sources are already in :func:`~audiodetic.inputs.check_sound_source` form.
    """
    return _encode_cached(sources, audio_encoder, kind="audio", method="encode_sources", check=check_sound_source,
                          missing="sound prompts need an audio encoder (audio_encoder=...)",
                          empty="no sound sources given", cache=cache, hashes=hashes, checked=checked)


def encode_texts(texts: Sequence[str], text_encoder: "TextEncoder", *,
                 cache: EmbeddingCache | None = None) -> np.ndarray:
    """Raw text-encoder embeddings ``(T, D)`` float32 (``text_encoder.encode(texts)``), through the cache."""
    if text_encoder is None:
        raise InputError("text prompts need a text encoder (text_encoder=ClipTextEncoder...)")
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"texts must be non-empty strings, got {text!r}")
    store = DEFAULT_CACHE if cache is None else cache
    return np.stack(store.get_many(text_cache_keys(text_encoder, texts), texts,
                                   lambda todo: text_encoder.encode(todo)))


def encode_images(images: Sequence[Any], image_encoder: "ImageEncoder", *, cache: EmbeddingCache | None = None,
                  hashes: dict[int, str] | None = None, checked: bool = False) -> np.ndarray:
    """Raw image-encoder embeddings ``(I, D)`` float32 (``image_encoder.encode(images)``), in order, through the
    cache.

    ``checked=True`` says the images are already in :func:`~audiodetic.inputs.check_image_prompt` form.
    """
    return _encode_cached(images, image_encoder, kind="image", method="encode", check=check_image_prompt,
                          missing="image prompts need an image encoder (image_encoder=ClipImageEncoder...)",
                          empty="no images given", cache=cache, hashes=hashes, checked=checked)
