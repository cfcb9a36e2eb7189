"""ImageBind's audio and text towers (``imagebind_huge``), loadable one at a time from the released checkpoint.

Both towers are pre-LN transformers over tokens; outputs are *raw* as upstream returns them:

* audio: per clip ``L2-normalise(head) * 20``, averaged over the clips -> ``(B, 1024)`` of norm <= 20;
* text: ``L2-normalise(head) * min(exp(log_logit_scale), 100)`` -> ``(B, 1024)``.

:meth:`ImageBindAudioEncoder.from_checkpoint` / :meth:`ImageBindTextEncoder.from_checkpoint` read only their own
tensors out of an ``imagebind_huge``-layout file (memory-mapped, then copied), so peak memory stays near twice one
tower's size instead of the whole model's. Key names of the released file appear only in :func:`checkpoint_key_map`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from audiodetic.detector.kernels import linear, multihead_attention
from audiodetic.errors import CheckpointError

_LN_EPS = 1e-6
_MAX_LOGIT_SCALE = 100.0


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


class _Block(nn.Module):
    """``x + attn(LN(x))`` then ``x + mlp(LN(x))`` on sequence-first tokens ``(L, B, D)``."""

    def __init__(self, dim: int, num_heads: int, *, bias_kv: bool) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = nn.MultiheadAttention(dim, num_heads, bias=True, add_bias_kv=bias_kv)
        self.norm_2 = nn.LayerNorm(dim, eps=_LN_EPS)
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
        raise ValueError(f"modality must be 'audio' or 'text', got {modality!r}")
    for i in range(depth):
        for name in block_params:
            mapping[f"blocks.{i}.{name}"] = f"modality_trunks.{modality}.blocks.{i}.{name}"
    return mapping


def _count_blocks(keys: Iterable[str], modality: str) -> int:
    prefix = f"modality_trunks.{modality}.blocks."
    ids = {int(k[len(prefix):].split(".", 1)[0]) for k in keys if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


class _Tower(nn.Module):
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


class ImageBindAudioEncoder(_Tower):
    """ImageBind's audio tower: log-mel clips -> 1024-d embeddings (raw: norm 20 per clip, mean over clips)."""

    modality = "audio"

    def __init__(self, config: AudioTowerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AudioTowerConfig.huge()
        dim = config.embed_dim
        self.patch_embed = nn.Conv2d(1, dim, config.patch_size, stride=config.patch_stride, bias=False)
        self.patch_norm = nn.LayerNorm(dim)  # eps 1e-5, unlike the blocks
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, dim))
        self.blocks = nn.ModuleList(_Block(dim, config.num_heads, bias_kv=True) for _ in range(config.depth))
        self.head_norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.head_proj = nn.Linear(dim, config.out_dim, bias=False)
        self.register_buffer("log_logit_scale", torch.log(torch.tensor(config.logit_scale)))
        if not self.cls_token.is_meta:
            self._init_random()

    def _init_random(self) -> None:
        bias_kv = [t for b in self.blocks for t in (b.attn.bias_k, b.attn.bias_v)]
        for p in (self.cls_token, self.pos_embed, *bias_kv):
            nn.init.normal_(p, std=0.02)

    @classmethod
    def tiny(cls, seed: int | None = None) -> "ImageBindAudioEncoder":
        """Random :meth:`AudioTowerConfig.tiny` tower in eval mode (``seed`` fixes the weights)."""
        if seed is not None:
            torch.manual_seed(seed)
        return cls(AudioTowerConfig.tiny()).eval()

    @classmethod
    def _config_from_state(cls, state: Mapping[str, torch.Tensor]) -> AudioTowerConfig:
        key = "modality_preprocessors.audio.cls_token"
        proj = "modality_heads.audio.2.weight"
        if key not in state or proj not in state:
            raise CheckpointError(f"not an imagebind_huge-layout checkpoint: no audio tower ({key!r} missing)")
        dim, out = int(state[key].shape[-1]), int(state[proj].shape[0])
        depth = _count_blocks(state, "audio")
        return AudioTowerConfig(embed_dim=dim, depth=depth, num_heads=max(1, dim // 64), out_dim=out)

    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-clip embeddings: float32 ``(N, 1, mel_bins, frames)`` -> ``(N, out_dim)``, each of norm 20."""
        x = self.patch_embed(clips.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        x = self.patch_norm(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = x.transpose(0, 1)  # (L, N, D)
        for block in self.blocks:
            x = block(x)
        x = self.head_proj(self.head_norm(x)[0])
        scale = torch.clamp(self.log_logit_scale.exp(), max=_MAX_LOGIT_SCALE)
        return F.normalize(x, dim=-1) * scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, S, 1, mel_bins, frames)`` -> mean over the S clips ``(B, out_dim)``; 4-D input -> per clip."""
        if features.ndim == 4:
            return self.encode_clips(features)
        if features.ndim != 5 or tuple(features.shape[2:]) != (1, self.config.mel_bins, self.config.frames):
            raise ValueError(
                f"expected features of shape (B, clips, 1, {self.config.mel_bins}, {self.config.frames}), "
                f"got {tuple(features.shape)}"
            )
        batch, clips = features.shape[:2]
        per_clip = self.encode_clips(features.reshape(batch * clips, *features.shape[2:]))
        return per_clip.reshape(batch, clips, -1).mean(dim=1)

    @torch.inference_mode()
    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Raw embeddings of a feature batch ``(B, 3, 1, 128, 204)`` -> float32 ``(B, out_dim)`` on CPU."""
        return self(features.to(self.device)).float().cpu()

    encode_audio = encode

    def encode_sources(self, sources: Sequence[Any], *, batch_size: int = 8, downmix: bool = False,
                       upstream_inplace: bool = True) -> torch.Tensor:
        """Raw embeddings of audio sources (paths, bytes, file objects, ``(waveform, rate)``): ``(A, out_dim)``.

        See :func:`audiodetic.audio.features.load_imagebind_audio` for ``downmix`` / ``upstream_inplace``.
        """
        from audiodetic.audio.features import load_imagebind_audio

        sources = list(sources)
        if not sources:
            raise ValueError("no audio sources given")
        out = []
        for start in range(0, len(sources), batch_size):
            feats = [load_imagebind_audio(s, downmix=downmix, upstream_inplace=upstream_inplace)
                     for s in sources[start:start + batch_size]]
            out.append(self.encode(torch.stack(feats)))
        return torch.cat(out)

    embed_files = encode_sources


class ImageBindTextEncoder(_Tower):
    """ImageBind's text tower: strings -> 1024-d embeddings (raw: norm = the checkpoint's logit scale)."""

    modality = "text"

    def __init__(self, config: TextTowerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TextTowerConfig.huge()
        n = config.context_length
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, n, config.width))
        self.register_buffer("causal_mask", torch.full((n, n), float("-inf")).triu(1))
        self.blocks = nn.ModuleList(_Block(config.width, config.num_heads, bias_kv=False) for _ in range(config.depth))
        self.head_norm = nn.LayerNorm(config.width, eps=_LN_EPS)
        self.head_proj = nn.Linear(config.width, config.out_dim, bias=False)
        self.log_logit_scale = nn.Parameter(torch.log(torch.tensor(1 / 0.07)))
        if not self.pos_embed.is_meta:
            nn.init.normal_(self.token_embedding.weight, std=0.02)
            nn.init.normal_(self.pos_embed, std=0.01)
        self._tokenizer: Any = None

    @classmethod
    def tiny(cls, seed: int | None = None) -> "ImageBindTextEncoder":
        """Random :meth:`TextTowerConfig.tiny` tower in eval mode (``seed`` fixes the weights)."""
        if seed is not None:
            torch.manual_seed(seed)
        return cls(TextTowerConfig.tiny()).eval()

    @classmethod
    def _config_from_state(cls, state: Mapping[str, torch.Tensor]) -> TextTowerConfig:
        key = "modality_preprocessors.text.token_embedding.weight"
        proj = "modality_heads.text.proj.1.weight"
        if key not in state or proj not in state:
            raise CheckpointError(f"not an imagebind_huge-layout checkpoint: no text tower ({key!r} missing)")
        vocab, width = (int(s) for s in state[key].shape)
        context = int(state.get("modality_preprocessors.text.pos_embed", torch.empty(1, 77, 1)).shape[1])
        return TextTowerConfig(width=width, depth=_count_blocks(state, "text"), num_heads=max(1, width // 64),
                               context_length=context, vocab_size=vocab, out_dim=int(state[proj].shape[0]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids int64 ``(B, context_length)`` (SOT ... EOT, zero padded) -> ``(B, out_dim)``."""
        if tokens.ndim != 2 or tokens.shape[1] != self.config.context_length:
            raise ValueError(
                f"expected token ids of shape (B, {self.config.context_length}), got {tuple(tokens.shape)}"
            )
        eot = tokens.argmax(dim=-1)  # the end-of-text id is the largest id
        x = (self.token_embedding(tokens) + self.pos_embed).transpose(0, 1)
        for block in self.blocks:
            x = block(x, attn_mask=self.causal_mask)
        x = x.transpose(0, 1)[torch.arange(x.shape[1], device=x.device), eot]
        x = self.head_proj(self.head_norm(x))
        scale = torch.clamp(self.log_logit_scale.exp(), max=_MAX_LOGIT_SCALE)
        return F.normalize(x, dim=-1) * scale

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """ImageBind's tokenisation: ``(B, context_length)`` int64 (see :mod:`audiodetic.audio.tokenizer`)."""
        if self._tokenizer is None:
            from audiodetic.audio.tokenizer import ImageBindTokenizer

            self._tokenizer = ImageBindTokenizer(context_length=self.config.context_length)
        return self._tokenizer(texts)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str] | str, *, batch_size: int = 64) -> torch.Tensor:
        """Raw embeddings of strings: float32 ``(B, out_dim)`` on CPU (norm = ``min(exp(log_logit_scale), 100)``)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise ValueError("no texts given")
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start:start + batch_size]).to(self.device)
            out.append(self(tokens).float().cpu())
        return torch.cat(out)

    encode_text = encode
