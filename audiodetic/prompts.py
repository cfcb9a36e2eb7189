"""Vocabularies from prompts: sounds, text phrases, precomputed embeddings and weighted mixes of them.

Prompt types (frozen dataclasses):

* :class:`Sound` - one or several clips of the same thing (paths, encoded bytes, binary file objects or
  ``(waveform, sample_rate)`` pairs). Encoded by the audio encoder (raw ImageBind space), then bridged.
  **Several clips:** each clip's embedding is L2-normalised and the unit vectors are averaged *in the audio
  encoder's space*, then the prototype goes through the bridge once (``average="audio"``, the default): the audio
  space is where clips of one sound are comparable, and the retrieval bridge then sees one label distribution for
  the prototype instead of a blend of per-clip ones. ``average="detector"`` bridges every clip and averages the
  unit outputs instead.
* :class:`Text` - a phrase for the CLIP ViT-B/32 text encoder (Detic's ``"a " + name`` template applies); a plain
  ``str`` spec means ``Text``.
* :class:`Image` - one or several example pictures, embedded by CLIP ViT-B/32's image tower (joint with the text
  space; no bridge), unit vectors averaged.
* :class:`Embedding` - a precomputed vector: used as is in the detector space, bridged when it lives in the
  audio encoder's space.
* :class:`Mix` - ``sum(weight_i * unit(prompt_i))`` renormalised, e.g. ``Mix([(0.7, Sound("bark.wav")),
  (0.3, Text("dog"))])``; a list of ``(weight, prompt)`` pairs is read as a ``Mix``.

Every entry lands L2-normalised in :data:`~audiodetic.vocabulary.DETECTOR_SPACE`.

**Cache.** Raw encoder outputs are cached per process by content hash (file bytes, byte strings or array bytes +
sample rate, text) and encoder fingerprint, so the same clip is never encoded twice; concurrent requests for the same
item wait for one encoding. :func:`build_vocabulary` is safe to call from several threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import numpy as np

from audiodetic.encoders.cache import DEFAULT_CACHE, EmbeddingCache, content_hash, encoder_id
from audiodetic.vocabulary import DETECTOR_SPACE, Vocabulary, default_space

__all__ = [
    "Sound", "Text", "Image", "Embedding", "Mix", "Prompt", "PromptSpec", "as_prompt", "build_vocabulary",
    "encode_sounds", "encode_texts", "encode_images", "EmbeddingCache", "DEFAULT_CACHE", "encoder_id",
    "content_hash", "CLIP_IMAGE_SPACE",
]

# ------------------------------------------------------------------------------------------------ prompt types


def _is_waveform_pair(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and hasattr(value[0], "shape")
            and isinstance(value[1], (int, np.integer)) and not isinstance(value[1], bool))


def _check_source(source: Any) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"sound file not found: {path}")
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ValueError("a sound given as bytes must not be empty")
        return bytes(source)
    if _is_waveform_pair(source):
        return source
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError(f"could not read audio bytes from {source!r} (empty or a text stream)")
        return bytes(data)
    raise ValueError(
        f"unsupported sound source {type(source).__name__}: use a path, bytes, a binary file object or a "
        f"(waveform array, sample_rate int) pair"
    )


@dataclass(frozen=True, eq=False)
class Sound:
    """One or several clips of one sound. ``Sound("a.wav")``, ``Sound(["a.wav", b"...", (waveform, 16000)])``."""

    sources: Any

    def __post_init__(self) -> None:
        items = self.sources
        if isinstance(items, (list, tuple)) and not _is_waveform_pair(items):
            items = tuple(items)
        else:
            items = (items,)
        if not items:
            raise ValueError("Sound needs at least one clip")
        object.__setattr__(self, "sources", tuple(_check_source(s) for s in items))


@dataclass(frozen=True)
class Text:
    """A text phrase, embedded by the CLIP text encoder (with Detic's ``"a " + text`` template)."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError(f"Text needs a non-empty string, got {self.text!r}")


def _check_image(image: Any) -> Any:
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        return path
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "tobytes"):  # PIL image
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise ValueError(f"example images must be paths, PIL images or HxWx3 uint8 RGB arrays; got {array.dtype} "
                         f"array of shape {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class Image:
    """One or several example images of a thing (paths, PIL images, HxWx3 uint8 RGB arrays), averaged like clips."""

    images: Any

    def __post_init__(self) -> None:
        items = tuple(self.images) if isinstance(self.images, (list, tuple)) else (self.images,)
        if not items:
            raise ValueError("Image needs at least one picture")
        object.__setattr__(self, "images", tuple(_check_image(im) for im in items))


@dataclass(frozen=True, eq=False)
class Embedding:
    """A precomputed ``(D,)`` vector in ``space`` (default: the detector space)."""

    vector: Any
    space: str = DETECTOR_SPACE

    def __post_init__(self) -> None:
        vector = self.vector.detach().cpu().numpy() if hasattr(self.vector, "detach") else np.asarray(self.vector)
        vector = np.asarray(vector, dtype=np.float64).reshape(-1) if vector.size else vector
        if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)) or not np.any(vector):
            raise ValueError(f"Embedding needs a finite, non-zero 1-D vector, got shape {np.shape(self.vector)}")
        object.__setattr__(self, "vector", vector)


@dataclass(frozen=True, eq=False)
class Mix:
    """A weighted sum of prompts: ``Mix([(0.7, Sound("bark.wav")), (0.3, Text("dog"))])``."""

    terms: Any

    def __post_init__(self) -> None:
        terms = []
        for term in self.terms:
            if not (isinstance(term, (tuple, list)) and len(term) == 2):
                raise ValueError(f"Mix terms are (weight, prompt) pairs, got {term!r}")
            weight, prompt = term
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not np.isfinite(weight):
                raise ValueError(f"Mix weights must be finite numbers, got {weight!r}")
            terms.append((float(weight), as_prompt(prompt)))
        if not terms or not any(w != 0 for w, _ in terms):
            raise ValueError("Mix needs at least one term with a non-zero weight")
        object.__setattr__(self, "terms", tuple(terms))


Prompt = Union[Sound, Text, Image, Embedding, Mix]
PromptSpec = Union[Prompt, str, Sequence[tuple[float, Any]]]


def as_prompt(spec: Any) -> Prompt:
    """A prompt object from a spec: prompt objects as they are, ``str`` -> :class:`Text`, pairs -> :class:`Mix`."""
    if isinstance(spec, (Sound, Text, Image, Embedding, Mix)):
        return spec
    if isinstance(spec, str):
        return Text(spec)
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(t, (list, tuple)) and len(t) == 2 for t in spec):
        return Mix(spec)
    raise ValueError(
        f"cannot read {spec!r} as a prompt: use Sound(...), Text(...), Image(...), Embedding(...), Mix(...), a string, "
        f"or a list of (weight, prompt) pairs"
    )


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise ValueError("an embedding is the zero vector; it has no direction to use")
    return x / norm


# --------------------------------------------------------------------------------------------------- encoding
CLIP_IMAGE_SPACE = "clip-vit-b32-image"
"""CLIP ViT-B/32's image space (Wav2CLIP's target): joint with the text space, so usable without a bridge."""
_DIRECT_SPACES = (DETECTOR_SPACE, CLIP_IMAGE_SPACE)


def _audio_input(source: Any) -> Any:
    return str(source) if isinstance(source, Path) else source


def _cache_keys(kind: str, encoder: Any, items: Sequence[Any], hashes: dict[int, str] | None) -> list[tuple[str, str]]:
    """``(encoder_id, kind:content_hash)`` per item. ``hashes`` memoises hashes by ``id(item)`` for the length of one
    :func:`build_vocabulary` call (whose prompts keep the items alive), so a file is read and hashed once, not again
    when each prompt is resolved."""
    eid = encoder_id(encoder)
    if hashes is None:
        return [(eid, f"{kind}:{content_hash(item)}") for item in items]
    for item in items:
        if id(item) not in hashes:
            hashes[id(item)] = content_hash(item)
    return [(eid, f"{kind}:{hashes[id(item)]}") for item in items]


def encode_sounds(sources: Sequence[Any], audio_encoder: Any, *, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Raw audio-encoder embeddings ``(A, D)`` float32 of ``sources``, in order, through the cache."""
    return _encode_sounds(sources, audio_encoder, cache, None)


def _encode_sounds(sources: Sequence[Any], audio_encoder: Any, cache: EmbeddingCache | None,
                   hashes: dict[int, str] | None) -> np.ndarray:
    """:func:`encode_sounds`; with a ``hashes`` memo the sources are ``Sound.sources`` (already checked)."""
    if audio_encoder is None:
        raise ValueError("sound prompts need an audio encoder (audio_encoder=...)")
    if not hasattr(audio_encoder, "encode_sources"):
        raise TypeError(f"{type(audio_encoder).__name__} has no encode_sources(sources) method")
    checked = list(sources) if hashes is not None else [_check_source(s) for s in sources]
    if not checked:
        raise ValueError("no sound sources given")
    keys = _cache_keys("audio", audio_encoder, checked, hashes)
    rows = (DEFAULT_CACHE if cache is None else cache).get_many(
        keys, checked, lambda items: audio_encoder.encode_sources([_audio_input(s) for s in items]))
    return np.stack(rows)


def encode_texts(texts: Sequence[str], text_encoder: Any, *, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Raw text-encoder embeddings ``(T, D)`` float32 (``text_encoder.encode(texts)``), through the cache."""
    if text_encoder is None:
        raise ValueError("text prompts need a text encoder (text_encoder=ClipTextEncoder...)")
    texts = [Text(t).text for t in texts]
    eid = encoder_id(text_encoder)
    keys = [(eid, "text:" + t) for t in texts]
    store = DEFAULT_CACHE if cache is None else cache
    return np.stack(store.get_many(keys, texts, lambda items: text_encoder.encode(items)))


def encode_images(images: Sequence[Any], image_encoder: Any, *, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Raw image-encoder embeddings ``(I, D)`` float32 (``image_encoder.encode(images)``), through the cache."""
    return _encode_images(images, image_encoder, cache, None)


def _encode_images(images: Sequence[Any], image_encoder: Any, cache: EmbeddingCache | None,
                   hashes: dict[int, str] | None) -> np.ndarray:
    """:func:`encode_images`; with a ``hashes`` memo the images are ``Image.images`` (already checked/converted)."""
    if image_encoder is None:
        raise ValueError("image prompts need an image encoder (image_encoder=ClipImageEncoder...)")
    checked = list(images) if hashes is not None else [_check_image(im) for im in images]
    if not checked:
        raise ValueError("no images given")
    keys = _cache_keys("image", image_encoder, checked, hashes)
    store = DEFAULT_CACHE if cache is None else cache
    return np.stack(store.get_many(keys, checked, lambda items: image_encoder.encode(
        [str(im) if isinstance(im, Path) else im for im in items])))


def _walk(prompt: Prompt) -> Iterable[Prompt]:
    yield prompt
    if isinstance(prompt, Mix):
        for _, term in prompt.terms:
            yield from _walk(term)


class _Resolver:
    """Turns prompts into detector-space unit vectors (after the encoders have filled the cache)."""

    def __init__(self, audio_encoder: Any, bridge: Any, text_encoder: Any, average: str,
                 cache: EmbeddingCache, image_encoder: Any = None, hashes: dict[int, str] | None = None) -> None:
        self.audio_encoder, self.bridge, self.text_encoder = audio_encoder, bridge, text_encoder
        self.image_encoder = image_encoder
        self.average, self.cache = average, cache
        self.hashes = {} if hashes is None else hashes  # content hashes by id(source), shared with the encode pass

    def audio_to_detector(self, x: np.ndarray, space: str) -> np.ndarray:
        """``(B, D)`` audio-space rows -> ``(B, 512)`` unit rows (bridged unless already in a CLIP space)."""
        if self.bridge is None:
            if space in _DIRECT_SPACES:
                return _unit(x)
            raise ValueError(
                f"sound prompts in the {x.shape[1]}-d {space!r} space need a bridge into the detector space "
                f"(bridge=LinearBridge/RetrievalBridge, e.g. audiodetic.bridge.default_bridge(...))"
            )
        if x.shape[1] != self.bridge.src_dim:
            raise ValueError(f"the bridge maps {self.bridge.src_dim}-d inputs but the audio embeddings are "
                             f"{x.shape[1]}-d; use a bridge fitted for this audio encoder")
        return np.asarray(self.bridge.apply(x), np.float64)

    def vector(self, prompt: Prompt) -> np.ndarray:
        if isinstance(prompt, Text):
            return _unit(encode_texts([prompt.text], self.text_encoder, cache=self.cache)[0])
        if isinstance(prompt, Sound):
            raw = _encode_sounds(prompt.sources, self.audio_encoder, self.cache, self.hashes)
            space = getattr(self.audio_encoder, "space", "imagebind")
            if self.average == "audio":
                return _unit(self.audio_to_detector(_unit(raw).mean(axis=0, keepdims=True), space)[0])
            return _unit(self.audio_to_detector(_unit(raw), space).mean(axis=0))
        if isinstance(prompt, Image):
            raw = _encode_images(prompt.images, self.image_encoder, self.cache, self.hashes)
            space = getattr(self.image_encoder, "space", "unknown")
            if space not in _DIRECT_SPACES:
                raise ValueError(f"image embeddings in the {space!r} space cannot be used in the detector space")
            return _unit(_unit(raw).mean(axis=0))
        if isinstance(prompt, Embedding):
            if prompt.space in _DIRECT_SPACES:
                return _unit(prompt.vector)
            return _unit(self.audio_to_detector(prompt.vector[None, :], prompt.space)[0])
        total = sum(weight * self.vector(term) for weight, term in prompt.terms)
        if np.linalg.norm(total) < 1e-6:
            raise ValueError("a Mix cancels out to the zero vector; change its weights")
        return _unit(total)


def _named_prompts(prompts: Any) -> list[tuple[str, Prompt]]:
    if isinstance(prompts, Mapping):
        pairs = list(prompts.items())
    elif isinstance(prompts, str):
        raise ValueError("pass a list of prompts or a {name: prompt} mapping, not one string")
    else:
        pairs = []
        for item in prompts:
            if isinstance(item, str):
                pairs.append((item, item))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                pairs.append(item)
            else:
                raise ValueError(f"list items must be strings or (name, prompt) pairs, got {item!r}")
    if not pairs:
        raise ValueError("no prompts given")
    named = []
    for name, spec in pairs:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"prompt names must be non-empty strings, got {name!r}")
        try:
            named.append((name, as_prompt(spec)))
        except (ValueError, FileNotFoundError) as error:
            raise type(error)(f"prompt {name!r}: {error}") from None
    return named


def build_vocabulary(prompts: Mapping[str, PromptSpec] | Sequence[Any], *, audio_encoder: Any = None,
                     bridge: Any = None, text_encoder: Any = None, average: Literal["audio", "detector"] = "audio",
                     cache: EmbeddingCache | None = None, image_encoder: Any = None) -> Vocabulary:
    """A :class:`~audiodetic.vocabulary.Vocabulary` of unit rows in the detector space, one per named prompt.

    Args:
        prompts: ``{name: spec}`` (spec: :class:`Sound`, :class:`Text`, :class:`Embedding`, :class:`Mix`, a string,
            or ``(weight, prompt)`` pairs), or a list of strings (text prompts named by themselves) and/or
            ``(name, spec)`` pairs. Order is kept.
        audio_encoder: needed for sounds; has ``encode_sources(sources) -> (A, D)`` (e.g. ``ImageBindAudioEncoder``).
        bridge: maps audio embeddings ``(B, D)`` to ``(B, 512)`` (``LinearBridge``/``RetrievalBridge``), or
            ``"linear"``/``"retrieval"``/a saved ``.npz``, resolved by :func:`audiodetic.bridge.default_bridge` only
            when a prompt needs it (fit-or-load with the released weights; kept for the process). May be ``None``
            for encoders whose ``space`` is already CLIP's (Wav2CLIP).
        text_encoder: needed for texts; ``encode(texts) -> (T, 512)`` raw (:class:`~audiodetic.encoders.clip_text.ClipTextEncoder`).
        average: where the clips of one :class:`Sound` are averaged (see the module doc).
        image_encoder: needed for :class:`Image` prompts (:class:`~audiodetic.encoders.clip_image.ClipImageEncoder`; CLIP's
            image space is joint with the text space, so no bridge is used).
        cache: an :class:`EmbeddingCache` (default: the process-wide :data:`DEFAULT_CACHE`).
    Returns: ``Vocabulary(names, (C, 512) float32 unit rows, space=DETECTOR_SPACE)``.
    """
    if average not in ("audio", "detector"):
        raise ValueError(f"average must be 'audio' or 'detector', got {average!r}")
    named = _named_prompts(prompts)
    cache = DEFAULT_CACHE if cache is None else cache
    # Encode everything missing in two batched calls, so the per-prompt resolution below only hits the cache.
    leaves = [leaf for _, prompt in named for leaf in _walk(prompt)]
    sources = [s for leaf in leaves if isinstance(leaf, Sound) for s in leaf.sources]
    texts = list(dict.fromkeys(leaf.text for leaf in leaves if isinstance(leaf, Text)))
    pictures = [im for leaf in leaves if isinstance(leaf, Image) for im in leaf.images]
    hashes: dict[int, str] = {}  # the sources are hashed here once; resolving the prompts reuses the hashes
    if sources:
        _encode_sounds(sources, audio_encoder, cache, hashes)
    if texts:
        encode_texts(texts, text_encoder, cache=cache)
    if pictures:
        _encode_images(pictures, image_encoder, cache, hashes)
    if isinstance(bridge, (str, os.PathLike)):
        bridged = [leaf for leaf in leaves if isinstance(leaf, Sound) or
                   (isinstance(leaf, Embedding) and leaf.space not in _DIRECT_SPACES)]
        if bridged and getattr(audio_encoder, "space", "imagebind") not in _DIRECT_SPACES:
            from audiodetic.bridge import default_bridge

            bridge = default_bridge(bridge, audio_encoder=audio_encoder)
        else:
            bridge = None
    resolver = _Resolver(audio_encoder, bridge, text_encoder, average, cache, image_encoder, hashes)
    rows = [resolver.vector(prompt) for _, prompt in named]
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise ValueError(f"prompts landed in spaces of different widths {sorted(dims)}; check the encoders/bridge")
    matrix = np.stack(rows).astype(np.float32)
    return Vocabulary(tuple(name for name, _ in named), matrix, space=default_space(matrix.shape[1]))
