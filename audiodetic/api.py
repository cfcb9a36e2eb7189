"""The Python entry points: :func:`detect` (one call), :func:`load` (a reusable :class:`AudiodeticModel`) and
:func:`list_models`.

Frames and types: images are paths, ``PIL.Image`` objects or ``(H, W, 3)`` uint8 RGB arrays; results are
:class:`~audiodetic.structures.Detections` with float32 ``xyxy`` boxes in the pixels of the image passed in.
A list of images gives a list of results in the same order. Prompts are turned into a
:class:`~audiodetic.vocabulary.Vocabulary` (``C`` unit vectors in the detector's 512-d space) by
:mod:`audiodetic.prompts`; the detector never stores it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

from audiodetic.inputs import (
    as_rgb_array,
    check_device,
    check_threshold,
    is_image_batch,
    normalize_audio_prompts,
    normalize_text_prompts,
    sequence_of_images,
)
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary, as_vocabulary

DEFAULT_DETECTOR = "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size"
DEFAULT_AUDIO_WEIGHTS = "imagebind_huge"
DEFAULT_TEXT_WEIGHTS = "clip-vit-b32"
DEFAULT_BRIDGE = "retrieval"  # chosen by measurement (README, "Which bridge"); default of bridge.default_bridge


class Deferred:
    """A component built on first use by ``factory()`` (so text-only users never load the audio tower)."""

    def __init__(self, factory: Callable[[], Any], description: str) -> None:
        self.factory = factory
        self.description = description


class _Slot:
    """Holds a component or a :class:`Deferred`; builds it once, thread-safely."""

    def __init__(self, value: Any, what: str) -> None:
        self._value = value
        self._what = what
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._value is not None

    def get(self) -> Any:
        with self._lock:
            if isinstance(self._value, Deferred):
                self._value = self._value.factory()
            if self._value is None:
                raise ValueError(f"this model has no {self._what}; load it with one to use such prompts")
            return self._value


class AudiodeticModel:
    """A detector plus the encoders that turn prompts into its class embeddings.

    Args:
        detector: an :class:`audiodetic.detector.model.Detector` (already on ``device``).
        audio_encoder: ImageBind audio encoder (or a :class:`Deferred`), needed for sound prompts.
        bridge: maps audio embeddings into the detector space (or a :class:`Deferred`).
        text_encoder: CLIP ViT-B/32 text encoder (or a :class:`Deferred`), needed for text prompts.
        device: ``"cpu"`` / ``"cuda[:i]"``; ``half``: run the detector under float16 autocast (CUDA only).
        name: a label for the model (shown by the demo).

    Thread safety: :meth:`detect` may be called from several threads; a :meth:`predictor` belongs to one caller.
    """

    def __init__(self, detector: Any, *, audio_encoder: Any = None, bridge: Any = None, text_encoder: Any = None,
                 device: str = "cpu", half: bool = False, name: str | None = None) -> None:
        self.detector = detector
        self.device = check_device(device, half=half)
        self.half = bool(half)
        self.name = name or type(detector).__name__
        self._audio_encoder = _Slot(audio_encoder, "audio encoder")
        self._bridge = _Slot(bridge, "bridge (audio -> detector space)")
        self._text_encoder = _Slot(text_encoder, "text encoder")

    def __repr__(self) -> str:
        return f"AudiodeticModel(name={self.name!r}, device={self.device!r}, half={self.half})"

    def audio_encoder(self) -> Any:
        """The audio encoder (loaded now if it was deferred)."""
        return self._audio_encoder.get()

    def text_encoder(self) -> Any:
        """The text encoder (loaded now if it was deferred)."""
        return self._text_encoder.get()

    def bridge(self) -> Any:
        """The audio -> detector-space bridge (loaded or fitted now if it was deferred)."""
        return self._bridge.get()

    @property
    def embed_dim(self) -> int:
        """Width ``D`` of the detector's class-embedding space."""
        config = getattr(self.detector, "config", None)
        return int(getattr(config, "embed_dim", 512))

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
    def vocabulary(self, audio: Any = None, text: Any = None, *, vocabulary: Any = None,
                   names: Sequence[str] | None = None) -> Vocabulary:
        """One :class:`Vocabulary` (``(C, D)`` unit rows) from sound prompts, text prompts and/or a ready vocabulary.

        Args:
            audio: sound prompts in any form :func:`audiodetic.inputs.normalize_audio_prompts` accepts, or a
                :class:`Vocabulary` (used as it is).
            text: a phrase, a list of phrases or ``{name: phrase}``.
            vocabulary: a :class:`Vocabulary`, a ``(C, D)`` array or a ``.npy``/``.npz`` file; ``names`` names
                the rows of an array or ``.npy``.

        Entries are ordered: audio prompts, then text prompts, then ``vocabulary``. Names must be unique.
        """
        parts: list[Vocabulary] = []
        if isinstance(audio, Vocabulary):
            parts.append(audio)
            audio = None
        audio_prompts = normalize_audio_prompts(audio, argument="audio prompts")
        text_prompts = normalize_text_prompts(text, argument="text prompts")
        clash = sorted(set(audio_prompts) & set(text_prompts))
        if clash:
            raise ValueError(f"prompt names must be unique; {clash} name both a sound and a text prompt")
        if audio_prompts or text_prompts:
            parts.append(self._embed_prompts(audio_prompts, text_prompts))
        if vocabulary is not None:
            parts.append(as_vocabulary(vocabulary, names=names))
        if not parts:
            raise ValueError(
                "no prompts: give at least one of audio_prompts (sound files), text_prompts or vocabulary"
            )
        result = parts[0].concat(*parts[1:]) if len(parts) > 1 else parts[0]
        result.check_compatible(dim=self.embed_dim)
        return result

    def _embed_prompts(self, audio: Mapping[str, list[Any]], text: Mapping[str, str]) -> Vocabulary:
        audio_encoder = self._audio_encoder.get() if audio else None
        # Encoders that already embed in a CLIP ViT-B/32 space (Wav2CLIP) need no bridge.
        in_clip_space = getattr(audio_encoder, "space", "").startswith("clip-vit-b32")
        bridge = self._bridge.get() if audio and self._bridge.available and not in_clip_space else None
        text_encoder = self._text_encoder.get() if text else None
        from audiodetic import prompts as prompt_lib

        specs: dict[str, Any] = {}
        for name, sources in audio.items():
            specs[name] = prompt_lib.Sound(list(sources))
        for name, phrase in text.items():
            specs[name] = prompt_lib.Text(phrase)
        return prompt_lib.build_vocabulary(specs, audio_encoder=audio_encoder, bridge=bridge,
                                           text_encoder=text_encoder)

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, image: Any, prompts: Any = None, *, text: Any = None, vocabulary: Any = None,
               score_threshold: float = 0.5, all_classes: bool = False, with_masks: bool = True,
               max_detections: int = 300, input_size: tuple[int, int] | None = None
               ) -> Detections | list[Detections]:
        """Detect the prompted things in one image or a list of images.

        Args:
            image: a path, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array, or a list of those.
            prompts: a :class:`Vocabulary` or sound prompts (see :meth:`vocabulary`); ``text``/``vocabulary`` add
                text prompts and ready embeddings.
            score_threshold: keep detections scoring above this (in ``[0, 1]``).
            all_classes: score every class per region instead of the best one; ``with_masks``: compute masks.
            input_size: ``(min_size, max_size)`` of the shortest-edge resize (default: the detector's config,
                e.g. ``(640, 640)`` for Detic's real-time setting).

        Returns:
            :class:`Detections` (boxes xyxy float32 in the image's pixels), or a list of them for a list of images.
        """
        threshold = check_threshold(score_threshold)
        batch = is_image_batch(image)
        arrays = sequence_of_images(image) if batch else [as_rgb_array(image)]
        vocab = self.vocabulary(prompts, text, vocabulary=vocabulary)
        results = []
        for array in arrays:
            with self.inference():
                encoding = self.detector.encode(array, input_size=input_size)
                results.append(self.detector.classify(
                    encoding, vocab, score_threshold=threshold, all_classes=all_classes,
                    with_masks=with_masks, max_detections=max_detections,
                ))
        return results if batch else results[0]

    def predictor(self, image: Any = None) -> "PromptPredictor":
        """A :class:`PromptPredictor` for re-prompting one image cheaply (optionally with ``image`` already set)."""
        predictor = PromptPredictor(self)
        if image is not None:
            predictor.set_image(image)
        return predictor

    def set_image(self, image: Any) -> "PromptPredictor":
        """Shorthand for ``predictor(image)``."""
        return self.predictor(image)


class PromptPredictor:
    """Encode an image once (:meth:`set_image`), then score any number of prompt sets (:meth:`predict`).

    Only the classifier, score combination, NMS and mask head run per :meth:`predict`; boxes never depend on the
    prompts. One instance serves one caller at a time (it holds the image's encoding).
    """

    def __init__(self, model: AudiodeticModel) -> None:
        from audiodetic.predictor import Predictor

        self.model = model
        self._predictor = Predictor(model.detector)

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the set image, or ``None`` before :meth:`set_image` (or after one that failed)."""
        return self._predictor.image_size if self._predictor.is_image_set else None

    def set_image(self, image: Any, *, input_size: tuple[int, int] | None = None) -> None:
        """Encode ``image`` (path, PIL or ``(H, W, 3)`` uint8 RGB) and keep the encoding."""
        array = as_rgb_array(image)
        with self.model.inference():
            self._predictor.set_image(array, input_size=input_size)

    def predict(self, prompts: Any = None, *, text: Any = None, vocabulary: Any = None,
                score_threshold: float = 0.5, **options: Any) -> Detections:
        """Detections of the set image for these prompts (same arguments as :meth:`AudiodeticModel.detect`)."""
        if self.image_size is None:
            raise ValueError("no image set: call set_image(image) before predict()")
        threshold = check_threshold(score_threshold)
        vocab = self.model.vocabulary(prompts, text, vocabulary=vocabulary)
        with self.model.inference():
            return self._predictor.predict(vocab, score_threshold=threshold, **options)


# -- loading -------------------------------------------------------------------------------------------------------
_CACHE: dict[tuple[Any, ...], AudiodeticModel] = {}
_CACHE_LOCK = threading.Lock()


def load(name_or_paths: str | os.PathLike[str] | Mapping[str, Any] | None = None, *, device: str = "cpu",
         half: bool = False, audio_weights: str | os.PathLike[str] | None = DEFAULT_AUDIO_WEIGHTS,
         text_weights: str | os.PathLike[str] | None = DEFAULT_TEXT_WEIGHTS, bridge: Any = DEFAULT_BRIDGE
         ) -> AudiodeticModel:
    """Load a detector (downloading known weights on first use) with lazily-loaded prompt encoders.

    Args:
        name_or_paths: a detector name from :func:`list_models`, a local checkpoint in an official Detic layout,
            or ``{"detector": ..., "audio": ..., "text": ..., "bridge": ...}``; ``None`` = :data:`DEFAULT_DETECTOR`.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``; ``half``: float16 autocast on CUDA.
        audio_weights: ImageBind weights (name or path), loaded at the first sound prompt; ``None`` = no sounds.
        text_weights: CLIP ViT-B/32 weights (name or path), loaded at the first text prompt; ``None`` = no text.
        bridge: ``"linear"``, ``"retrieval"``, a saved bridge file, or a bridge object.

    Known names are downloaded into the weights cache on first use (``AUDIODETIC_OFFLINE=1`` forbids it).
    """
    device = check_device(device, half=half)
    detector_name: Any = name_or_paths
    if isinstance(name_or_paths, Mapping):
        unknown = sorted(set(name_or_paths) - {"detector", "audio", "text", "bridge"})
        if unknown:
            raise ValueError(f"name_or_paths: unknown keys {unknown}; allowed: detector, audio, text, bridge")
        detector_name = name_or_paths.get("detector")
        audio_weights = name_or_paths.get("audio", audio_weights)
        text_weights = name_or_paths.get("text", text_weights)
        bridge = name_or_paths.get("bridge", bridge)
    elif name_or_paths is not None and not isinstance(name_or_paths, (str, os.PathLike)):
        raise TypeError(
            f"name_or_paths: expected a model name, a checkpoint path or a dict of them, got {type(name_or_paths).__name__}"
        )
    detector_name = DEFAULT_DETECTOR if detector_name is None else detector_name
    from audiodetic.detector.convert import load_detector

    detector = load_detector(detector_name, device=device).eval()
    model = AudiodeticModel(
        detector,
        audio_encoder=_deferred_audio(audio_weights, device),
        text_encoder=_deferred_text(text_weights, device),
        device=device, half=half, name=os.fspath(detector_name),
    )
    model._bridge = _Slot(_deferred_bridge(bridge, model, audio_weights, text_weights, device), "bridge")
    return model


def _deferred_audio(weights: Any, device: str) -> Deferred | None:
    if weights is None:
        return None

    def build() -> Any:
        if _is_wav2clip(weights):
            from audiodetic.audio.wav2clip import Wav2ClipEncoder

            return Wav2ClipEncoder.from_checkpoint(weights).to(device).eval()
        from audiodetic.audio.imagebind import ImageBindAudioEncoder

        return ImageBindAudioEncoder.from_checkpoint(weights).to(device).eval()

    return Deferred(build, f"audio encoder from {weights}")


def _is_wav2clip(weights: Any) -> bool:
    """Whether audio weights name Wav2CLIP (the table name, or a file called ``Wav2CLIP*``) rather than ImageBind."""
    return os.path.basename(os.fspath(weights)).lower().startswith("wav2clip")


def _deferred_text(weights: Any, device: str) -> Deferred | None:
    if weights is None:
        return None

    def build() -> Any:
        from audiodetic.text import ClipTextEncoder

        return ClipTextEncoder.from_checkpoint(weights, device=device)

    return Deferred(build, f"CLIP text encoder from {weights}")


def _deferred_bridge(bridge: Any, model: AudiodeticModel, audio_weights: Any, text_weights: Any,
                     device: str) -> Any:
    if bridge is None or not isinstance(bridge, (str, os.PathLike)):
        return bridge  # None or a ready bridge object

    def build() -> Any:
        from audiodetic import bridge as bridge_lib
        from audiodetic.spaces import LABEL_BANK_KINDS, is_bridge_kind

        if not is_bridge_kind(bridge):  # a saved bridge file
            if not os.path.isfile(bridge):
                raise FileNotFoundError(f"bridge: expected {' or '.join(LABEL_BANK_KINDS)} or a saved bridge file, "
                                        f"got {bridge!r}")
            return bridge_lib.load_bridge(bridge)
        if audio_weights is not None and _is_wav2clip(audio_weights):
            return None  # Wav2CLIP embeds in CLIP ViT-B/32 space already
        from audiodetic.audio.imagebind import ImageBindTextEncoder

        clip_text = model.text_encoder if text_weights is not None else None  # loaded only if the labels need it
        imagebind_text = None
        if audio_weights is not None:
            imagebind_text = ImageBindTextEncoder.from_checkpoint(audio_weights).to(device).eval()
        return bridge_lib.default_bridge(bridge, audio_encoder=model.audio_encoder(), clip_text_loader=clip_text,
                                         imagebind_text_encoder=imagebind_text)

    return Deferred(build, f"{bridge} bridge")


def _cached_model(name: Any, device: str, half: bool, bridge: Any) -> AudiodeticModel:
    key = (None if name is None else os.fspath(name), device, half, bridge if isinstance(bridge, str) else id(bridge))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = load(name, device=device, half=half, bridge=bridge)
            _CACHE[key] = model
        return model


def detect(image: Any, audio_prompts: Any = None, *, text_prompts: Any = None, vocabulary: Any = None,
           model: AudiodeticModel | str | os.PathLike[str] | None = None, score_threshold: float = 0.5,
           device: str = "cpu", bridge: Any = DEFAULT_BRIDGE, half: bool = False,
           all_classes: bool = False, with_masks: bool = True) -> Detections | list[Detections]:
    """Find the things in ``image`` that make the given sounds (and/or match the given texts).

    Args:
        image: a path, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array, or a list of those (-> list of results).
        audio_prompts: a path, a ``(waveform, sample_rate)`` pair, a list of those (named by file stem), or
            ``{name: source or [sources]}`` (several clips of one thing are averaged).
        text_prompts: a phrase, list of phrases or ``{name: phrase}``; ``vocabulary``: ready class embeddings.
        model: an :class:`AudiodeticModel`, a model name/checkpoint path, or ``None`` for the default model
            (loaded, and downloaded on first use, once per process and cached).
        score_threshold: minimum score in ``[0, 1]``; device/half/bridge: used when loading ``model``.

    Returns:
        :class:`Detections`: boxes ``(N, 4)`` float32 xyxy in the image's pixels, scores, prompt names, masks.
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        model = _cached_model(model, check_device(device, half=half), half, bridge)
    elif not isinstance(model, AudiodeticModel):
        raise TypeError(
            f"model: expected an AudiodeticModel (from audiodetic.load), a model name or a checkpoint path, "
            f"got {type(model).__name__}"
        )
    return model.detect(image, audio_prompts, text=text_prompts, vocabulary=vocabulary,
                        score_threshold=score_threshold, all_classes=all_classes, with_masks=with_masks)


def list_models(kind: str | None = "detector", *, local_only: bool = False) -> list[str]:
    """Names of known models (``kind``: ``"detector"``, ``"audio-text"`` (ImageBind), ``"text"`` (CLIP) or ``None``).

    ``local_only`` keeps only those whose weights are already in the cache (nothing is downloaded).
    """
    from audiodetic import weights

    names = []
    for name, info in weights.MODELS.items():
        if kind is not None and getattr(info, "kind", kind) != kind:
            continue
        if local_only:
            try:
                weights.resolve(name, offline=True, progress=False)
            except (FileNotFoundError, ValueError, OSError):
                continue
        names.append(name)
    return names


def clear_cache() -> None:
    """Forget the models :func:`detect` loaded (frees their memory once no one else holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


__all__ = ["AudiodeticModel", "Deferred", "PromptPredictor", "clear_cache", "detect", "list_models", "load",
           "DEFAULT_DETECTOR", "DEFAULT_AUDIO_WEIGHTS", "DEFAULT_TEXT_WEIGHTS", "DEFAULT_BRIDGE"]
