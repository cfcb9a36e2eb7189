"""Normalising the many forms a caller may give images and prompts in, with errors that name the argument.

Images become ``(H, W, 3)`` uint8 RGB numpy arrays. Sound prompts become an ordered ``{name: [source, ...]}``
mapping where each source is anything :func:`audiodetic.audio.io.load_audio` accepts (a path, encoded bytes, or a
``(waveform, sample_rate)`` pair). Text prompts become ``{name: phrase}``.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic.viz import to_pil_rgb

AUDIO_FORMS = (
    "a file path, encoded bytes, a (waveform, sample_rate) pair, a list of those, "
    "or a {name: source or [sources]} dict"
)


def as_rgb_array(image: Any, *, argument: str = "image") -> np.ndarray:
    """``image`` (path, encoded image bytes, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array) as a contiguous
    ``(H, W, 3)`` uint8 array (EXIF orientation applied to files and bytes)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        if min(image.shape[:2]) == 0:
            raise ValueError(f"{argument}: empty image of shape {image.shape}")
        return np.ascontiguousarray(image)
    return np.asarray(to_pil_rgb(image, argument=argument))


def is_image_batch(images: Any) -> bool:
    """True when ``images`` is a list/tuple of images (rather than one image)."""
    return isinstance(images, (list, tuple))


def _is_waveform_pair(value: Any) -> bool:
    if not isinstance(value, tuple) or len(value) != 2:
        return False
    waveform, rate = value
    is_array = isinstance(waveform, np.ndarray) or hasattr(waveform, "detach") or isinstance(waveform, list)
    return is_array and isinstance(rate, numbers.Real) and not isinstance(rate, bool)


def _is_single_source(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview)) or _is_waveform_pair(value)


def _check_name(name: Any, argument: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{argument}: prompt names must be non-empty strings, got {name!r}")
    return name.strip()


def _source_name(source: Any, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        stem = Path(source).stem
        if stem:
            return stem
    return f"sound_{index + 1}"


def normalize_audio_prompts(audio_prompts: Any, *, argument: str = "audio_prompts") -> dict[str, list[Any]]:
    """``{name: [sources]}`` (insertion-ordered) from any accepted form of sound prompts.

    Forms: one source (path -> its file stem as the name; bytes or a ``(waveform, sr)`` pair -> ``"sound_1"``);
    a list of sources (one prompt per source, named by stem or ``"sound_<i>"``); a ``{name: source or [sources]}``
    dict (several sources under one name are averaged into one prompt). ``None`` gives ``{}``.
    """
    if audio_prompts is None:
        return {}
    if _is_single_source(audio_prompts):
        return {_source_name(audio_prompts, 0): [audio_prompts]}
    if isinstance(audio_prompts, Mapping):
        prompts: dict[str, list[Any]] = {}
        for name, sources in audio_prompts.items():
            name = _check_name(name, argument)
            if _is_single_source(sources):
                sources = [sources]
            elif not isinstance(sources, (list, tuple)) or not sources:
                raise ValueError(
                    f"{argument}[{name!r}]: expected one audio source or a non-empty list of them "
                    f"(paths, bytes or (waveform, sample_rate) pairs), got {type(sources).__name__}"
                )
            for source in sources:
                if not _is_single_source(source):
                    raise ValueError(
                        f"{argument}[{name!r}]: {type(source).__name__} is not an audio source; use a path, bytes "
                        f"or a (waveform, sample_rate) pair"
                    )
            if name in prompts:
                raise ValueError(f"{argument}: prompt name {name!r} appears twice")
            prompts[name] = list(sources)
        if not prompts:
            raise ValueError(f"{argument}: the dict is empty; give at least one {{name: source}} entry")
        return prompts
    if isinstance(audio_prompts, (list, tuple)):
        if not audio_prompts:
            raise ValueError(f"{argument}: the list is empty; give at least one sound")
        prompts = {}
        for index, source in enumerate(audio_prompts):
            if not _is_single_source(source):
                raise ValueError(
                    f"{argument}[{index}]: {type(source).__name__} is not an audio source; expected {AUDIO_FORMS}"
                )
            name = _source_name(source, index)
            if name in prompts:
                raise ValueError(
                    f"{argument}: two files have the stem {name!r}; name them with a dict, e.g. "
                    f"{{'{name}': [file1, file2]}} to average them or {{'a': file1, 'b': file2}}"
                )
            prompts[name] = [source]
        return prompts
    raise TypeError(f"{argument}: expected {AUDIO_FORMS}; got {type(audio_prompts).__name__}")


def normalize_text_prompts(text_prompts: Any, *, argument: str = "text_prompts") -> dict[str, str]:
    """``{name: phrase}`` from a phrase, a list of phrases (each its own name) or a ``{name: phrase}`` dict."""
    if text_prompts is None:
        return {}
    if isinstance(text_prompts, str):
        text_prompts = [text_prompts]
    if isinstance(text_prompts, Mapping):
        items = [(_check_name(k, argument), v) for k, v in text_prompts.items()]
    elif isinstance(text_prompts, (list, tuple)):
        items = [(_check_name(v, argument), v) for v in text_prompts]
    else:
        raise TypeError(
            f"{argument}: expected a phrase, a list of phrases or a {{name: phrase}} dict; "
            f"got {type(text_prompts).__name__}"
        )
    prompts: dict[str, str] = {}
    for name, phrase in items:
        if not isinstance(phrase, str) or not phrase.strip():
            raise ValueError(f"{argument}[{name!r}]: the phrase must be a non-empty string, got {phrase!r}")
        if name in prompts:
            raise ValueError(f"{argument}: prompt name {name!r} appears twice")
        prompts[name] = phrase.strip()
    if not prompts:
        raise ValueError(f"{argument}: empty; give at least one phrase")
    return prompts


def check_threshold(value: Any, *, argument: str = "score_threshold") -> float:
    """A score threshold in ``[0, 1]`` as float."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{argument} must lie in [0, 1], got {threshold}")
    return threshold


def check_device(device: Any, *, half: bool = False) -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:<i>"`` after checking the device exists (and that ``half`` fits it)."""
    import torch

    name = str(device)
    try:
        parsed = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if half and parsed.type != "cuda":
        raise ValueError("half=True needs a CUDA device (float16 inference); use half=False on the CPU")
    return name


def sequence_of_images(images: Sequence[Any], *, argument: str = "image") -> list[np.ndarray]:
    """Each image of a batch as an ``(H, W, 3)`` uint8 array; errors name the index."""
    if not images:
        raise ValueError(f"{argument}: the list of images is empty")
    return [as_rgb_array(image, argument=f"{argument}[{i}]") for i, image in enumerate(images)]
