"""The machinery ImageBind's audio and text towers share: configurations, the pre-LN transformer block, the map
from our parameter names to the released ``imagebind_huge`` keys, and loading one tower out of the whole file.

Key names of the released file appear only in :func:`checkpoint_key_map`. :meth:`Tower.from_checkpoint` reads only
its own tensors out of an ``imagebind_huge``-layout file (memory-mapped, then copied), so peak memory stays near
twice one tower's size instead of the whole model's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from audiodetic.errors import CheckpointError, InputError
from audiodetic.kernels import linear, multihead_attention

LN_EPS = 1e-6
MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class AudioTowerConfig:
    """Audio tower hyperparameters. Input ``(N, 1, mel_bins, frames)`` -> ``(N, out_dim)`` per clip."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    patch_size: int = 16
    patch_stride: int = 10
    mel_bins: int = 128
    frames: int = 204
    out_dim: int = 1024
    logit_scale: float = 20.0

    @classmethod
    def huge(cls) -> "AudioTowerConfig":
        """The audio tower of released ``imagebind_huge`` (85.8 M parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> "AudioTowerConfig":
        """A small random tower for tests (same input and token grid, 2 blocks of width 128, 64-d output)."""
        return cls(embed_dim=128, depth=2, num_heads=2, out_dim=64)

    @property
    def num_tokens(self) -> int:
        """1 CLS token + the patch grid (12 x 19 = 228 for 128 x 204 inputs)."""
        rows = (self.mel_bins - self.patch_size) // self.patch_stride + 1
        cols = (self.frames - self.patch_size) // self.patch_stride + 1
        return 1 + rows * cols


@dataclass(frozen=True)
class TextTowerConfig:
    """Text tower hyperparameters. Input token ids ``(B, context_length)`` int64 -> ``(B, out_dim)``."""

    width: int = 1024
    depth: int = 24
    num_heads: int = 16
    context_length: int = 77
    vocab_size: int = 49408
    out_dim: int = 1024

    @classmethod
    def huge(cls) -> "TextTowerConfig":
        """The text tower of released ``imagebind_huge`` (OpenCLIP ViT-H-14 text encoder, 354 M parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TextTowerConfig":
        """A small random tower for tests (full BPE vocabulary, 2 blocks of width 128, 64-d output)."""
        return cls(width=128, depth=2, num_heads=2, out_dim=64)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return linear(self.fc2, linear(self.fc1, x, activation="gelu"), residual=residual)  # (+ residual)


class Block(nn.Module):
    """``x + attn(LN(x))`` then ``x + mlp(LN(x))`` on sequence-first tokens ``(L, B, D)``."""

    def __init__(self, dim: int, num_heads: int, *, bias_kv: bool) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = nn.MultiheadAttention(dim, num_heads, bias=True, add_bias_kv=bias_kv)
        self.norm_2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = _Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = multihead_attention(self.attn, self.norm_1(x), attn_mask=attn_mask, residual=x)  # oneDNN GEMMs on CPU
        return self.mlp(self.norm_2(x), residual=x)


def checkpoint_key_map(modality: str, depth: int) -> dict[str, str]:
    """Our parameter name -> key in the released ``imagebind_huge`` state dict, for ``"audio"`` or ``"text"``."""
    block_params = [
        "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
        "norm_1.weight", "norm_1.bias", "norm_2.weight", "norm_2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    ]
    if modality == "audio":
        block_params += ["attn.bias_k", "attn.bias_v"]
        pre, head = "modality_preprocessors.audio.", "modality_heads.audio."
        mapping = {
            "cls_token": pre + "cls_token",
            "patch_embed.weight": pre + "rgbt_stem.proj.weight",
            "patch_norm.weight": pre + "rgbt_stem.norm_layer.weight",
            "patch_norm.bias": pre + "rgbt_stem.norm_layer.bias",
            "pos_embed": pre + "pos_embedding_helper.pos_embed",
            "head_norm.weight": head + "0.weight",
            "head_norm.bias": head + "0.bias",
            "head_proj.weight": head + "2.weight",
            "log_logit_scale": "modality_postprocessors.audio.1.log_logit_scale",
        }
    elif modality == "text":
        pre, head = "modality_preprocessors.text.", "modality_heads.text.proj."
        mapping = {
            "token_embedding.weight": pre + "token_embedding.weight",
            "pos_embed": pre + "pos_embed",
            "causal_mask": pre + "mask",
            "head_norm.weight": head + "0.weight",
            "head_norm.bias": head + "0.bias",
            "head_proj.weight": head + "1.weight",
            "log_logit_scale": "modality_postprocessors.text.1.log_logit_scale",
        }
    else:
        raise InputError(f"modality must be 'audio' or 'text', got {modality!r}")
    for i in range(depth):
        for name in block_params:
            mapping[f"blocks.{i}.{name}"] = f"modality_trunks.{modality}.blocks.{i}.{name}"
    return mapping


def count_blocks(keys: Iterable[str], modality: str) -> int:
    prefix = f"modality_trunks.{modality}.blocks."
    ids = {int(k[len(prefix):].split(".", 1)[0]) for k in keys if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


class Tower(nn.Module):
    """Shared loading, fingerprinting and device helpers of the two towers."""

    modality = ""
    config: Any

    @property
    def embed_dim(self) -> int:
        """Width of the output embeddings (1024 for ``imagebind_huge``)."""
        return int(self.config.out_dim)

    output_dim = embed_dim

    @property
    def fingerprint(self) -> str:
        """Stable content id (sha256 hex) of the configuration and all tensors; computed once, then cached."""
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            digest = hashlib.sha256(repr(sorted(asdict(self.config).items())).encode())
            for name, tensor in sorted(self.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            cached = digest.hexdigest()
            self._fingerprint = cached
        return cached

    @classmethod
    def _config_from_state(cls, state: Mapping[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], *, config: Any = None, source: str = "state dict"
    ) -> Any:
        """Build the tower from a released-layout state dict (other modalities' keys are ignored)."""
        if config is None:
            config = cls._config_from_state(state)
        with torch.device("meta"):
            tower = cls(config)
        key_map = checkpoint_key_map(cls.modality, config.depth)
        expected = {**dict(tower.named_parameters()), **dict(tower.named_buffers())}
        missing, misshaped, tensors = [], [], {}
        for ours, theirs in key_map.items():
            if theirs not in state:
                missing.append(theirs)
                continue
            value = state[theirs]
            if tuple(value.shape) != tuple(expected[ours].shape):
                misshaped.append(f"{theirs}: {tuple(value.shape)} (expected {tuple(expected[ours].shape)})")
                continue
            # A private float32 copy: file-backed pages can be evicted and re-read mid-inference (bench: 1.7x
            # slower per clip beside a 10 GB process) and would fault if the file were rewritten while in use.
            tensors[ours] = value.to(torch.float32, copy=True)
        if missing or misshaped:
            problems = [f"missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"] if missing else []
            problems += [f"wrong shape: {'; '.join(misshaped[:8])}"] if misshaped else []
            raise CheckpointError(
                f"{source} is not an imagebind_huge-layout checkpoint for the {cls.modality} tower "
                f"({len(missing)} missing, {len(misshaped)} mis-shaped tensors) - " + " | ".join(problems)
            )
        tower.load_state_dict(tensors, strict=True, assign=True)
        return tower.eval()

    @classmethod
    def from_checkpoint(cls, path_or_name: str | os.PathLike[str] = "imagebind_huge", *, config: Any = None) -> Any:
        """Load the tower from an ``imagebind_huge``-layout file or a known weights name, in eval mode on CPU.

        The file is memory-mapped and only this tower's tensors are read (then copied into ordinary memory), so
        peak memory is about twice the tower, not the 4.8 GB of all six towers.
        ``config`` defaults to the one the tensor shapes imply (heads = width / 64, as in ``imagebind_huge``).
        Raises :class:`~audiodetic.errors.CheckpointError` listing missing or mis-shaped tensors.
        """
        from audiodetic.weights import load_state_dict, resolve

        path = resolve(path_or_name)
        state = load_state_dict(path, map_location="cpu", mmap=True)
        return cls.from_state_dict(state, config=config, source=repr(os.fspath(path)))

    @property
    def device(self) -> torch.device:
        return self.log_logit_scale.device
