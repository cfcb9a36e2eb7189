"""Faster CPU kernels for the detector's 3x3 convolutions (same parameters, same results within float rounding).

``Conv3x3`` is an ``nn.Conv2d`` (identical state-dict keys and shapes) whose forward runs NNPACK's Winograd
convolution (``torch._nnpack_spatial_convolution``, shipped with every CPU build of torch) instead of oneDNN's
direct convolution when that is faster: float32 NCHW inputs on CPU, stride 1, padding 1, no grad, and either one
image of at least ``MIN_PIXELS`` positions (backbone stages, P3/P4 of the pyramid) or a batch of at least
``MIN_BATCH`` (the mask head's ``(M, 256, 14, 14)`` regions). Measured on one core of the project machine it
takes 0.3-0.45x oneDNN's time on those shapes; smaller maps (P5-P7) keep oneDNN, which is as fast there.

Used by: the ResNet bottlenecks' stride-1 3x3 convs, the FPN output convs, the CenterNet bbox tower and the mask
head's four convs. Numerics: Winograd transforms round differently from a direct convolution; one layer's outputs
change by ~1e-5 relative (the order of oneDNN's own error against float64). End to end against upstream Detic
(``tests/upstream/test_parity.py``, R50 800x1067): boxes <= 2.5e-3 px, scores <= 7e-6 — the size of upstream's own
1-vs-2-thread differences (2.8e-3 px) — and single boundary pixels of tiny (60-140 px) masks may flip at the
0.5 threshold (the parity test tolerates <= 2 such pixels). ``AUDIODETIC_NNPACK=0`` gives boxes and scores
bit-identical to upstream (oneDNN everywhere; only the mask head's deconv GEMM rounds differently, ~1e-8).

Threads: torch creates NNPACK's thread pool once, on its first call, with ``torch.get_num_threads()`` threads and
never resizes it. This module records the thread count of its own first call and uses NNPACK only while the
current setting is at least that many, so it never runs on more threads than the caller allowed (a process that
raises its thread count later simply keeps NNPACK's smaller pool). ``AUDIODETIC_NNPACK=0`` disables the path.
"""

from __future__ import annotations

import os
import threading

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MIN_BATCH", "MIN_PIXELS", "Conv3x3", "conv3x3", "nnpack_enabled"]

MIN_PIXELS = 1500
MIN_BATCH = 16

_lock = threading.Lock()
_state: dict[str, int | bool | None] = {"available": None, "pool_threads": None}


def nnpack_enabled() -> bool:
    """Whether ``Conv3x3`` may use NNPACK now (available, not disabled, pool no larger than the thread setting)."""
    if os.environ.get("AUDIODETIC_NNPACK", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _state["available"] is None:
        with _lock:
            if _state["available"] is None:
                try:
                    _state["available"] = bool(torch._nnpack_available())  # also initialises the library
                except (AttributeError, RuntimeError):
                    _state["available"] = False
    if not _state["available"]:
        return False
    pool = _state["pool_threads"]
    return pool is None or pool <= torch.get_num_threads()


def _nnpack_suits(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or conv.weight.dtype != torch.float32:
        return False
    if conv.groups != 1 or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.padding != (1, 1):
        return False
    if conv.padding_mode != "zeros" or conv.kernel_size != (3, 3):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad):
        return False
    batch, _, height, width = x.shape
    large = (batch == 1 and height * width >= MIN_PIXELS) or batch >= MIN_BATCH
    return large and x.is_contiguous() and nnpack_enabled()


def conv3x3(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 3x3/stride-1/padding-1 ``conv``, through NNPACK when it suits (see module docstring)."""
    if not _nnpack_suits(x, conv):
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    bias = conv.bias if conv.bias is not None else _zero_bias(conv)
    with _lock:  # one shared workspace and pool inside torch's NNPACK glue
        if _state["pool_threads"] is None:
            _state["pool_threads"] = torch.get_num_threads()
        try:
            return torch._nnpack_spatial_convolution(x, conv.weight.contiguous(), bias, [1, 1])
        except RuntimeError:
            _state["available"] = False  # unexpected failure: never try again in this process
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _zero_bias(conv: nn.Conv2d) -> torch.Tensor:
    cached = getattr(conv, "_zero_bias_cache", None)
    if cached is None or cached.shape[0] != conv.out_channels or cached.device != conv.weight.device:
        with torch.inference_mode(False):  # a normal tensor, usable inside and outside inference mode
            cached = torch.zeros(conv.out_channels, dtype=conv.weight.dtype, device=conv.weight.device)
        conv._zero_bias_cache = cached  # type: ignore[assignment]
    return cached


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in, out, 3, padding=1)`` (same parameters and keys) whose forward prefers NNPACK (see module)."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3x3(self, x)
