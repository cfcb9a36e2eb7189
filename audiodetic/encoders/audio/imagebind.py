"""ImageBind's audio and text towers (``imagebind_huge``), loadable one at a time from the released checkpoint.

Both towers are pre-LN transformers over tokens (:mod:`.imagebind_tower`); outputs are *raw* as upstream returns
them:

* audio: per clip ``L2-normalise(head) * 20``, averaged over the clips -> ``(B, 1024)`` of norm <= 20;
* text: ``L2-normalise(head) * min(exp(log_logit_scale), 100)`` -> ``(B, 1024)``.

:meth:`ImageBindAudioEncoder.from_checkpoint` / :meth:`ImageBindTextEncoder.from_checkpoint` read only their own
tensors out of an ``imagebind_huge``-layout file.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from audiodetic.encoders.audio.imagebind_tower import (
    LN_EPS,
    MAX_LOGIT_SCALE,
    AudioTowerConfig,
    Block,
    TextTowerConfig,
    Tower,
    count_blocks,
)
from audiodetic.errors import CheckpointError, InputError
from audiodetic.spaces import IMAGEBIND_SPACE

__all__ = ["AudioTowerConfig", "ImageBindAudioEncoder", "ImageBindTextEncoder", "TextTowerConfig"]


class ImageBindAudioEncoder(Tower):
    """ImageBind's audio tower: log-mel clips -> 1024-d embeddings (raw: norm 20 per clip, mean over clips)."""

    modality = "audio"
    space = IMAGEBIND_SPACE

    def __init__(self, config: AudioTowerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AudioTowerConfig.huge()
        dim = config.embed_dim
        self.patch_embed = nn.Conv2d(1, dim, config.patch_size, stride=config.patch_stride, bias=False)
        self.patch_norm = nn.LayerNorm(dim)  # eps 1e-5, unlike the blocks
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, config.num_heads, bias_kv=True) for _ in range(config.depth))
        self.head_norm = nn.LayerNorm(dim, eps=LN_EPS)
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
        depth = count_blocks(state, "audio")
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
        scale = torch.clamp(self.log_logit_scale.exp(), max=MAX_LOGIT_SCALE)
        return F.normalize(x, dim=-1) * scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, S, 1, mel_bins, frames)`` -> mean over the S clips ``(B, out_dim)``; 4-D input -> per clip."""
        if features.ndim == 4:
            return self.encode_clips(features)
        if features.ndim != 5 or tuple(features.shape[2:]) != (1, self.config.mel_bins, self.config.frames):
            raise InputError(
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

        See :func:`audiodetic.encoders.audio.features.load_imagebind_audio` for ``downmix`` / ``upstream_inplace``.
        """
        from audiodetic.encoders.audio.features import load_imagebind_audio

        sources = list(sources)
        if not sources:
            raise InputError("no audio sources given")
        out = []
        for start in range(0, len(sources), batch_size):
            feats = [load_imagebind_audio(s, downmix=downmix, upstream_inplace=upstream_inplace)
                     for s in sources[start:start + batch_size]]
            out.append(self.encode(torch.stack(feats)))
        return torch.cat(out)

    embed_files = encode_sources


class ImageBindTextEncoder(Tower):
    """ImageBind's text tower: strings -> 1024-d embeddings (raw: norm = the checkpoint's logit scale)."""

    modality = "text"
    space = IMAGEBIND_SPACE

    def __init__(self, config: TextTowerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TextTowerConfig.huge()
        n = config.context_length
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, n, config.width))
        self.register_buffer("causal_mask", torch.full((n, n), float("-inf")).triu(1))
        self.blocks = nn.ModuleList(Block(config.width, config.num_heads, bias_kv=False) for _ in range(config.depth))
        self.head_norm = nn.LayerNorm(config.width, eps=LN_EPS)
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
        return TextTowerConfig(width=width, depth=count_blocks(state, "text"), num_heads=max(1, width // 64),
                               context_length=context, vocab_size=vocab, out_dim=int(state[proj].shape[0]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids int64 ``(B, context_length)`` (SOT ... EOT, zero padded) -> ``(B, out_dim)``."""
        if tokens.ndim != 2 or tokens.shape[1] != self.config.context_length:
            raise InputError(
                f"expected token ids of shape (B, {self.config.context_length}), got {tuple(tokens.shape)}"
            )
        eot = tokens.argmax(dim=-1)  # the end-of-text id is the largest id
        x = (self.token_embedding(tokens) + self.pos_embed).transpose(0, 1)
        for block in self.blocks:
            x = block(x, attn_mask=self.causal_mask)
        x = x.transpose(0, 1)[torch.arange(x.shape[1], device=x.device), eot]
        x = self.head_proj(self.head_norm(x))
        scale = torch.clamp(self.log_logit_scale.exp(), max=MAX_LOGIT_SCALE)
        return F.normalize(x, dim=-1) * scale

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """ImageBind's tokenisation: ``(B, context_length)`` int64 (see :mod:`audiodetic.encoders.audio.tokenizer`)."""
        if self._tokenizer is None:
            from audiodetic.encoders.audio.tokenizer import ImageBindTokenizer

            self._tokenizer = ImageBindTokenizer(context_length=self.config.context_length)
        return self._tokenizer(texts)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str] | str, *, batch_size: int = 64) -> torch.Tensor:
        """Raw embeddings of strings: float32 ``(B, out_dim)`` on CPU (norm = ``min(exp(log_logit_scale), 100)``)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise InputError("no texts given")
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start:start + batch_size]).to(self.device)
            out.append(self(tokens).float().cpu())
        return torch.cat(out)

    encode_text = encode
