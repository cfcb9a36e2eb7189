"""``DetectorPredictor``: the detector-level half of :class:`audiodetic.Predictor` - one encoded image, classified
against any number of vocabularies.

``set_image`` runs everything that does not depend on the vocabulary (backbone, FPN, proposals, the three
class-agnostic cascade stages); ``predict`` reruns only the zero-shot classifier, the score combination, NMS and
the mask head on the surviving detections. Because box regression is class-agnostic, the box of every proposal is
the same for every vocabulary. It takes ready vocabularies; prompts are the business of the public
:class:`audiodetic.model.Predictor` that wraps it.
"""

from __future__ import annotations

from typing import Any, Sequence

from audiodetic.errors import InputError
from audiodetic.structures import Detections


class DetectorPredictor:
    """Re-promptable detection on one image at a time.

    Args:
        detector: an ``audiodetic.detector.model.Detector`` (e.g. from ``convert.load_detector``).

    Example::

        predictor = DetectorPredictor(detector)
        predictor.set_image(image)               # (H, W, 3) uint8 RGB
        dogs = predictor.predict(vocab_a)        # Detections in the image's pixels
        cats = predictor.predict(vocab_b, score_threshold=0.3)
    """

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self._encoding = None

    @property
    def is_image_set(self) -> bool:
        return self._encoding is not None

    @property
    def encoding(self) -> Any:
        """The cached ``ImageEncoding`` of the current image (raises ``ValueError`` before ``set_image``)."""
        if self._encoding is None:
            raise InputError("no image set: call set_image(image) before predict()")
        return self._encoding

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the current image."""
        return self.encoding.original_size

    def set_image(self, image: Any, *, input_size: tuple[int, int] | None = None) -> None:
        """Encode an ``(H, W, 3)`` uint8 RGB image (or RGB ``PIL.Image``) and keep the result for :meth:`predict`.

        ``input_size = (min_size, max_size)`` overrides the detector's shortest-edge resize for this image.
        """
        self._encoding = None
        self._encoding = self.detector.encode(image, input_size=input_size)

    def reset_image(self) -> None:
        """Forget the current image (frees its cached features)."""
        self._encoding = None

    def predict(
        self,
        vocabulary: Any,
        *,
        names: Sequence[str] | None = None,
        score_threshold: float = 0.5,
        all_classes: bool = False,
        with_masks: bool = True,
        max_detections: int = 300,
    ) -> Detections:
        """Detections of the current image for ``vocabulary`` (a ``Vocabulary`` or a ``(C, D)`` array/tensor).

        Same options and result as ``Detector.detect`` on the same image (see ``Detector.classify``).
        """
        return self.detector.classify(
            self.encoding,
            vocabulary,
            names=names,
            score_threshold=score_threshold,
            all_classes=all_classes,
            with_masks=with_masks,
            max_detections=max_detections,
        )
