"""Options as users hand them in - thresholds, sizes, counts, devices - each with one rule and one message, used
by the API, the detector, the CLI and the demo alike."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audiodetic.errors import InputError


def check_threshold(value: Any, *, argument: str = "score_threshold") -> float:
    """A score threshold in ``[0, 1]`` as float (detections must score strictly above it, so ``1.0`` keeps none)."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{argument} must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise InputError(f"{argument} must be a number in [0, 1], got {value!r}")
    return threshold


def check_positive_int(value: Any, *, argument: str) -> int:
    """A positive integer (``bool`` is refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{argument} must be a positive integer, got {value!r}")
    return int(value)


def check_input_size(input_size: Any, *, argument: str = "input_size") -> tuple[int, int]:
    """``(min_size, max_size)`` of the shortest-edge resize: two positive whole numbers."""
    valid = input_size is not None and not isinstance(input_size, (str, bytes))
    try:
        min_size, max_size = (int(v) for v in input_size)
        valid = valid and all(float(v) == int(v) for v in input_size)
    except (TypeError, ValueError):
        valid = False
    if not valid or min_size <= 0 or max_size <= 0:
        raise InputError(f"{argument} must be two positive integers (min_size, max_size), got {input_size!r}")
    return min_size, max_size


def parse_input_size(text: str | None, *, argument: str = "--input-size") -> tuple[int, int] | None:
    """``"800,1333"`` -> ``(800, 1333)`` (``"640,640"`` is fine: the two sizes may be equal); ``None`` stays
    ``None``."""
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 2:
        raise InputError(f"{argument} must be MIN,MAX (two positive integers, e.g. 800,1333), got {text!r}")
    return check_input_size(sizes, argument=argument)


def check_device(device: Any, *, half: bool = False) -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:<i>"`` after checking the device exists (and that ``half`` fits it)."""
    import torch

    name = str(device)
    try:
        parsed = torch.device(name)
    except RuntimeError:
        raise InputError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device={device!r} but CUDA is not available here; use device='cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if half and parsed.type != "cuda":
        raise InputError("half=True needs a CUDA device (float16 inference); use half=False on the CPU")
    return name
