"""The Python entry points: :func:`detect` (one call), :func:`load` (a reusable
:class:`~audiodetic.model.AudiodeticModel`) and :func:`list_models`.

Frames and types: images are paths, ``PIL.Image`` objects or ``(H, W, 3)`` uint8 RGB arrays; results are
:class:`~audiodetic.structures.Detections` with float32 ``xyxy`` boxes in the pixels of the image passed in.
A list of images gives a list of results in the same order. Encoders are loaded on first use (a text-only user
never reads ImageBind), and known model files are downloaded into the weights cache on first use.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping

from audiodetic import status
from audiodetic.errors import InputError, InputTypeError
from audiodetic.inputs import check_device
from audiodetic.model import AudiodeticModel, Deferred, Predictor
from audiodetic.structures import Detections

DEFAULT_DETECTOR = "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size"
DEFAULT_AUDIO_WEIGHTS = "imagebind_huge"
DEFAULT_TEXT_WEIGHTS = "clip-vit-b32"
DEFAULT_BRIDGE = "retrieval"  # chosen by measurement (README, "Which bridge"); default of bridge.default_bridge


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
        text_weights: CLIP ViT-B/32 weights (name or path), loaded at the first text or image prompt (its text
            and image towers); ``None`` = no text or image prompts.
        bridge: a bridge kind (:data:`audiodetic.spaces.BRIDGE_KINDS`), a saved bridge file, or a bridge object.

    Known names are downloaded into the weights cache on first use (``AUDIODETIC_OFFLINE=1`` forbids it).
    """
    device = check_device(device, half=half)
    detector_name: Any = name_or_paths
    if isinstance(name_or_paths, Mapping):
        unknown = sorted(set(name_or_paths) - {"detector", "audio", "text", "bridge"})
        if unknown:
            raise InputError(f"name_or_paths: unknown keys {unknown}; allowed: detector, audio, text, bridge")
        detector_name = name_or_paths.get("detector")
        audio_weights = name_or_paths.get("audio", audio_weights)
        text_weights = name_or_paths.get("text", text_weights)
        bridge = name_or_paths.get("bridge", bridge)
    elif name_or_paths is not None and not isinstance(name_or_paths, (str, os.PathLike)):
        raise InputTypeError(f"name_or_paths: expected a model name, a checkpoint path or a dict of them, got "
                             f"{type(name_or_paths).__name__}")
    detector_name = DEFAULT_DETECTOR if detector_name is None else detector_name
    from audiodetic.detector.convert import load_detector

    with status.step(f"loading the detector {os.fspath(detector_name)}"):
        detector = load_detector(detector_name, device=device).eval()
    model = AudiodeticModel(
        detector,
        audio_encoder=_deferred_audio(audio_weights, device),
        text_encoder=_deferred(text_weights, "text", device),
        image_encoder=_deferred(text_weights, "image", device),
        device=device, half=half, name=os.fspath(detector_name),
    )
    model.set_bridge(_deferred_bridge(bridge, model, audio_weights, text_weights, device))
    return model


def _deferred_audio(weights: Any, device: str) -> Deferred | None:
    if weights is None:
        return None

    def build() -> Any:
        if _is_wav2clip(weights):
            from audiodetic.encoders.audio.wav2clip import Wav2ClipEncoder

            return Wav2ClipEncoder.from_checkpoint(weights).to(device).eval()
        from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

        return ImageBindAudioEncoder.from_checkpoint(weights).to(device).eval()

    return Deferred(build, f"audio encoder from {weights}")


def _is_wav2clip(weights: Any) -> bool:
    """Whether audio weights name Wav2CLIP (the table name, or a file called ``Wav2CLIP*``) rather than ImageBind."""
    return os.path.basename(os.fspath(weights)).lower().startswith("wav2clip")


def _deferred(weights: Any, tower: str, device: str) -> Deferred | None:
    """The CLIP ViT-B/32 ``tower`` (``"text"`` or ``"image"``) read from ``weights`` on first use, or ``None``
    without weights. Each tower reads only its own tensors when it is first needed: a text-only model never
    holds the vision tower (the file is read a second time only when both kinds of prompt are used)."""
    if weights is None:
        return None

    def build() -> Any:
        if tower == "text":
            from audiodetic.encoders.clip_text import ClipTextEncoder

            return ClipTextEncoder.from_checkpoint(weights, device=device)
        from audiodetic.encoders.clip_image import ClipImageEncoder

        return ClipImageEncoder.from_checkpoint(weights, device=device)

    return Deferred(build, f"CLIP {tower} encoder from {weights}")


def _deferred_bridge(bridge: Any, model: AudiodeticModel, audio_weights: Any, text_weights: Any,
                     device: str) -> Any:
    """``bridge`` as it is when it is ``None`` or a ready object; else a :class:`Deferred` that loads the saved
    file or fits the kind (via :func:`audiodetic.bridge.default_bridge`) once the model's audio encoder is
    needed. The spec is checked now, so a bad kind or a missing file fails at load."""
    if bridge is None or not isinstance(bridge, (str, os.PathLike)):
        return bridge  # None or a ready bridge object
    from audiodetic.bridge.files import check_bridge_to_use

    spec = check_bridge_to_use(bridge)  # a bad kind or a missing file fails at load, not at the first sound

    def build() -> Any:
        from audiodetic import bridge as bridge_lib
        from audiodetic.spaces import needs_bridge

        audio_encoder = model.audio_encoder()  # raises when the model has none (audio_weights=None): no sounds
        if isinstance(spec, Path):
            return bridge_lib.default_bridge(spec, audio_encoder=audio_encoder)  # checks the file's input width
        if not needs_bridge(audio_encoder.space):
            return None  # this encoder's sounds are in the detector's space already (Wav2CLIP): nothing to fit
        from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

        imagebind_text = ImageBindTextEncoder.from_checkpoint(audio_weights).to(device).eval()
        clip_text = model.text_encoder if text_weights is not None else None  # loaded only if the labels need it
        return bridge_lib.default_bridge(spec, audio_encoder=audio_encoder, clip_text_loader=clip_text,
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


def detect(image: Any, audio_prompts: Any = None, *, text_prompts: Any = None, image_prompts: Any = None,
           vocabulary: Any = None, model: AudiodeticModel | str | os.PathLike[str] | None = None,
           score_threshold: float = 0.5, device: str = "cpu", bridge: Any = DEFAULT_BRIDGE, half: bool = False,
           all_classes: bool = False, with_masks: bool = True, max_image_pixels: int | None = None
           ) -> Detections | list[Detections]:
    """Find the things in ``image`` that make the given sounds (and/or match the given texts).

    Args:
        image: a path, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array, or a list of those (-> list of results).
        audio_prompts: a path, a ``(waveform, sample_rate)`` pair, a list of those (named by file stem), or
            ``{name: source or [sources]}`` (several clips of one thing are averaged).
        text_prompts: a phrase, list of phrases or ``{name: phrase}``; ``image_prompts``: ``{name: picture(s)}``;
            ``vocabulary``: ready class embeddings.
        model: an :class:`AudiodeticModel`, a model name/checkpoint path, or ``None`` for the default model
            (loaded, and downloaded on first use, once per process and cached).
        score_threshold: minimum score in ``[0, 1]``; device/half/bridge: used when loading ``model``.
        max_image_pixels: refuse image files above this many pixels (a guard against decompression bombs;
            default ``$AUDIODETIC_MAX_IMAGE_PIXELS`` or about 179 million).

    Returns:
        :class:`Detections`: boxes ``(N, 4)`` float32 xyxy in the image's pixels, scores, prompt names, masks.
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        model = _cached_model(model, check_device(device, half=half), half, bridge)
    elif not isinstance(model, AudiodeticModel):
        raise InputTypeError(f"model: expected an AudiodeticModel (from audiodetic.load), a model name or a "
                             f"checkpoint path, got {type(model).__name__}")
    return model.detect(image, audio_prompts, text_prompts=text_prompts, image_prompts=image_prompts,
                        vocabulary=vocabulary, score_threshold=score_threshold, all_classes=all_classes,
                        with_masks=with_masks, max_image_pixels=max_image_pixels)


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


__all__ = ["AudiodeticModel", "Deferred", "Predictor", "clear_cache", "detect", "list_models", "load",
           "DEFAULT_DETECTOR", "DEFAULT_AUDIO_WEIGHTS", "DEFAULT_TEXT_WEIGHTS", "DEFAULT_BRIDGE"]
