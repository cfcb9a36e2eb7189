"""The one place a collection run talks to the model: load it, build the vocabulary, prepare and detect images.

Every engine (the local pipeline, each ``torchrun`` rank, each Ray actor) makes one :class:`DetectionSession`,
so the detector, the prompt encoders and the vocabulary are built once per process, never per image or batch.
:func:`read_pixels` (read, decode) needs no model and :meth:`DetectionSession.prepare` (resize, normalise) no
weights: both run in worker threads. :meth:`DetectionSession.detect` encodes a batch (one backbone pass per group
of equal input shape, see :mod:`audiodetic.detector.batching`) and classifies each image. With a batch of one this is exactly what
``model.predictor()``'s ``set_image`` + ``predict`` compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from audiodetic.collection.settings import DetectionSettings
from audiodetic.structures import Detections


@dataclass
class PreparedImage:
    """An image ready for the model.

    Attributes:
        item: what the caller uses to name the image (an ``ImageItem``, a label...).
        inputs: the detector's ``PreprocessedImage`` (``(1, 3, Hp, Wp)`` float32 on the model's device).
        pixels: the ``(H, W, 3)`` uint8 RGB image, kept only when asked (for drawing).
    """

    item: Any
    inputs: Any
    pixels: np.ndarray | None = None


def read_pixels(source: Any) -> Any:
    """The picture of a path, encoded image bytes, ``PIL.Image`` or RGB array, upright and RGB, in the form the
    detector reads without a full-size copy (:func:`audiodetic.inputs.as_picture`: an array stays an array, the
    rest is an RGB ``PIL.Image``); needs no model. Raises ``ValueError``/``FileNotFoundError`` naming the image."""
    from audiodetic.inputs import as_picture

    return as_picture(source)


class DetectionSession:
    """A loaded model and its vocabulary for one :class:`DetectionSettings`.

    Args:
        settings: the run's model, prompts and options.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``.
        model: an already loaded ``AudiodeticModel`` to use instead of loading ``settings.detector``.
    """

    def __init__(self, settings: DetectionSettings, *, device: str = "cpu", model: Any = None) -> None:
        from audiodetic import api

        if model is None:
            model = api.load(settings.detector, device=device, half=settings.half,
                             audio_weights=settings.audio_weights, text_weights=settings.text_weights,
                             bridge=settings.bridge)
        self.settings = settings
        self.model = model
        self.vocabulary = model.vocabulary({name: list(files) for name, files in settings.audio} or None,
                                           dict(settings.text) or None, vocabulary=settings.vocabulary,
                                           names=settings.names)

    @property
    def device(self) -> str:
        return str(self.model.device)

    def prepare(self, source: Any, item: Any = None, *, keep_pixels: bool = False) -> PreparedImage:
        """Read ``source`` (see :func:`read_pixels`) unless it is already a picture, and make the network
        input. Thread-safe."""
        picture = read_pixels(source)
        inputs = self.model.detector.preprocess(picture, input_size=self.settings.input_size)
        return PreparedImage(item=source if item is None else item, inputs=inputs,
                             pixels=np.asarray(picture) if keep_pixels else None)

    def detect(self, prepared: Sequence[PreparedImage], *, batch_size: int = 1) -> list[Detections]:
        """Detections of each prepared image (boxes in its own pixels, masks as RLE), in order.

        ``batch_size`` > 1 stacks images of equal input shape into one backbone pass.
        """
        from audiodetic.detector.batching import encode_batch

        settings = self.settings
        detector = self.model.detector
        with self.model.inference():
            encodings = encode_batch(detector, [p.inputs for p in prepared], max_batch=max(1, batch_size))
            return [detector.classify(encoding, self.vocabulary, score_threshold=settings.score_threshold,
                                      all_classes=settings.all_classes, with_masks=settings.with_masks,
                                      max_detections=settings.max_detections) for encoding in encodings]


def detect_each(session: DetectionSession, prepared: Sequence[PreparedImage], *, batch_size: int = 1
                ) -> list[Detections | Exception]:
    """:meth:`DetectionSession.detect` on ``prepared``; when the batch fails, each image alone, so that only the
    images that fail by themselves get their error (in place of their detections)."""
    if not prepared:
        return []
    try:
        return list(session.detect(prepared, batch_size=batch_size))
    except Exception as error:  # noqa: BLE001 - one image's failure must not cost the others
        if len(prepared) == 1:
            return [error]
        return [found for one in prepared for found in detect_each(session, [one])]
