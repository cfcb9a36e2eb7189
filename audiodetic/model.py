"""The reusable objects: :class:`AudiodeticModel` (a detector plus the encoders and bridge that turn prompts into
its class embeddings) and :class:`Predictor` (one image encoded once, re-prompted cheaply).

Frames and types: images are paths, ``PIL.Image`` objects or ``(H, W, 3)`` uint8 RGB arrays; results are
:class:`~audiodetic.structures.Detections` with float32 ``xyxy`` boxes in the pixels of the image passed in.
Prompts become a :class:`~audiodetic.vocabulary.Vocabulary` (``C`` unit vectors in the detector's 512-d space) by
:mod:`audiodetic.prompts`; the detector never stores it. Prompt arguments have the same names at every layer:
``audio_prompts``, ``text_prompts``, ``image_prompts`` and ``vocabulary``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Mapping, Sequence, TypeVar

from audiodetic import status
from audiodetic.errors import InputError
from audiodetic.inputs import (
    as_picture,
    check_device,
    check_name,
    check_threshold,
    is_image_batch,
    parse_audio_prompts,
    parse_text_prompts,
    sequence_of_images,
)
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary, as_vocabulary

if TYPE_CHECKING:
    from audiodetic.bridge import Bridge
    from audiodetic.detector.model import Detector
    from audiodetic.encoders.protocols import AudioEncoder, ImageEncoder, TextEncoder

T = TypeVar("T")


class Deferred(Generic[T]):
    """A component built on first use by ``factory()`` (so text-only users never load the audio tower)."""

    def __init__(self, factory: Callable[[], T], description: str) -> None:
        self.factory = factory
        self.description = description


class _Slot(Generic[T]):
    """Holds a component or a :class:`Deferred`; builds it once, thread-safely."""

    def __init__(self, value: T | Deferred[T] | None, what: str) -> None:
        self._value = value
        self._what = what
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        with self._lock:
            if isinstance(self._value, Deferred):
                with status.step(f"loading the {self._value.description}"):
                    self._value = self._value.factory()
            if self._value is None:
                raise InputError(f"this model has no {self._what}; load it with one to use such prompts")
            return self._value


class AudiodeticModel:
    """A detector plus the encoders that turn prompts into its class embeddings.

    Args:
        detector: an :class:`audiodetic.detector.model.Detector` (already on ``device``).
        audio_encoder: the audio encoder (ImageBind's audio tower; or a :class:`Deferred`), for sound prompts.
        bridge: maps audio embeddings into the detector space (or a :class:`Deferred`); used only for encoders
            whose space needs one (:func:`audiodetic.spaces.needs_bridge`).
        text_encoder: CLIP ViT-B/32 text encoder (or a :class:`Deferred`), for text prompts.
        image_encoder: CLIP ViT-B/32 image encoder (or a :class:`Deferred`), for example-image prompts.
        device: ``"cpu"`` / ``"cuda[:i]"``; ``half``: run the detector under float16 autocast (CUDA only).
        name: a label for the model (shown by the demo).

    Thread safety: :meth:`detect` may be called from several threads; a :class:`Predictor` belongs to one caller.
    """

    def __init__(self, detector: "Detector", *, audio_encoder: "AudioEncoder | Deferred | None" = None,
                 bridge: "Bridge | Deferred | None" = None, text_encoder: "TextEncoder | Deferred | None" = None,
                 image_encoder: "ImageEncoder | Deferred | None" = None, device: str = "cpu", half: bool = False,
                 name: str | None = None) -> None:
        self.detector = detector
        self.device = check_device(device, half=half)
        self.half = bool(half)
        self.name = name or type(detector).__name__
        self._audio_encoder: _Slot[AudioEncoder] = _Slot(audio_encoder, "audio encoder")
        self._bridge: _Slot[Bridge] = _Slot(bridge, "bridge (audio -> detector space)")
        self._text_encoder: _Slot[TextEncoder] = _Slot(text_encoder, "text encoder")
        self._image_encoder: _Slot[ImageEncoder] = _Slot(image_encoder, "image encoder")

    def __repr__(self) -> str:
        return f"AudiodeticModel(name={self.name!r}, device={self.device!r}, half={self.half})"

    def audio_encoder(self) -> "AudioEncoder":
        """The audio encoder (loaded now if it was deferred)."""
        return self._audio_encoder.get()

    def text_encoder(self) -> "TextEncoder":
        """The text encoder (loaded now if it was deferred)."""
        return self._text_encoder.get()

    def image_encoder(self) -> "ImageEncoder":
        """The example-image encoder (loaded now if it was deferred)."""
        return self._image_encoder.get()

    def bridge(self) -> "Bridge":
        """The audio -> detector-space bridge (loaded or fitted now if it was deferred)."""
        return self._bridge.get()

    def set_bridge(self, bridge: "Bridge | Deferred | None") -> None:
        """Replace the bridge (a ready bridge, a :class:`Deferred` one, or ``None`` for none)."""
        self._bridge = _Slot(bridge, "bridge (audio -> detector space)")

    @property
    def embed_dim(self) -> int:
        """Width ``D`` of the detector's class-embedding space."""
        return int(self.detector.config.embed_dim)

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """``torch.inference_mode`` plus float16 autocast when ``half``."""
        import torch

        with torch.inference_mode():
            if self.half:
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    yield
            else:
                yield

    # -- prompts -> vocabulary --------------------------------------------------------------------------------
    def vocabulary(self, audio_prompts: Any = None, text_prompts: Any = None, *, image_prompts: Any = None,
                   vocabulary: Any = None, names: Sequence[str] | None = None) -> Vocabulary:
        """One :class:`Vocabulary` (``(C, D)`` unit rows) from sound, text and image prompts and a ready vocabulary.

        Args:
            audio_prompts: sound prompts in any form :func:`audiodetic.inputs.parse_audio_prompts` accepts, or a
                :class:`Vocabulary` (used as it is).
            text_prompts: a phrase, a list of phrases or ``{name: phrase}``.
            image_prompts: ``{name: picture or [pictures]}`` (paths, PIL images, ``(H, W, 3)`` uint8 arrays;
                several pictures of one thing are averaged).
            vocabulary: a :class:`Vocabulary`, a ``(C, D)`` array or a ``.npy``/``.npz`` file; ``names`` names
                the rows of an array or ``.npy``.

        Entries are ordered: audio prompts, text prompts, image prompts, then ``vocabulary``. Names must be unique.
        """
        parts: list[Vocabulary] = []
        if isinstance(audio_prompts, Vocabulary):
            parts.append(audio_prompts)
            audio_prompts = None
        audio = parse_audio_prompts(audio_prompts, argument="audio_prompts")
        text = parse_text_prompts(text_prompts, argument="text_prompts")
        images = _parse_image_prompts(image_prompts)
        named = [*audio, *text, *images]
        repeated = sorted({name for name in named if named.count(name) > 1})
        if repeated:
            raise InputError(f"prompt names must be unique; {repeated} name more than one prompt")
        if named:
            parts.append(self._embed_prompts(audio, text, images))
        if vocabulary is not None:
            parts.append(as_vocabulary(vocabulary, names=names))
        if not parts:
            raise InputError("no prompts: give at least one of audio_prompts (sound files), text_prompts, "
                             "image_prompts or vocabulary")
        result = parts[0].concat(*parts[1:]) if len(parts) > 1 else parts[0]
        result.check_compatible(dim=self.embed_dim)
        return result

    def _embed_prompts(self, audio: Mapping[str, list[Any]], text: Mapping[str, str],
                       images: Mapping[str, list[Any]]) -> Vocabulary:
        from audiodetic import prompts as prompt_lib
        from audiodetic.spaces import needs_bridge

        audio_encoder = self._audio_encoder.get() if audio else None
        needs = audio_encoder is not None and needs_bridge(audio_encoder.space) and self._bridge.available
        specs = {**prompt_lib.sound_prompts(audio), **{name: prompt_lib.Text(p) for name, p in text.items()},
                 **prompt_lib.image_prompts(images)}
        return prompt_lib.build_vocabulary(
            specs, audio_encoder=audio_encoder, bridge=self._bridge.get() if needs else None,
            text_encoder=self._text_encoder.get() if text else None,
            image_encoder=self._image_encoder.get() if images else None)

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, image: Any, audio_prompts: Any = None, *, text_prompts: Any = None, image_prompts: Any = None,
               vocabulary: Any = None, names: Sequence[str] | None = None, score_threshold: float = 0.5,
               all_classes: bool = False, with_masks: bool = True, max_detections: int = 300,
               input_size: tuple[int, int] | None = None, max_image_pixels: int | None = None
               ) -> Detections | list[Detections]:
        """Detect the prompted things in one image or a list of images.

        Args:
            image: a path, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array, or a list of those.
            audio_prompts, text_prompts, image_prompts, vocabulary, names: the prompts (see :meth:`vocabulary`).
            score_threshold: keep detections scoring above this (in ``[0, 1]``).
            all_classes: score every class per region instead of the best one; ``with_masks``: compute masks.
            input_size: ``(min_size, max_size)`` of the shortest-edge resize (default: the detector's config,
                e.g. ``(640, 640)`` for Detic's real-time setting).
            max_image_pixels: refuse image files above this many pixels (default: see
                :func:`audiodetic.inputs.max_image_pixels`).

        Returns:
            :class:`Detections` (boxes xyxy float32 in the image's pixels), or a list of them for a list of images.
        """
        threshold = check_threshold(score_threshold)
        batch = is_image_batch(image)
        pictures = (sequence_of_images(image, max_pixels=max_image_pixels) if batch
                    else [as_picture(image, max_pixels=max_image_pixels)])
        vocab = self.vocabulary(audio_prompts, text_prompts, image_prompts=image_prompts, vocabulary=vocabulary,
                                names=names)
        results = []
        for picture in pictures:
            with self.inference():
                encoding = self.detector.encode(picture, input_size=input_size)
                results.append(self.detector.classify(
                    encoding, vocab, score_threshold=threshold, all_classes=all_classes,
                    with_masks=with_masks, max_detections=max_detections,
                ))
        return results if batch else results[0]

    def predictor(self, image: Any = None, *, input_size: tuple[int, int] | None = None,
                  max_image_pixels: int | None = None) -> "Predictor":
        """A :class:`Predictor` for re-prompting one image cheaply (with ``image`` already set when given)."""
        predictor = Predictor(self)
        if image is not None:
            predictor.set_image(image, input_size=input_size, max_image_pixels=max_image_pixels)
        return predictor


def _parse_image_prompts(image_prompts: Any) -> dict[str, list[Any]]:
    if image_prompts is None:
        return {}
    if not isinstance(image_prompts, Mapping) or not image_prompts:
        raise InputError("image_prompts: expected a non-empty {name: picture or [pictures]} dict, got "
                         f"{type(image_prompts).__name__}")
    parsed = {}
    for name, pictures in image_prompts.items():
        name = check_name(name, "image_prompts")
        parsed[name] = list(pictures) if isinstance(pictures, (list, tuple)) else [pictures]
    return parsed


class Predictor:
    """Encode an image once (:meth:`set_image`), then score any number of prompt sets (:meth:`predict`).

    Like segment-anything's ``SamPredictor``: ``set_image`` runs everything that does not depend on the prompts
    (backbone, FPN, proposals, the class-agnostic cascade); ``predict`` runs only the classifier, the score
    combination, NMS and the mask head, so boxes never depend on the prompts. One instance serves one caller at a
    time (it holds the image's encoding).

    Example::

        predictor = model.predictor()
        predictor.set_image("street.jpg")
        dogs = predictor.predict({"dog": "bark.wav"})
        cars = predictor.predict(text_prompts=["car"], score_threshold=0.3)
    """

    def __init__(self, model: AudiodeticModel) -> None:
        from audiodetic.detector.predictor import DetectorPredictor

        self.model = model
        self._encoded = DetectorPredictor(model.detector)

    @property
    def is_image_set(self) -> bool:
        return self._encoded.is_image_set

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the set image, or ``None`` before :meth:`set_image` (or after one that failed)."""
        return self._encoded.image_size if self._encoded.is_image_set else None

    def set_image(self, image: Any, *, input_size: tuple[int, int] | None = None,
                  max_image_pixels: int | None = None) -> None:
        """Encode ``image`` (path, PIL or ``(H, W, 3)`` uint8 RGB) and keep the encoding (``max_image_pixels``: see
        :meth:`AudiodeticModel.detect`)."""
        picture = as_picture(image, max_pixels=max_image_pixels)
        with self.model.inference():
            self._encoded.set_image(picture, input_size=input_size)

    def reset_image(self) -> None:
        """Forget the set image (frees its cached features)."""
        self._encoded.reset_image()

    def predict(self, audio_prompts: Any = None, *, text_prompts: Any = None, image_prompts: Any = None,
                vocabulary: Any = None, names: Sequence[str] | None = None, score_threshold: float = 0.5,
                all_classes: bool = False, with_masks: bool = True, max_detections: int = 300) -> Detections:
        """Detections of the set image for these prompts (same arguments as :meth:`AudiodeticModel.detect`)."""
        if not self.is_image_set:
            raise InputError("no image set: call set_image(image) before predict()")
        threshold = check_threshold(score_threshold)
        vocab = self.model.vocabulary(audio_prompts, text_prompts, image_prompts=image_prompts,
                                      vocabulary=vocabulary, names=names)
        with self.model.inference():
            return self._encoded.predict(vocab, score_threshold=threshold, all_classes=all_classes,
                                         with_masks=with_masks, max_detections=max_detections)
