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

Every entry lands L2-normalised (:func:`audiodetic.spaces.l2_normalize`) in
:data:`~audiodetic.spaces.DETECTOR_SPACE`; whether a vector needs the bridge is decided by its space
(:func:`audiodetic.spaces.needs_bridge`), never guessed.

**Cache.** Raw encoder outputs are cached per process by content hash (file bytes, byte strings or array bytes +
sample rate, text) and encoder fingerprint (:mod:`audiodetic.encoders.cache`), so the same clip is never encoded
twice; concurrent requests for the same item wait for one encoding. :func:`build_vocabulary` is safe to call from
several threads.
"""

from __future__ import annotations

import os
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import numpy as np

from audiodetic.bridge import Bridge
from audiodetic.encoders.cache import (
    DEFAULT_CACHE,
    EmbeddingCache,
    cache_keys,
    encode_images,
    encode_sounds,
    encode_texts,
    text_cache_keys,
)
from audiodetic.encoders.protocols import AudioEncoder, ImageEncoder, TextEncoder
from audiodetic.errors import InputError
from audiodetic.inputs import check_image_prompt, check_name, check_sound_source, is_waveform_pair
from audiodetic.spaces import DETECTOR_SPACE, default_space, l2_normalize, needs_bridge
from audiodetic.vocabulary import Vocabulary

__all__ = ["Sound", "Text", "Image", "Embedding", "Mix", "Prompt", "PromptSpec", "as_prompt", "build_vocabulary",
           "image_prompts", "sound_prompts"]

# ------------------------------------------------------------------------------------------------ prompt types


@dataclass(frozen=True, eq=False)
class Sound:
    """One or several clips of one sound. ``Sound("a.wav")``, ``Sound(["a.wav", b"...", (waveform, 16000)])``.

    ``argument`` is what errors about the clips call them (``"prompt 'dog'"`` from :func:`sound_prompts`).
    """

    sources: Any
    argument: InitVar[str] = "Sound"

    def __post_init__(self, argument: str) -> None:
        items = self.sources
        if isinstance(items, (list, tuple)) and not is_waveform_pair(items):
            items = tuple(items)
        else:
            items = (items,)
        if not items:
            raise InputError(f"{argument} needs at least one clip")
        object.__setattr__(self, "sources", tuple(check_sound_source(s, argument=argument) for s in items))


@dataclass(frozen=True)
class Text:
    """A text phrase, embedded by the CLIP text encoder (with Detic's ``"a " + text`` template).

    ``argument`` is what an error about the text calls it (``"prompt 'dog'"`` from :func:`build_vocabulary`).
    """

    text: str
    argument: InitVar[str] = "Text"

    def __post_init__(self, argument: str) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError(f"{argument} needs a non-empty string, got {self.text!r}")


@dataclass(frozen=True, eq=False)
class Image:
    """One or several example images of a thing (paths, PIL images, HxWx3 uint8 RGB arrays), averaged like clips.

    ``argument`` is what errors about the pictures call them (``"prompt 'dog'"`` from :func:`image_prompts`).
    """

    images: Any
    argument: InitVar[str] = "Image"

    def __post_init__(self, argument: str) -> None:
        items = tuple(self.images) if isinstance(self.images, (list, tuple)) else (self.images,)
        if not items:
            raise InputError(f"{argument} needs at least one picture")
        object.__setattr__(self, "images", tuple(check_image_prompt(im, argument=argument) for im in items))


@dataclass(frozen=True, eq=False)
class Embedding:
    """A precomputed ``(D,)`` vector in ``space`` (default: the detector space)."""

    vector: Any
    space: str = DETECTOR_SPACE

    def __post_init__(self) -> None:
        vector = self.vector.detach().cpu().numpy() if hasattr(self.vector, "detach") else np.asarray(self.vector)
        vector = np.asarray(vector, dtype=np.float64).reshape(-1) if vector.size else vector
        if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)) or not np.any(vector):
            raise InputError(f"Embedding needs a finite, non-zero 1-D vector, got shape {np.shape(self.vector)}")
        object.__setattr__(self, "vector", vector)


@dataclass(frozen=True, eq=False)
class Mix:
    """A weighted sum of prompts: ``Mix([(0.7, Sound("bark.wav")), (0.3, Text("dog"))])``.

    ``argument`` is what errors about the terms call the mix (``"prompt 'dog'"`` from :func:`build_vocabulary`).
    """

    terms: Any
    argument: InitVar[str] = "Mix"

    def __post_init__(self, argument: str) -> None:
        terms = []
        for term in self.terms:
            if not (isinstance(term, (tuple, list)) and len(term) == 2):
                raise InputError(f"{argument}: Mix terms are (weight, prompt) pairs, got {term!r}")
            weight, prompt = term
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not np.isfinite(weight):
                raise InputError(f"{argument}: Mix weights must be finite numbers, got {weight!r}")
            terms.append((float(weight), as_prompt(prompt, argument=argument)))
        if not terms or not any(w != 0 for w, _ in terms):
            raise InputError(f"{argument} needs at least one term with a non-zero weight")
        object.__setattr__(self, "terms", tuple(terms))


Prompt = Union[Sound, Text, Image, Embedding, Mix]
PromptSpec = Union[Prompt, str, Sequence[tuple[float, Any]]]


def as_prompt(spec: Any, *, argument: str | None = None) -> Prompt:
    """A prompt object from a spec: prompt objects as they are, ``str`` -> :class:`Text`, pairs -> :class:`Mix`.

    ``argument`` (e.g. ``"prompt 'dog'"``) starts the message of an error about ``spec``.
    """
    if isinstance(spec, (Sound, Text, Image, Embedding, Mix)):
        return spec
    if isinstance(spec, str):
        return Text(spec, argument=argument or "Text")
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(t, (list, tuple)) and len(t) == 2 for t in spec):
        return Mix(spec, argument=argument or "Mix")
    prefix = "" if argument is None else f"{argument}: "
    raise InputError(
        f"{prefix}cannot read {spec!r} as a prompt: use Sound(...), Text(...), Image(...), Embedding(...), Mix(...), "
        f"a string, or a list of (weight, prompt) pairs"
    )


def _walk(prompt: Prompt) -> Iterable[Prompt]:
    yield prompt
    if isinstance(prompt, Mix):
        for _, term in prompt.terms:
            yield from _walk(term)


class _Resolver:
    """Turns prompts into detector-space unit vectors from the raw rows the encode pass returned."""

    def __init__(self, audio_encoder: AudioEncoder | None, bridge: Bridge | None, text_encoder: TextEncoder | None,
                 average: str, encoded: Mapping[tuple[str, str], np.ndarray], image_encoder: ImageEncoder | None,
                 hashes: dict[int, str]) -> None:
        self.audio_encoder, self.bridge, self.text_encoder = audio_encoder, bridge, text_encoder
        self.image_encoder = image_encoder
        self.average = average
        self.encoded = encoded  # {cache key: (D,) raw row} of every leaf, from the encode pass
        self.hashes = hashes  # content hashes by id(source), shared with the encode pass

    def rows(self, keys: Sequence[tuple[str, str]]) -> np.ndarray:
        """``(N, D)`` raw rows of the encode pass for these cache keys."""
        return np.stack([self.encoded[key] for key in keys])

    def to_detector(self, x: np.ndarray, space: str) -> np.ndarray:
        """``(B, D)`` rows of ``space`` -> ``(B, 512)`` unit rows: bridged when the space needs it."""
        if not needs_bridge(space):
            return l2_normalize(x)
        if self.bridge is None:
            raise InputError(
                f"prompts in the {x.shape[1]}-d {space!r} space need a bridge into the detector space "
                f"(bridge=LinearBridge/RetrievalBridge, e.g. audiodetic.bridge.default_bridge(...))"
            )
        if x.shape[1] != self.bridge.src_dim:
            raise InputError(f"the bridge maps {self.bridge.src_dim}-d inputs but the audio embeddings are "
                             f"{x.shape[1]}-d (space {space!r}); use a bridge fitted for this audio encoder")
        return np.asarray(self.bridge.apply(x), np.float64)

    def vector(self, prompt: Prompt) -> np.ndarray:
        if isinstance(prompt, Text):
            return l2_normalize(self.rows(text_cache_keys(self.text_encoder, [prompt.text]))[0])
        if isinstance(prompt, Sound):
            raw = self.rows(cache_keys("audio", self.audio_encoder, prompt.sources, self.hashes))
            space = self.audio_encoder.space
            if self.average == "audio":
                prototype = l2_normalize(raw, what="clip embeddings").mean(axis=0, keepdims=True)
                return l2_normalize(self.to_detector(prototype, space)[0])
            return l2_normalize(self.to_detector(l2_normalize(raw, what="clip embeddings"), space).mean(axis=0))
        if isinstance(prompt, Image):
            raw = self.rows(cache_keys("image", self.image_encoder, prompt.images, self.hashes))
            if needs_bridge(self.image_encoder.space):
                raise InputError(f"image embeddings in the {self.image_encoder.space!r} space cannot be used in "
                                 f"the detector space")
            return l2_normalize(l2_normalize(raw, what="image embeddings").mean(axis=0))
        if isinstance(prompt, Embedding):
            return l2_normalize(self.to_detector(prompt.vector[None, :], prompt.space)[0])
        total = sum(weight * self.vector(term) for weight, term in prompt.terms)
        if np.linalg.norm(total) < 1e-6:
            raise InputError("a Mix cancels out to the zero vector; change its weights")
        return l2_normalize(total)


def _named_prompts(prompts: Any) -> list[tuple[str, Prompt]]:
    if isinstance(prompts, Mapping):
        pairs = list(prompts.items())
    elif isinstance(prompts, str):
        raise InputError("pass a list of prompts or a {name: prompt} mapping, not one string")
    else:
        pairs = []
        for item in prompts:
            if isinstance(item, str):
                pairs.append((item, item))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                pairs.append(item)
            else:
                raise InputError(f"list items must be strings or (name, prompt) pairs, got {item!r}")
    if not pairs:
        raise InputError("no prompts given")
    named = []
    for name, spec in pairs:
        check_name(name, "prompts")
        named.append((name, as_prompt(spec, argument=f"prompt {name!r}")))
    return named


def sound_prompts(sources_by_name: Mapping[str, Sequence[Any]]) -> dict[str, Sound]:
    """``{name: Sound(sources)}`` from parsed sound prompts (:func:`audiodetic.inputs.parse_audio_prompts`); an
    unusable source raises an error naming its prompt (``"prompt 'dog': ..."``)."""
    return {name: Sound(list(sources), argument=f"prompt {name!r}") for name, sources in sources_by_name.items()}


def image_prompts(pictures_by_name: Mapping[str, Sequence[Any]]) -> dict[str, Image]:
    """``{name: Image(pictures)}``; an unusable picture raises an error naming its prompt (``"prompt 'cat': ..."``)."""
    return {name: Image(list(pictures), argument=f"prompt {name!r}") for name, pictures in pictures_by_name.items()}


def _encode_leaves(leaves: Sequence[Prompt], audio_encoder: AudioEncoder | None, text_encoder: TextEncoder | None,
                   image_encoder: ImageEncoder | None, cache: EmbeddingCache, hashes: dict[int, str]
                   ) -> dict[tuple[str, str], np.ndarray]:
    """Every clip, text and picture of ``leaves`` encoded in one batched call per kind (through ``cache``):
    ``{cache key: (D,) float32 raw row}``, the rows the prompts are resolved from (never fetched again)."""
    sources = [s for leaf in leaves if isinstance(leaf, Sound) for s in leaf.sources]
    texts = list(dict.fromkeys(leaf.text for leaf in leaves if isinstance(leaf, Text)))
    pictures = [im for leaf in leaves if isinstance(leaf, Image) for im in leaf.images]
    encoded: dict[tuple[str, str], np.ndarray] = {}
    if sources:
        rows = encode_sounds(sources, audio_encoder, cache=cache, hashes=hashes, checked=True)
        encoded.update(zip(cache_keys("audio", audio_encoder, sources, hashes), rows))
    if texts:
        rows = encode_texts(texts, text_encoder, cache=cache)
        encoded.update(zip(text_cache_keys(text_encoder, texts), rows))
    if pictures:
        rows = encode_images(pictures, image_encoder, cache=cache, hashes=hashes, checked=True)
        encoded.update(zip(cache_keys("image", image_encoder, pictures, hashes), rows))
    return encoded


def build_vocabulary(prompts: Mapping[str, PromptSpec] | Sequence[Any], *, audio_encoder: AudioEncoder | None = None,
                     bridge: Bridge | str | os.PathLike[str] | None = None, text_encoder: TextEncoder | None = None,
                     average: Literal["audio", "detector"] = "audio", cache: EmbeddingCache | None = None,
                     image_encoder: ImageEncoder | None = None) -> Vocabulary:
    """A :class:`~audiodetic.vocabulary.Vocabulary` of unit rows in the detector space, one per named prompt.

    Args:
        prompts: ``{name: spec}`` (spec: :class:`Sound`, :class:`Text`, :class:`Embedding`, :class:`Mix`, a string,
            or ``(weight, prompt)`` pairs), or a list of strings (text prompts named by themselves) and/or
            ``(name, spec)`` pairs. Order is kept.
        audio_encoder: needed for sounds; has ``encode_sources(sources) -> (A, D)`` (e.g. ``ImageBindAudioEncoder``).
        bridge: maps audio embeddings ``(B, D)`` to ``(B, 512)`` (``LinearBridge``/``RetrievalBridge``), or
            ``"linear"``/``"retrieval"``/a saved ``.npz``, resolved by :func:`audiodetic.bridge.default_bridge` only
            when a prompt needs it (fit-or-load with the released weights; kept for the process). May be ``None``
            when no prompt lives in a space that needs a bridge (text, images, Wav2CLIP sounds).
        text_encoder: needed for texts; ``encode(texts) -> (T, 512)`` raw (:class:`~audiodetic.encoders.clip_text.ClipTextEncoder`).
        average: where the clips of one :class:`Sound` are averaged (see the module doc).
        image_encoder: needed for :class:`Image` prompts (:class:`~audiodetic.encoders.clip_image.ClipImageEncoder`; CLIP's
            image space is joint with the text space, so no bridge is used).
        cache: an :class:`EmbeddingCache` (default: the process-wide :data:`DEFAULT_CACHE`).
    Returns: ``Vocabulary(names, (C, 512) float32 unit rows, space=DETECTOR_SPACE)``.
    """
    if average not in ("audio", "detector"):
        raise InputError(f"average must be 'audio' or 'detector', got {average!r}")
    named = _named_prompts(prompts)
    leaves = [leaf for _, prompt in named for leaf in _walk(prompt)]
    hashes: dict[int, str] = {}  # the sources are hashed here once; resolving the prompts reuses the hashes
    encoded = _encode_leaves(leaves, audio_encoder, text_encoder, image_encoder,
                             DEFAULT_CACHE if cache is None else cache, hashes)
    if isinstance(bridge, (str, os.PathLike)):
        bridged = [leaf for leaf in leaves if (isinstance(leaf, Sound) and needs_bridge(audio_encoder.space))
                   or (isinstance(leaf, Embedding) and needs_bridge(leaf.space))]
        if bridged:
            from audiodetic.bridge import default_bridge

            bridge = default_bridge(bridge, audio_encoder=audio_encoder)
        else:
            bridge = None
    resolver = _Resolver(audio_encoder, bridge, text_encoder, average, encoded, image_encoder, hashes)
    rows = [resolver.vector(prompt) for _, prompt in named]
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise InputError(f"prompts landed in spaces of different widths {sorted(dims)}; check the encoders/bridge")
    matrix = np.stack(rows).astype(np.float32)
    return Vocabulary(tuple(name for name, _ in named), matrix, space=default_space(matrix.shape[1]))
