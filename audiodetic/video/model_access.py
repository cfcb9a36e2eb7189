"""The one place the video package (and the sound-localisation evaluation) talks to the model.

Everything model-facing goes through here: loading, building the named-prompt vocabulary, embedding soundtrack
windows with the model's audio encoder and bridge, encoding a frame once and scoring it against vocabularies.
The rest of :mod:`audiodetic.video` sees plain arrays, :class:`~audiodetic.vocabulary.Vocabulary` and
:class:`~audiodetic.structures.Detections`.

Soundtrack windows are handed to the audio encoder as ``(waveform (channels, samples) float32, sample_rate)``
pairs at the video's own rate; the encoder applies its own input contract (ImageBind: 16 kHz, three 2-s clips).
Their raw embeddings are cached in a small private cache (:data:`WINDOW_CACHE_ENTRIES`), not in the process-wide
prompt cache, so a long video neither grows memory nor evicts the user's prompts.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic.errors import InputError
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary

SOUNDTRACK = "soundtrack"
"""The name of the soundtrack prompt in every vocabulary and result."""
WINDOW_CACHE_ENTRIES = 64
DEFAULT_CLIP_SECONDS = 2.0
"""Window length for audio encoders that do not state a clip length."""


def load_model(detector: Any = None, *, device: str = "cpu", half: bool = False, audio_weights: Any = "imagebind_huge",
               text_weights: Any = "clip-vit-b32", bridge: Any = "linear") -> Any:
    """:func:`audiodetic.api.load` with these arguments (weights downloaded on first use)."""
    from audiodetic import api

    return api.load(detector, device=device, half=half, audio_weights=audio_weights, text_weights=text_weights,
                    bridge=bridge)


def check_model(model: Any) -> Any:
    """``model`` when it is an ``AudiodeticModel``; :class:`~audiodetic.errors.InputTypeError` otherwise."""
    from audiodetic.api import AudiodeticModel
    from audiodetic.errors import InputTypeError

    if not isinstance(model, AudiodeticModel):
        raise InputTypeError(f"model: expected an AudiodeticModel (from audiodetic.load), got {type(model).__name__}")
    return model


def named_vocabulary(model: Any, audio_prompts: Any = None, text_prompts: Any = None,
                     vocabulary: Any = None) -> Vocabulary | None:
    """The vocabulary of the named prompts (sounds, then texts, then ``vocabulary``), or ``None`` when none given.

    Raises :class:`InputError` when a prompt is named ``soundtrack`` (that name is reserved)."""
    if audio_prompts is None and text_prompts is None and vocabulary is None:
        return None
    result = model.vocabulary(audio_prompts, text_prompts, vocabulary=vocabulary)
    if SOUNDTRACK in result.names:
        raise InputError(f"the prompt name {SOUNDTRACK!r} is reserved for the video's own soundtrack; rename it")
    return result


def with_soundtrack(named: Vocabulary | None, embedding: np.ndarray | None) -> Vocabulary | None:
    """``named`` plus a last row ``soundtrack`` (``embedding``: a ``(D,)`` unit vector), either part optional."""
    if embedding is None:
        return named
    row = Vocabulary((SOUNDTRACK,), np.asarray(embedding, np.float32)[None, :])
    return row if named is None else named.concat(row)


class SoundtrackEncoder:
    """Embeds soundtrack windows into the detector space with ``model``'s audio encoder and bridge.

    Attributes:
        clip_seconds: the encoder's clip length, used as the window length (ImageBind: 2 s).
        encoded: windows actually run through the encoder so far (cached ones are not counted).
    """

    def __init__(self, model: Any) -> None:
        from audiodetic.encoders.cache import EmbeddingCache
        from audiodetic.spaces import needs_bridge

        try:
            self.encoder = model.audio_encoder()
        except ValueError:
            raise InputError("the soundtrack prompt needs an audio encoder; load the model with audio weights "
                             "(audiodetic.load(..., audio_weights='imagebind_huge'))") from None
        self.bridge = model.bridge() if needs_bridge(self.encoder.space) else None
        self.clip_seconds = float(getattr(self.encoder, "clip_seconds", None) or self._default_clip_seconds())
        self._cache = EmbeddingCache(max_entries=WINDOW_CACHE_ENTRIES)

    def _default_clip_seconds(self) -> float:
        from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

        if isinstance(self.encoder, ImageBindAudioEncoder):
            from audiodetic.encoders.audio.features import CLIP_SECONDS

            return float(CLIP_SECONDS)
        return DEFAULT_CLIP_SECONDS

    @property
    def encoded(self) -> int:
        return int(self._cache.encoded)

    def embed(self, windows: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """``(B, D)`` float32 unit rows in the detector space for ``B`` windows ``(waveform (C, n), rate)``."""
        from audiodetic import prompts

        if not windows:
            return np.zeros((0, 512), np.float32)
        specs: Mapping[str, Any] = {f"window_{i}": prompts.Sound((np.ascontiguousarray(w), int(rate)))
                                    for i, (w, rate) in enumerate(windows)}
        built = prompts.build_vocabulary(specs, audio_encoder=self.encoder, bridge=self.bridge, cache=self._cache)
        return np.asarray(built.embeddings, np.float32)


def encode_frame(model: Any, rgb: np.ndarray, *, input_size: tuple[int, int] | None = None) -> Any:
    """Encode one ``(H, W, 3)`` uint8 RGB frame once; the result is re-scored by :func:`predict`."""
    predictor = model.predictor()
    predictor.set_image(rgb, input_size=input_size)
    return predictor


def predict(encoded: Any, vocabulary: Vocabulary, *, score_threshold: float, with_masks: bool = True,
            max_detections: int = 300, all_classes: bool = False) -> Detections:
    """Detections of an encoded frame for ``vocabulary`` (boxes xyxy float32 in the frame's pixels)."""
    return encoded.predict(vocabulary=vocabulary, score_threshold=score_threshold, with_masks=with_masks,
                           max_detections=max_detections, all_classes=all_classes)
