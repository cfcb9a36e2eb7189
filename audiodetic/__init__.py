"""audiodetic: find and segment the things in a picture that make a given sound.

Public names are imported lazily so that ``import audiodetic`` stays cheap (no torch, no gradio) until a name
that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "detect": "audiodetic.api",
    "detect_video": "audiodetic.video.pipeline",
    "load": "audiodetic.api",
    "list_models": "audiodetic.api",
    "AudiodeticModel": "audiodetic.model",
    "draw": "audiodetic.viz",
    "Predictor": "audiodetic.model",
    "Detections": "audiodetic.structures",
    "Vocabulary": "audiodetic.vocabulary",
    "DETECTOR_SPACE": "audiodetic.spaces",
    "AudiodeticError": "audiodetic.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'audiodetic' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
