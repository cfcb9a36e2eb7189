"""From a labelled-audio dataset on disk to the matrices bridges are fitted and scored on.

:func:`embed_labelled_clips` encodes the clips (audio tower, disk cache by content hash, unusable clips skipped and
counted) and the class names (ImageBind text, plain names; CLIP ViT-B/32 text, Detic's ``"a " + name``).
:func:`fit_paired` fits a :class:`PairedBridge` on a dataset; :func:`audio_stats` embeds unlabelled clips for the
gap correction of a linear bridge (:meth:`LinearBridge.with_audio_centring`).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import numpy as np

from audiodetic.bridge.clips import encode_clips
from audiodetic.bridge.datasets import LabelledClips, audio_files, load_labelled_clips
from audiodetic.bridge.evaluate import EmbeddedClips, LabelBank
from audiodetic.bridge.label_bank import IMAGEBIND_TEMPLATE, encode_label_texts, label_embeddings
from audiodetic.bridge.paired import PairedBridge
from audiodetic.encoders.cache import encoder_id
from audiodetic.errors import InputError

CachePath = str | os.PathLike[str] | None


def embed_labelled_clips(dataset: LabelledClips, *, audio_encoder: Any, imagebind_text_encoder: Any,
                         clip_text_encoder: Any, cache_dir: CachePath = None, use_cache: bool = True,
                         progress: bool = True) -> EmbeddedClips:
    """The dataset as :class:`EmbeddedClips`: raw clip embeddings ``(N', D_audio)`` of the usable clips, the class
    names through both text towers (``(C, D_audio)`` and ``(C, D_det)``), and the skipped clips with reasons."""
    encoded = encode_clips(dataset.paths, audio_encoder, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                           what=f"{dataset.name} clips")
    skipped = encoded.skipped_report(dataset.paths, dataset.rows)
    if skipped["count"] and progress:
        first = skipped["clips"][0]
        print(f"{dataset.name}: skipped {skipped['count']} of {len(dataset)} clips, e.g. row {first['row']} "
              f"{first['path']}: {first['reason']}", file=sys.stderr)
    folds = dataset.fold_array()
    src = encode_label_texts(imagebind_text_encoder, [IMAGEBIND_TEMPLATE.format(c) for c in dataset.classes],
                             what="ImageBind text", progress=progress, purpose="class names")
    dst = encode_label_texts(clip_text_encoder, list(dataset.classes), what="CLIP ViT-B/32 text", progress=progress,
                             purpose="class names")
    return EmbeddedClips(dataset.name, encoded.embeddings, dataset.label_array()[encoded.kept],
                         None if folds is None else folds[encoded.kept], dataset.classes, src, dst, skipped)


def label_bank(imagebind_text_encoder: Any, clip_text_encoder: Any, labels: str | Sequence[str], *,
               cache_dir: CachePath = None, use_cache: bool = True, progress: bool = True) -> LabelBank:
    """:func:`audiodetic.bridge.label_bank.label_embeddings` as a :class:`LabelBank`."""
    names, src, dst, _ = label_embeddings(imagebind_text_encoder, clip_text_encoder, labels, cache_dir=cache_dir,
                                          use_cache=use_cache, progress=progress)
    return LabelBank(tuple(names), src, dst)


def audio_stats(source: str | os.PathLike[str], audio_encoder: Any, *, cache_dir: CachePath = None,
                use_cache: bool = True, progress: bool = True) -> np.ndarray:
    """``(M, D_audio)`` raw embeddings of the usable clips in ``source`` (a folder of sound files or a dataset)."""
    files = audio_files(source)
    encoded = encode_clips(files, audio_encoder, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                           what="clips for the audio mean")
    if len(encoded.kept) < 2:
        raise InputError(f"{source}: the audio mean needs at least 2 usable clips; {len(encoded.kept)} of "
                         f"{len(files)} were usable ({encoded.skipped[0][1] if encoded.skipped else 'none'})")
    return encoded.embeddings


def fit_paired(dataset: str | os.PathLike[str] | LabelledClips, *, audio_encoder: Any, clip_text_encoder: Any,
               imagebind_text_encoder: Any = None, labels: str | Sequence[str] = "auto", text_weight: float = 1.0,
               alpha: float | str = "auto", cv: str = "folds", seed: int = 0, cache_dir: CachePath = None,
               use_cache: bool = True, progress: bool = True) -> PairedBridge:
    """A :class:`PairedBridge` fitted on every usable clip of ``dataset`` (a path or :class:`LabelledClips`); its
    report holds the cross-validated scores. The ``labels`` bank's text pairs join at ``text_weight`` (0: clips
    only). Both text towers are needed: CLIP for the targets, ImageBind for the class names and the text pairs."""
    clips = dataset if isinstance(dataset, LabelledClips) else load_labelled_clips(dataset)
    if imagebind_text_encoder is None:
        raise InputError("a paired bridge needs the ImageBind text tower (class names and text pairs)")
    data = embed_labelled_clips(clips, audio_encoder=audio_encoder, imagebind_text_encoder=imagebind_text_encoder,
                                clip_text_encoder=clip_text_encoder, cache_dir=cache_dir, use_cache=use_cache,
                                progress=progress)
    bank = (label_bank(imagebind_text_encoder, clip_text_encoder, labels, cache_dir=cache_dir, use_cache=use_cache,
                       progress=progress) if text_weight > 0 else None)
    encoders = {"imagebind_audio": encoder_id(audio_encoder), "clip_text": encoder_id(clip_text_encoder)}
    return PairedBridge.from_clips(
        data.embeddings, data.labels, data.class_dst, class_names=data.classes, folds=data.folds,
        text_src=None if bank is None else bank.src, text_dst=None if bank is None else bank.dst,
        text_weight=text_weight, alpha=alpha, cv=cv, seed=seed, vocabulary=data.name, encoders=encoders)
