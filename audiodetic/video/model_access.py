"""The one place the video package (and the sound-localisation evaluation) talks to the model.

Everything model-facing goes through here: getting the model (:func:`resolve_model`, as :func:`audiodetic.detect`
does), building the named-prompt vocabulary, embedding soundtrack windows with the model's audio encoder and
bridge, encoding a frame once, scoring it against vocabularies and making the soundtrack heat map
(:func:`soundtrack_map`). The rest of :mod:`audiodetic.video` sees plain arrays,
:class:`~audiodetic.vocabulary.Vocabulary` and :class:`~audiodetic.structures.Detections`.

Soundtrack windows are handed to the audio encoder as ``(waveform (channels, samples) float32, sample_rate)``
pairs at the video's own rate; the encoder applies its own input contract (ImageBind: 16 kHz, three 2-s clips).
Their embeddings are not cached here (the pipeline keeps the last window's), and never in the process-wide prompt
cache, so a long video neither grows memory nor evicts the user's prompts.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic.errors import InputError
from audiodetic.structures import Detections
from audiodetic.video.heatmap import score_map
from audiodetic.vocabulary import Vocabulary

SOUNDTRACK = "soundtrack"
"""The name of the soundtrack prompt in every vocabulary and result."""
HEATMAP_REGIONS = 100
"""Regions (best first, after NMS) that make up a soundtrack heat map (video results and the evaluation)."""


def resolve_model(model: Any = None, *, device: str = "cpu") -> Any:
    """The ``AudiodeticModel`` to use, got as :func:`audiodetic.detect` gets it.

    ``None`` or a model name/checkpoint path: loaded once per process (the API's model cache, the API's default
    bridge) on ``device``; an ``AudiodeticModel``: itself. Anything else raises
    :class:`~audiodetic.errors.InputTypeError`; a bad ``device`` raises :class:`~audiodetic.errors.InputError`.
    """
    from audiodetic import api
    from audiodetic.errors import InputTypeError
    from audiodetic.inputs import check_device

    if model is None or isinstance(model, (str, os.PathLike)):
        return api._cached_model(model, check_device(device), False, api.DEFAULT_BRIDGE)
    if not isinstance(model, api.AudiodeticModel):
        raise InputTypeError(f"model: expected an AudiodeticModel (from audiodetic.load), a model name or a "
                             f"checkpoint path, got {type(model).__name__}")
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
        clip_seconds: the encoder's clip length (``clip_seconds`` when it states one, else ImageBind's 2 s), used
            as the window length.
        encoded: windows run through the encoder so far.
    """

    def __init__(self, model: Any) -> None:
        from audiodetic.encoders.audio.features import CLIP_SECONDS
        from audiodetic.spaces import needs_bridge

        try:
            self.encoder = model.audio_encoder()
        except ValueError:
            raise InputError("the soundtrack prompt needs an audio encoder; load the model with audio weights "
                             "(audiodetic.load(..., audio_weights='imagebind_huge'))") from None
        self.bridge = model.bridge() if needs_bridge(self.encoder.space) else None
        self.clip_seconds = float(getattr(self.encoder, "clip_seconds", CLIP_SECONDS))
        self.encoded = 0

    def embed(self, windows: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """``(B, D)`` float32 unit rows in the detector space for ``B`` windows ``(waveform (C, n), rate)``."""
        from audiodetic import prompts
        from audiodetic.encoders.cache import EmbeddingCache

        if not windows:
            return np.zeros((0, 512), np.float32)
        specs: Mapping[str, Any] = {f"window_{i}": prompts.Sound((np.ascontiguousarray(w), int(rate)))
                                    for i, (w, rate) in enumerate(windows)}
        scratch = EmbeddingCache()  # this call's only: keeps windows out of the process-wide prompt cache
        built = prompts.build_vocabulary(specs, audio_encoder=self.encoder, bridge=self.bridge, cache=scratch)
        self.encoded += int(scratch.encoded)
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


def soundtrack_map(encoded: Any, embedding: np.ndarray, image_size: tuple[int, int], grid: tuple[int, int], *,
                   with_masks: bool = False) -> np.ndarray:
    """The soundtrack heat map of an encoded frame: float32 ``(rows, cols)`` = ``grid``.

    Every region (up to :data:`HEATMAP_REGIONS`, best first after NMS, no score threshold) is scored against the
    ``(D,)`` soundtrack ``embedding`` alone; each cell takes the best score of the regions covering it
    (:func:`audiodetic.video.heatmap.score_map`, over boxes, or over masks with ``with_masks``). ``image_size``:
    ``(H, W)`` of the frame.
    """
    regions = predict(encoded, with_soundtrack(None, embedding), score_threshold=0.0, with_masks=with_masks,
                      max_detections=HEATMAP_REGIONS)
    return score_map(regions.boxes, regions.scores, image_size, grid, masks=regions.masks if with_masks else None)
