"""CLIP ViT-B/32 text encoder (OpenAI weights through open_clip): text prompts and the 512-d side of the bridges.

Detic's custom-vocabulary path embeds a class name as ``encode_text(tokenize("a " + name))`` with OpenAI's CLIP
ViT-B/32 text tower, **not normalised** (the detector normalises each class column itself).
:meth:`ClipTextEncoder.encode` returns exactly that: float32 ``(B, 512)`` raw text-tower outputs of the templated names.

Weights: ``audiodetic.weights.resolve("clip-vit-b32")`` is OpenAI's ``ViT-B-32.pt`` (a TorchScript archive with
float16 tensors of both towers). Only the text tower's tensors are kept, cast to float32 (as OpenAI's loader does
on CPU). A plain ``state_dict`` file (``torch.save``, the same key names, optionally under ``state_dict``/``model``)
works as well. The architecture (width, layers, context length, vocabulary, output width) is read off the tensor
shapes, with OpenAI's rule ``heads = width // 64``; the activation is QuickGELU as in OpenAI's CLIP.

Tokenisation is open_clip's CLIP BPE tokenizer (the same BPE, lower-casing and cleaning as OpenAI's): ``[SOT] +
bpe(text) + [EOT]``, zero-padded to 77. Texts longer than 76 tokens are truncated keeping ``EOT`` last (Detic's own
tokenizer crops a random window instead; names never come near that length).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from audiodetic.errors import CheckpointError, InputError
from audiodetic.spaces import DETECTOR_SPACE

DETIC_TEMPLATE = "a {}"
"""Detic's prompt template for class names (``'a ' + name``)."""

_TEXT_PREFIXES = ("positional_embedding", "text_projection", "token_embedding.", "ln_final.", "transformer.")


@dataclass(frozen=True)
class ClipTextConfig:
    """Text-tower hyperparameters (OpenAI CLIP layout)."""

    width: int = 512
    layers: int = 12
    heads: int = 8
    context_length: int = 77
    vocab_size: int = 49408
    embed_dim: int = 512

    @classmethod
    def vit_b32(cls) -> "ClipTextConfig":
        """OpenAI CLIP ViT-B/32's text tower: width 512, 12 layers, 8 heads, 77 tokens, 512-d output."""
        return cls(width=512, layers=12, heads=8, context_length=77, vocab_size=49408, embed_dim=512)

    @classmethod
    def tiny(cls) -> "ClipTextConfig":
        """A small random-weight tower for tests (same tokenizer, 512-d output like the real one)."""
        return cls(width=64, layers=2, heads=1, context_length=77, vocab_size=49408, embed_dim=512)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "ClipTextConfig":
        """Read the hyperparameters off OpenAI-layout text tensors."""
        try:
            width = int(state["ln_final.weight"].shape[0])
            layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
            return cls(width=width, layers=layers, heads=max(width // 64, 1),
                       context_length=int(state["positional_embedding"].shape[0]),
                       vocab_size=int(state["token_embedding.weight"].shape[0]),
                       embed_dim=int(state["text_projection"].shape[1]))
        except (KeyError, IndexError) as error:
            raise CheckpointError(f"not a CLIP text tower state dict (missing {error})") from None


def _build_clip(config: ClipTextConfig) -> torch.nn.Module:
    """An open_clip ``CLIP`` with this text tower (QuickGELU) and a minimal, unused vision tower."""
    from open_clip.model import CLIP

    model = CLIP(
        embed_dim=config.embed_dim,
        vision_cfg={"image_size": 32, "layers": 1, "width": 64, "patch_size": 32},
        text_cfg={"context_length": config.context_length, "vocab_size": config.vocab_size,
                  "width": config.width, "heads": config.heads, "layers": config.layers},
        quick_gelu=True,
    )
    model.visual = torch.nn.Identity()  # the text path never touches it
    return model.eval()


def read_clip_state_dict(path: str | os.PathLike[str], prefixes: tuple[str, ...] = _TEXT_PREFIXES,
                         *, what: str = "text tower", required: str = "text_projection") -> dict[str, torch.Tensor]:
    """Float32 tensors whose keys start with ``prefixes`` from OpenAI's ``ViT-B-32.pt`` (TorchScript) or a plain
    state dict, read by :func:`audiodetic.weights.load_state_dict` (containers unwrapped, ``module.`` removed)."""
    from audiodetic.weights import load_state_dict

    state = load_state_dict(path, map_location="cpu")
    picked = {k: v.float() for k, v in state.items() if k.startswith(prefixes)}
    if required not in picked:
        raise CheckpointError(f"{path} has no CLIP {what} (no {required!r} tensor)")
    return picked


def read_clip_text_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The text tower's tensors (float32, OpenAI key names) from OpenAI's ``ViT-B-32.pt`` or a plain state dict."""
    return read_clip_state_dict(path)


class ClipTextEncoder:
    """CLIP text tower with Detic's prompt template: names -> raw ``(B, D)`` float32 embeddings (D = 512).

    Args:
        model: an open_clip ``CLIP`` (only its text path is used). template: ``str.format`` template applied to
            names by :meth:`encode` (``"a {}"``, Detic's). fingerprint: a stable id of the weights (cache keys).
    """

    space = DETECTOR_SPACE

    def __init__(self, model: torch.nn.Module, *, template: str = DETIC_TEMPLATE, fingerprint: str | None = None,
                 device: str | torch.device = "cpu") -> None:
        if "{}" not in template:
            raise InputError(f"template must contain '{{}}' where the name goes, got {template!r}")
        import open_clip

        self.model = model.eval().to(device)
        self.template = template
        self.device = torch.device(device)
        self._tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=int(model.context_length))
        self._fingerprint = fingerprint
        self._trim_ok: bool | None = None

    # ----------------------------------------------------------------------------------------------- builders
    @classmethod
    def from_config(cls, config: ClipTextConfig, *, seed: int | None = None, **kwargs: Any) -> "ClipTextEncoder":
        """Random weights (open_clip's initialisation; ``seed`` makes them reproducible)."""
        if seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return cls(_build_clip(config), **kwargs)
        return cls(_build_clip(config), **kwargs)

    @classmethod
    def tiny(cls, seed: int = 0, **kwargs: Any) -> "ClipTextEncoder":
        """Small random tower (width 64, 2 layers, 512-d output) for tests."""
        return cls.from_config(ClipTextConfig.tiny(), seed=seed, **kwargs)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], **kwargs: Any) -> "ClipTextEncoder":
        """Build from OpenAI-layout text tensors (see :func:`read_clip_text_state_dict`)."""
        config = ClipTextConfig.from_state_dict(state)
        model = _build_clip(config)
        own = {k: v for k, v in model.state_dict().items() if k.startswith(_TEXT_PREFIXES)}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(k for k in state if k.startswith(_TEXT_PREFIXES) and k not in own
                            and not k.endswith("attn_mask"))  # a mask constant some exports keep
        if missing or unexpected:
            raise CheckpointError(f"CLIP text tensors do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for key, value in own.items():
            if tuple(state[key].shape) != tuple(value.shape):
                raise CheckpointError(f"CLIP tensor {key!r} has shape {tuple(state[key].shape)}, "
                                      f"expected {tuple(value.shape)}")
        model.load_state_dict({k: state[k] for k in own}, strict=False)
        return cls(model, **kwargs)

    @classmethod
    def from_checkpoint(cls, name_or_path: str | os.PathLike[str] = "clip-vit-b32", *,
                        device: str | torch.device = "cpu", **kwargs: Any) -> "ClipTextEncoder":
        """Load OpenAI's CLIP ViT-B/32 text tower from a weights name (``audiodetic.weights``) or a local file."""
        from audiodetic import weights

        path = weights.resolve(name_or_path)
        state = read_clip_text_state_dict(path)
        return cls.from_state_dict(state, device=device, **kwargs)

    # -------------------------------------------------------------------------------------------------- basics
    @property
    def embed_dim(self) -> int:
        """Output width D (512 for ViT-B/32)."""
        return int(self.model.text_projection.shape[1])

    @property
    def fingerprint(self) -> str:
        """Content hash of the text tower's tensors and the template (computed once)."""
        if self._fingerprint is None:
            digest = hashlib.blake2b(self.template.encode(), digest_size=16)
            for key, value in sorted(self.model.state_dict().items()):
                if key.startswith(_TEXT_PREFIXES):
                    digest.update(key.encode())
                    digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = "clip-text-" + digest.hexdigest()
        return self._fingerprint

    def prompts(self, names: Sequence[str]) -> list[str]:
        """The templated prompts (``"a " + name`` with Detic's template)."""
        return [self.template.format(name) for name in _check_texts(names)]

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP BPE token ids ``(B, context_length)`` int64 (no template applied)."""
        return self._tokenizer(list(_check_texts(texts)))

    def _encode_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``encode_text`` on positions ``0 .. max(EOT)`` only: the causal trunk and the EOT read-out make the
        later (padding) positions irrelevant, so this equals the full 77-position pass, several times faster."""
        model = self.model
        n = int(tokens.argmax(dim=-1).max()) + 1
        x = model.token_embedding(tokens[:, :n]) + model.positional_embedding[:n]
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return x @ model.text_projection

    @torch.inference_mode()
    def encode(self, names: Sequence[str], *, template: bool = True, batch_size: int = 256) -> torch.Tensor:
        """Raw text-tower outputs ``(B, D)`` float32 on the CPU for ``names`` (templated unless ``template=False``)."""
        texts = self.prompts(names) if template else list(_check_texts(names))
        outputs = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start:start + batch_size]).to(self.device)
            if self._trim_ok is None:  # check the shortcut once against open_clip's own path
                full = self.model.encode_text(tokens)
                try:
                    self._trim_ok = bool(torch.allclose(self._encode_trimmed(tokens), full, rtol=1e-4, atol=1e-4))
                except Exception:  # an open_clip version with other internals: keep its own path
                    self._trim_ok = False
                outputs.append(full.float().cpu())
                continue
            out = self._encode_trimmed(tokens) if self._trim_ok else self.model.encode_text(tokens)
            outputs.append(out.float().cpu())
        return torch.cat(outputs)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``encode(texts)``: the name the prompt builders call (templated, raw, ``(B, D)``)."""
        return self.encode(texts)

    def __repr__(self) -> str:
        return f"ClipTextEncoder(D={self.embed_dim}, template={self.template!r})"


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("pass a list of texts, not one string")
    texts = list(texts)
    if not texts:
        raise InputError("no texts given")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"texts must be non-empty strings, got {text!r}")
    return texts
