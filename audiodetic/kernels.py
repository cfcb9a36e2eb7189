"""Faster CPU kernels for the detector and the audio tower (same parameters, same results within float rounding).

Three kernels, each falling back to the plain operator when it does not suit (GPU, autograd, other dtypes):

* ``Conv3x3``: an ``nn.Conv2d`` (identical state-dict keys and shapes) whose forward runs NNPACK's Winograd
  convolution (``torch._nnpack_spatial_convolution``, shipped with every CPU build of torch) instead of oneDNN's
  direct convolution: float32 NCHW inputs, stride 1, padding 1, and either one image of at least ``MIN_PIXELS``
  positions (backbone stages, P3/P4 of the pyramid) or a batch of at least ``MIN_BATCH`` (the mask head's
  ``(M, 256, 14, 14)`` regions). Measured on one core of the project machine it takes 0.5-0.8x oneDNN's time on
  those shapes; smaller maps (P5-P7) keep oneDNN, which is as fast there.
* ``linear``: ``F.linear`` through oneDNN's inner product (``torch.ops.mkldnn._linear_pointwise``) with the bias,
  a ReLU/GELU or a residual sum fused into the same pass. torch sends float32 ``F.linear``/``mm`` to MKL, and MKL
  runs its AVX2 code on AMD processors (the project machine: ~90 GFLOP/s per core), while oneDNN picks its kernels
  by instruction set (AVX-512 there: ~195 GFLOP/s). Used by every Swin and ImageBind linear layer, the cascade's
  box heads and the mask head's upsampling GEMM.
* ``Conv1x1``/``conv1x1``: a stride-1 1x1 convolution of one NCHW image as the oneDNN GEMM ``W (O, C) @ X (C, HW)``,
  whose result is already NCHW. torch runs single-threaded 1x1 convolutions through im2col + MKL, and oneDNN's
  NCHW convolution reorders large maps to blocked layouts and back; the GEMM takes about half their time here.

Numerics: Winograd transforms and a different GEMM blocking round differently from upstream's kernels; one layer's
outputs change by ~1e-6-1e-5 relative (the order of each kernel's own error against float64). End to end against
upstream Detic (``tests/upstream/test_parity.py``) boxes, scores and masks stay within the parity tolerances, and
single boundary pixels of tiny masks may flip at the 0.5 threshold (the parity test tolerates <= 2 such pixels).
``AUDIODETIC_NNPACK=0`` switches all three off: every layer then runs the operator upstream runs, and R50 boxes and
scores are bit-identical to upstream's (only the mask head's deconv-as-GEMM rounds differently, ~1e-8).

Threads: torch creates NNPACK's thread pool once, on its first call, with ``torch.get_num_threads()`` threads and
never resizes it. This module records the thread count of its own first call and uses NNPACK only while the
current setting is at least that many, so it never runs on more threads than the caller allowed (a process that
raises its thread count later simply keeps NNPACK's smaller pool). oneDNN uses torch's OpenMP threads.
"""

from __future__ import annotations

import os
import threading

import torch
import torch.nn.functional as F
from torch import nn

from audiodetic.errors import InputError

__all__ = [
    "MIN_BATCH", "MIN_GEMM_MACS", "MIN_PIXELS", "Conv1x1", "Conv3x3", "conv1x1", "conv3x3", "fast_kernels_enabled",
    "gemm", "linear", "multihead_attention", "nnpack_enabled", "onednn_suits",
]

MIN_PIXELS = 1500
MIN_BATCH = 16
MIN_GEMM_MACS = 1 << 22  # below ~4 M multiply-adds MKL's call overhead is lower than oneDNN's
_ACTIVATIONS = ("none", "relu", "gelu")

_lock = threading.Lock()
_state: dict[str, int | bool | None] = {"available": None, "pool_threads": None, "onednn": None}


def fast_kernels_enabled() -> bool:
    """False when ``AUDIODETIC_NNPACK`` is ``0``/``false``/``no``/``off``: every layer then runs upstream's operator."""
    return os.environ.get("AUDIODETIC_NNPACK", "1").strip().lower() not in ("0", "false", "no", "off")


def nnpack_enabled() -> bool:
    """Whether ``Conv3x3`` may use NNPACK now (available, not disabled, pool no larger than the thread setting)."""
    if not fast_kernels_enabled():
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


def _onednn_available() -> bool:
    if _state.get("onednn") is None:
        op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
        _state["onednn"] = bool(op is not None and torch.backends.mkldnn.is_available())
    return bool(_state["onednn"])


def onednn_suits(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``linear(x, weight)`` runs on oneDNN: float32 CPU tensors, no autograd, a GEMM worth it, not disabled."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32 or weight.dim() != 2:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    if x.numel() // max(weight.shape[1], 1) * weight.numel() < MIN_GEMM_MACS:
        return False
    return fast_kernels_enabled() and _onednn_available()


def linear(
    layer: nn.Linear, x: torch.Tensor, *, activation: str = "none", residual: torch.Tensor | None = None
) -> torch.Tensor:
    """``activation(layer(x))`` or ``layer(x) + residual``: :func:`gemm` with the layer's weight and bias."""
    return gemm(x, layer.weight, layer.bias, activation=activation, residual=residual)


def gemm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    activation: str = "none",
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``activation(F.linear(x, weight, bias))`` or ``F.linear(x, weight, bias) + residual``.

    ``x``: ``(..., K)``; ``weight``: ``(N, K)``; ``bias``: ``(N,)``; returns ``(..., N)``. ``activation`` is
    ``"none"``, ``"relu"`` or ``"gelu"`` (exact erf form, as ``F.gelu``); ``residual`` has the output's shape and
    cannot be combined with an activation. On oneDNN (see module) bias, activation and sum are fused into the GEMM;
    otherwise this is ``F.linear`` followed by the in-place activation / sum (out of place when autograd records),
    i.e. the same operators and values as the unfused module code.
    """
    if activation not in _ACTIVATIONS:
        raise InputError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    if residual is not None and activation != "none":
        raise InputError("gemm fuses either an activation or a residual sum, not both")
    recording = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
        or (residual is not None and residual.requires_grad))
    if not recording and onednn_suits(x, weight) and (residual is None or residual.dtype == torch.float32):
        if residual is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, activation, [], "none" if activation == "gelu" else "")
    y = F.linear(x, weight, bias)
    if activation == "relu":
        return torch.relu(y) if recording else y.relu_()
    if activation == "gelu":
        return F.gelu(y) if recording else torch.ops.aten.gelu_(y)
    if residual is not None:
        return y + residual if recording else y.add_(residual)
    return y


def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 1x1, unpadded, ungrouped ``conv``; one float32 NCHW CPU image goes to oneDNN.

    ``x``: ``(B, C, H, W)``; returns ``(B, O, ceil(H / s), ceil(W / s))`` for stride ``s``. A stride first keeps
    every ``s``-th row and column (the only positions a 1x1 kernel reads). The GEMM ``W (O, C) @ X (C, h*w)`` is
    handed to oneDNN as ``linear(input=W, weight=X^T)``, so its output is laid out NCHW with no transposition;
    the bias is added after.
    """
    batch, channels = x.shape[:2]
    stride = conv.stride
    suits = (batch == 1 and x.dim() == 4 and conv.groups == 1 and conv.padding == (0, 0) and conv.dilation == (1, 1)
             and conv.kernel_size == (1, 1) and conv.padding_mode == "zeros" and x.is_contiguous()
             and onednn_suits(x, conv.weight.view(conv.out_channels, channels)))
    if not suits:
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    if stride != (1, 1):
        x = x[:, :, :: stride[0], :: stride[1]].contiguous()
    height, width = x.shape[-2:]
    weight = conv.weight.view(conv.out_channels, channels)
    out = torch.ops.mkldnn._linear_pointwise(weight, x.view(channels, height * width).t(), None, "none", [], "")
    out = out.view(1, conv.out_channels, height, width)
    return out if conv.bias is None else out.add_(conv.bias.view(-1, 1, 1))


class Conv1x1(nn.Conv2d):
    """``nn.Conv2d(in, out, 1, stride)`` (same parameters and keys) whose forward prefers the oneDNN GEMM (see module)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv1x1(self, x)


def multihead_attention(
    attn: nn.MultiheadAttention, x: torch.Tensor, *, attn_mask: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """Self-attention ``attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]`` (``+ residual``).

    ``x``: sequence-first ``(L, B, D)`` (``batch_first=False``, packed ``in_proj_weight``); ``attn_mask``: float
    ``(L, L)`` added to the logits; returns ``(L, B, D)``. On oneDNN the in/out projections are :func:`gemm` calls
    (the residual fused into the second) around ``F.scaled_dot_product_attention``, with ``bias_k``/``bias_v``
    appended as one extra key/value position and the mask padded with a zero column for it, as the module does;
    otherwise the module itself runs.
    """
    usable = not attn.batch_first and not attn.training and attn._qkv_same_embed_dim and x.dim() == 3
    if not (usable and onednn_suits(x, attn.in_proj_weight)):
        out = attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
        return out if residual is None else residual + out
    length, batch, dim = x.shape
    heads = attn.num_heads
    q, k, v = gemm(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    if attn.bias_k is not None and attn.bias_v is not None:
        k = torch.cat([k, attn.bias_k.expand(1, batch, dim)])
        v = torch.cat([v, attn.bias_v.expand(1, batch, dim)])
        if attn_mask is not None:
            attn_mask = F.pad(attn_mask, (0, 1))

    def heads_first(t: torch.Tensor) -> torch.Tensor:  # (L, B, D) -> (B, heads, L, D / heads)
        return t.reshape(t.shape[0], batch, heads, dim // heads).permute(1, 2, 0, 3)

    out = F.scaled_dot_product_attention(heads_first(q), heads_first(k), heads_first(v), attn_mask=attn_mask)
    out = out.permute(2, 0, 1, 3).reshape(length, batch, dim)
    return gemm(out, attn.out_proj.weight, attn.out_proj.bias, residual=residual)
