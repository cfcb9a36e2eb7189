"""Media and reference helpers for the audio tests (signals are made here, nothing is downloaded)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def tone(seconds: float, rate: int, channels: int = 1, *, seed: int = 0, freq: float = 440.0) -> np.ndarray:
    """A chirp-ish tone plus noise: float32 ``(samples, channels)`` in [-1, 1], channel c scaled by (1 + c) / 2."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 1234.0 * t**1.1)
    mono = mono + 0.05 * rng.standard_normal(t.shape)
    return np.stack([mono * (1 + c) / 2 for c in range(channels)], axis=1).astype(np.float32)


def optional_torchaudio() -> Any:
    """torchaudio if it imports (it is only a reference for tests), else skip."""
    try:
        import torchaudio
        import torchaudio.compliance.kaldi  # noqa: F401
        import torchaudio.functional  # noqa: F401
    except Exception as err:  # a broken binary install raises OSError, not ImportError
        pytest.skip(f"torchaudio unavailable: {err}")
    return torchaudio
