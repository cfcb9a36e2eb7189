"""Shared helpers of the surface tests (API, CLI, demo): tiny random-weight models and synthetic media.

A helper module (``tests/helpers/`` is on pytest's ``pythonpath``), imported by the API, CLI, demo and plugin
tests.
"""

from __future__ import annotations

import functools
import wave
from pathlib import Path
from typing import Any

import numpy as np


def tiny_detector(seed: int = 0) -> Any:
    """A ``DetectorConfig.tiny()`` detector loaded from random weights in the official Detic key layout, with
    calibrated statistics (so boxes and masks look like detections), in eval mode on the CPU."""
    from audiodetic.detector.convert import load_detector
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict

    return load_detector(make_detic_state_dict("tiny", seed=seed)).eval()


def tiny_audio_encoder(seed: int = 0) -> Any:
    """A random-weight tiny ImageBind audio tower."""
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

    return ImageBindAudioEncoder.tiny(seed=seed).eval()


def tiny_model(seed: int = 0, *, detector: Any = None) -> Any:
    """An :class:`~audiodetic.model.AudiodeticModel` of tiny random parts: detector, audio tower, bridge, text."""
    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.model import AudiodeticModel, Deferred

    audio = tiny_audio_encoder(seed)
    bridge = LinearBridge.random(audio_output_dim(audio), 512, seed=seed)
    return AudiodeticModel(
        detector if detector is not None else tiny_detector(seed),
        audio_encoder=audio,
        bridge=bridge,
        text_encoder=Deferred(lambda: ClipTextEncoder.tiny(seed=seed), "tiny CLIP text encoder"),
        name="tiny-random",
    )


@functools.lru_cache(maxsize=None)
def shared_tiny_model(seed: int = 0) -> Any:
    """One :func:`tiny_model` per seed for the whole test process (tests must not change it permanently)."""
    return tiny_model(seed)


def audio_output_dim(encoder: Any) -> int:
    """Width of an audio encoder's embeddings."""
    for attribute in ("output_dim", "embed_dim", "dim", "out_dim"):
        value = getattr(encoder, attribute, None)
        if isinstance(value, int):
            return value
    config = getattr(encoder, "config", None)
    for attribute in ("output_dim", "out_dim", "embed_dim"):
        value = getattr(config, attribute, None)
        if isinstance(value, int):
            return value
    raise AttributeError(f"cannot tell the output width of {type(encoder).__name__}")


def scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """A synthetic ``(H, W, 3)`` uint8 RGB picture: a textured background with a few coloured shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                      np.full_like(xx, 90)], -1).astype(np.float32)
    image += rng.normal(0, 12, image.shape)
    image[height // 5: height // 2, width // 8: width // 3] = (220, 40, 40)
    cy, cx, r = int(height * 0.65), int(width * 0.7), min(height, width) // 5
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (40, 60, 230)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_tone(path: str | Path, frequency: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000,
               channels: int = 1) -> Path:
    """Write a 16-bit PCM WAV tone (with a little noise so it is not a pure sinusoid) and return its path."""
    path = Path(path)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(frequency))
    signal = 0.5 * np.sin(2 * np.pi * frequency * t) + 0.02 * rng.normal(size=t.shape)
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    pcm = np.repeat(pcm[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return path


class EncodeCounter:
    """Wraps ``detector.encode`` to count calls (the demo must encode each image once)."""

    def __init__(self, detector: Any) -> None:
        self.calls = 0
        self._encode = detector.encode

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self._encode(*args, **kwargs)

        detector.encode = counted
