"""Load the models an evaluation run needs from command-line style names (imports happen on use)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from audiodetic.errors import InputError


def load_eval_detector(name_or_path: str, *, device: str) -> Any:
    """``audiodetic.detector.convert.load_detector(name_or_path, device=device)`` in eval mode."""
    from audiodetic.detector.convert import load_detector

    return load_detector(name_or_path, device=device)


def load_bridges(specs: Sequence[str], *, audio_dim: int | None = None) -> dict[str, Any]:
    """``{name: bridge}`` from the label-bank kinds (``linear``/``retrieval``, fitted once and cached by
    ``audiodetic.bridge.default_bridge``) or saved bridge files (named by file stem). With ``audio_dim`` every
    bridge's input width is checked against the audio encoder's output width."""
    import audiodetic.bridge as bridges_module

    bridges: dict[str, Any] = {}
    for spec in specs:
        checked = bridges_module.check_bridge_to_use(spec, argument="--bridge")
        if isinstance(checked, str):
            name, bridge = checked, bridges_module.default_bridge(checked)
        else:
            name, bridge = checked.stem, bridges_module.load_bridge(checked)
        if name in bridges:
            raise InputError(f"two bridges are named {name!r}; rename one of the files")
        if audio_dim is not None and int(bridge.src_dim) != int(audio_dim):
            raise InputError(f"bridge {spec!r} maps {bridge.src_dim}-d inputs but the audio encoder outputs "
                             f"{audio_dim}-d")
        bridges[name] = bridge
    if not bridges:
        raise InputError("the sound benchmark needs at least one --bridge")
    return bridges


def audio_embedder(name_or_path: str | os.PathLike[str], *, device: str = "cpu",
                   batch_size: int = 8) -> tuple[Callable[[Sequence[Path]], np.ndarray], str, int]:
    """``(embed, encoder_id, dim)``: ImageBind's audio tower as ``embed(paths) -> (n, dim)`` float32 (1024-d for
    ``imagebind_huge``), the tower's content fingerprint (keys the clip-embedding cache) and its output width."""
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

    encoder = ImageBindAudioEncoder.from_checkpoint(name_or_path).to(device)
    embed = encoder_embedder(encoder, batch_size=batch_size)
    return embed, f"imagebind-audio-{encoder.fingerprint}", int(encoder.embed_dim)


def encoder_embedder(encoder: Any, *, batch_size: int = 8) -> Callable[[Sequence[Path]], np.ndarray]:
    """Wrap an ``ImageBindAudioEncoder`` (``encode_sources(paths) -> (n, D)``) as an embedder."""

    def embed(paths: Sequence[Path]) -> np.ndarray:
        output = encoder.encode_sources([str(p) for p in paths], batch_size=batch_size)
        return output.detach().float().cpu().numpy() if hasattr(output, "detach") else np.asarray(output)

    return embed


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``; ``ValueError`` naming ``option`` otherwise."""
    try:
        values = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise InputError(f"{option} must list at least one integer, got {text!r}")
    if len(set(values)) != len(values):
        raise InputError(f"{option} lists a value twice: {text!r}")
    return values
