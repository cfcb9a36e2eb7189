"""CLIP ViT-B/32 image encoder (OpenAI weights through open_clip) for example-image prompts.

CLIP's image and text embeddings share one space, so an image embedding can stand in for a class name in the
detector's vocabulary (``space = "clip-vit-b32-image"``, used without a bridge by :mod:`audiodetic.prompts`).

Weights: the same OpenAI ``ViT-B-32.pt`` as :class:`~audiodetic.encoders.clip_text.ClipTextEncoder` (its ``visual.*`` tensors,
cast to float32). The architecture is read off the tensor shapes (width, layers, patch size, input size, output
width; ``heads = width // 64``; QuickGELU). Preprocessing is CLIP's evaluation transform (open_clip's
``image_transform(size, is_train=False)``): bicubic resize of the shorter side, centre crop, RGB, OpenAI mean/std.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from audiodetic.encoders.clip_text import read_clip_state_dict
from audiodetic.errors import CheckpointError, InputError
from audiodetic.inputs import as_pil_rgb
from audiodetic.spaces import CLIP_IMAGE_SPACE


@dataclass(frozen=True)
class ClipImageConfig:
    """Vision-tower hyperparameters (OpenAI CLIP layout)."""

    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    embed_dim: int = 512

    @classmethod
    def vit_b32(cls) -> "ClipImageConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "ClipImageConfig":
        """Small random tower for tests (64 px input, width 64, 2 layers, 512-d output)."""
        return cls(image_size=64, patch_size=32, width=64, layers=2, embed_dim=512)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "ClipImageConfig":
        try:
            conv = state["visual.conv1.weight"]
            grid = int(round(math.sqrt(state["visual.positional_embedding"].shape[0] - 1)))
            layers = len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")})
            return cls(image_size=int(conv.shape[-1]) * grid, patch_size=int(conv.shape[-1]),
                       width=int(conv.shape[0]), layers=layers, embed_dim=int(state["visual.proj"].shape[1]))
        except (KeyError, IndexError) as error:
            raise CheckpointError(f"not a CLIP vision tower state dict (missing {error})") from None


def _build_visual(config: ClipImageConfig) -> torch.nn.Module:
    from open_clip.model import CLIP

    model = CLIP(embed_dim=config.embed_dim,
                 vision_cfg={"image_size": config.image_size, "layers": config.layers, "width": config.width,
                             "patch_size": config.patch_size},
                 text_cfg={"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
                 quick_gelu=True)
    return model.visual.eval()


class ClipImageEncoder:
    """CLIP image tower: images -> raw ``(B, D)`` float32 embeddings (D = 512 for ViT-B/32)."""

    space = CLIP_IMAGE_SPACE

    def __init__(self, visual: torch.nn.Module, *, device: str | torch.device = "cpu") -> None:
        import open_clip

        self.visual = visual.eval().to(device)
        self.device = torch.device(device)
        size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
        self.preprocess = open_clip.image_transform(int(size), is_train=False)
        self._fingerprint: str | None = None

    @classmethod
    def from_config(cls, config: ClipImageConfig, *, seed: int | None = None, **kwargs: Any) -> "ClipImageEncoder":
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            return cls(_build_visual(config), **kwargs)

    @classmethod
    def tiny(cls, seed: int = 0, **kwargs: Any) -> "ClipImageEncoder":
        return cls.from_config(ClipImageConfig.tiny(), seed=seed, **kwargs)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], **kwargs: Any) -> "ClipImageEncoder":
        """Build from OpenAI-layout ``visual.*`` tensors."""
        visual = _build_visual(ClipImageConfig.from_state_dict(state))
        own = visual.state_dict()
        theirs = {k[len("visual."):]: v for k, v in state.items()
                  if k.startswith("visual.") and not k.endswith("attn_mask")}
        missing, unexpected = sorted(set(own) - set(theirs)), sorted(set(theirs) - set(own))
        bad = [k for k in set(own) & set(theirs) if tuple(own[k].shape) != tuple(theirs[k].shape)]
        if missing or unexpected or bad:
            raise CheckpointError(f"CLIP vision tensors do not match: missing {missing[:4]}, unexpected "
                                  f"{unexpected[:4]}, wrong shape {bad[:4]}")
        visual.load_state_dict(theirs)
        return cls(visual, **kwargs)

    @classmethod
    def from_checkpoint(cls, name_or_path: str | os.PathLike[str] = "clip-vit-b32",
                        **kwargs: Any) -> "ClipImageEncoder":
        """Load OpenAI's CLIP ViT-B/32 image tower from a weights name or a local file."""
        from audiodetic import weights

        state = read_clip_state_dict(weights.resolve(name_or_path), ("visual.",), what="vision tower",
                                     required="visual.proj")
        return cls.from_state_dict(state, **kwargs)

    @property
    def embed_dim(self) -> int:
        return int(self.visual.output_dim)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.blake2b(digest_size=16)
            for key, value in sorted(self.visual.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = "clip-image-" + digest.hexdigest()
        return self._fingerprint

    @torch.inference_mode()
    def encode(self, images: Sequence[Any], *, batch_size: int = 32) -> torch.Tensor:
        """Raw embeddings ``(B, D)`` float32 on the CPU of images (paths, PIL images, HxWx3 uint8 RGB arrays)."""
        images = list(images)
        if not images:
            raise InputError("no images given")
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            batch = torch.stack([self.preprocess(as_pil_rgb(image, argument=f"image {start + i}"))
                                 for i, image in enumerate(chunk)])
            out.append(self.visual(batch.to(self.device)).float().cpu())
        return torch.cat(out)

    encode_images = encode
