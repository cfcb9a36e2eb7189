"""Random-weight checkpoints in the released ``imagebind_huge.pth`` layout (a plain state dict of six modalities).

``size="huge"`` gives every tensor its released shape (1.2 B parameters, 4.8 GB in float32) for parity runs and
benchmarks; ``size="tiny"`` keeps the key names and the audio input grid but shrinks every width and depth (audio
and text towers match :meth:`AudioTowerConfig.tiny` / :meth:`TextTowerConfig.tiny`), for tests.
Weights are normal(0, 0.02), LayerNorm scales near 1, biases near 0, position embeddings normal(0, 0.01), the
audio logit scale the fixed log(20) and the text one log(1/0.07), as a freshly initialised upstream model has.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import torch

from audiodetic.encoders.audio.imagebind import (
    AudioTowerConfig,
    ImageBindAudioEncoder,
    ImageBindTextEncoder,
    TextTowerConfig,
)
from audiodetic.encoders.audio.imagebind_tower import checkpoint_key_map
from audiodetic.errors import InputError

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")

# Width, depth and token count of the four towers audiodetic does not run, per size.
_OTHER_TOWERS = {
    "huge": {"vision": (1280, 32, 257), "depth": (384, 12, 197), "thermal": (768, 12, 197), "imu": (512, 6, 251)},
    "tiny": {"vision": (64, 1, 257), "depth": (32, 1, 197), "thermal": (32, 1, 197), "imu": (32, 1, 251)},
}
_OUT_DIM = {"huge": 1024, "tiny": 64}


def _tower_shapes(encoder_cls: type, config: object) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        tower = encoder_cls(config)
    ours = {**dict(tower.named_parameters()), **dict(tower.named_buffers())}
    key_map = checkpoint_key_map(encoder_cls.modality, config.depth)
    return {theirs: tuple(ours[name].shape) for name, theirs in key_map.items()}


def _block_shapes(modality: str, width: int, depth: int, bias_kv: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(depth):
        p = f"modality_trunks.{modality}.blocks.{i}."
        shapes.update({
            p + "attn.in_proj_weight": (3 * width, width), p + "attn.in_proj_bias": (3 * width,),
            p + "attn.out_proj.weight": (width, width), p + "attn.out_proj.bias": (width,),
            p + "norm_1.weight": (width,), p + "norm_1.bias": (width,),
            p + "mlp.fc1.weight": (4 * width, width), p + "mlp.fc1.bias": (4 * width,),
            p + "mlp.fc2.weight": (width, 4 * width), p + "mlp.fc2.bias": (width,),
            p + "norm_2.weight": (width,), p + "norm_2.bias": (width,),
        })
        if bias_kv:
            shapes.update({p + "attn.bias_k": (1, 1, width), p + "attn.bias_v": (1, 1, width)})
    return shapes


def _other_tower_shapes(modality: str, size: str) -> dict[str, tuple[int, ...]]:
    width, depth, tokens = _OTHER_TOWERS[size][modality]
    out = _OUT_DIM[size]
    pre, head = f"modality_preprocessors.{modality}.", f"modality_heads.{modality}."
    shapes: dict[str, tuple[int, ...]] = {pre + "cls_token": (1, 1, width)}
    if modality == "vision":
        shapes[pre + "rgbt_stem.proj.1.weight"] = (width, 3, 2, 14, 14)
        shapes[pre + "pos_embedding_helper.pos_embed"] = (1, tokens, width)
        shapes[f"modality_trunks.{modality}.pre_transformer_layer.0.weight"] = (width,)
        shapes[f"modality_trunks.{modality}.pre_transformer_layer.0.bias"] = (width,)
    elif modality == "imu":
        shapes[pre + "pos_embed"] = (1, tokens, width)
        shapes.update({pre + "imu_stem.proj.weight": (width, 48), pre + "imu_stem.norm_layer.weight": (width,),
                       pre + "imu_stem.norm_layer.bias": (width,)})
    else:
        stem = "depth_stem" if modality == "depth" else "rgbt_stem"
        shapes.update({
            pre + f"{stem}.proj.weight": (width, 1, 16, 16), pre + f"{stem}.norm_layer.weight": (width,),
            pre + f"{stem}.norm_layer.bias": (width,), pre + "pos_embedding_helper.pos_embed": (1, tokens, width),
        })
    shapes.update(_block_shapes(modality, width, depth, bias_kv=modality != "vision"))
    proj_index = 3 if modality == "imu" else 2
    shapes.update({head + "0.weight": (width,), head + "0.bias": (width,), head + f"{proj_index}.weight": (out, width)})
    if modality != "vision":
        shapes[f"modality_postprocessors.{modality}.1.log_logit_scale"] = ()
    return shapes


def imagebind_layout(size: str = "tiny", modalities: Iterable[str] = MODALITIES) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an ``imagebind_huge``-layout state dict of ``size`` ("huge" or "tiny")."""
    if size not in _OUT_DIM:
        raise InputError(f"size must be 'huge' or 'tiny', got {size!r}")
    chosen = list(modalities)
    unknown = sorted(set(chosen) - set(MODALITIES))
    if unknown:
        raise InputError(f"unknown modalities {unknown}; choose from {list(MODALITIES)}")
    layout: dict[str, tuple[int, ...]] = {}
    for modality in MODALITIES:  # released key order: modality by modality is close enough for a plain dict
        if modality not in chosen:
            continue
        if modality == "audio":
            config = AudioTowerConfig.huge() if size == "huge" else AudioTowerConfig.tiny()
            layout.update(_tower_shapes(ImageBindAudioEncoder, config))
        elif modality == "text":
            config = TextTowerConfig.huge() if size == "huge" else TextTowerConfig.tiny()
            layout.update(_tower_shapes(ImageBindTextEncoder, config))
        else:
            layout.update(_other_tower_shapes(modality, size))
    return layout


def _random_tensor(key: str, shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    if key.endswith("log_logit_scale"):
        scale = 20.0 if ".audio." in key else (1 / 0.07 if ".text." in key else 10.0)
        return torch.tensor(math.log(scale))
    if key.endswith(".mask"):
        return torch.full(tuple(shape), float("-inf")).triu(1)
    is_norm = ".norm" in key or "pre_transformer_layer" in key or (key.startswith("modality_heads") and len(shape) == 1)
    if is_norm and key.endswith(".weight"):
        return 1.0 + 0.05 * torch.randn(tuple(shape), generator=generator)
    if key.endswith("bias") or key.endswith("_bias"):
        return 0.02 * torch.randn(tuple(shape), generator=generator)
    std = 0.01 if "pos_embed" in key else 0.02
    return std * torch.randn(tuple(shape), generator=generator)


def imagebind_state_dict(
    size: str = "tiny", *, modalities: Iterable[str] = MODALITIES, seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Random tensors for every key of :func:`imagebind_layout`.

    Each tensor depends only on ``seed`` and its key, so a one-modality file holds the same audio tower as the
    six-modality file of the same seed.
    """
    generator = torch.Generator()
    out = {}
    for key, shape in imagebind_layout(size, modalities).items():
        generator.manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        out[key] = _random_tensor(key, shape, generator).to(dtype)
    return out


def write_imagebind_checkpoint(
    path: str | os.PathLike[str], size: str = "tiny", *, modalities: Iterable[str] = MODALITIES, seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Save :func:`imagebind_state_dict` with ``torch.save`` (a plain state dict, like the released file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(imagebind_state_dict(size, modalities=modalities, seed=seed, dtype=dtype), path)
    return path
