"""Scoring bridges on labelled sounds: zero-shot classification in the detector's space, against ImageBind's own.

For every clip the bridged embedding is compared (cosine) with the detector-space embeddings of the class names
(CLIP ViT-B/32 text of Detic's ``"a " + name``); the predicted class is the nearest. The **native** ceiling is
ImageBind's own zero-shot: the raw clip embedding against ImageBind text embeddings of the same names. Each bridge's
**retention** is its top-1 over the native top-1 of the same task.

Every score is held out from what the bridge was fitted on:

* bridges fitted on label names only (``linear``, ``retrieval``, saved files fitted elsewhere) score every clip;
* ``<linear>+gap`` (:meth:`LinearBridge.with_audio_centring`) centres each fold's clips on the mean of the other
  folds' clips (labels unused), or on ``audio_stats`` clips when given;
* ``paired`` is fitted on the other folds and scores the held-out fold (nested cross-validation picks ``alpha``);
* ``paired:class-disjoint`` is fitted on half of the classes and scores the clips of the other half among those
  classes only (and the other way round) - the case of a user's sound of a class the bridge never saw. Its
  retention is against the native zero-shot of that same task.

Datasets without folds get stratified random folds (seeded); the entry's ``split`` says what was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audiodetic.bridge._common import classification_scores
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.paired import MAX_SPLITS, PairedBridge, candidate_scores, cv_splits, pooled_scores
from audiodetic.errors import InputError

IMAGEBIND_ESC50_TOP1 = 0.669
"""ImageBind's published ESC-50 zero-shot top-1 (Girdhar et al., CVPR 2023, Table 2)."""
PAIRED = PairedBridge.kind
GAP_SUFFIX = "+gap"
CLASS_DISJOINT_SUFFIX = ":class-disjoint"
_KEYS = ("top1", "top5", "mean_class_acc")


@dataclass(frozen=True)
class EmbeddedClips:
    """A labelled sound set as matrices.

    Attributes:
        name: dataset name for reports. embeddings: ``(N, D_audio)`` raw clip embeddings. labels: ``(N,)`` class
        indices. folds: ``(N,)`` folds or ``None``. classes: ``C`` names. class_src: ``(C, D_audio)`` ImageBind
        text embeddings of the names (plain). class_dst: ``(C, D_det)`` detector-space embeddings (CLIP
        ``"a " + name``). skipped: ``{"count", "clips"}`` of clips left out before encoding finished.
    """

    name: str
    embeddings: np.ndarray
    labels: np.ndarray
    folds: np.ndarray | None
    classes: tuple[str, ...]
    class_src: np.ndarray
    class_dst: np.ndarray
    skipped: Mapping[str, Any] = field(default_factory=lambda: {"count": 0, "clips": []})

    def __post_init__(self) -> None:
        n, c = len(self.embeddings), len(self.classes)
        if n == 0:
            raise InputError(f"{self.name}: no usable clips left to score ({self.skipped.get('count', 0)} skipped)")
        if self.labels.shape != (n,) or (self.folds is not None and self.folds.shape != (n,)):
            raise InputError(f"{self.name}: labels/folds must hold one entry per clip ({n})")
        if self.class_src.shape[0] != c or self.class_dst.shape[0] != c:
            raise InputError(f"{self.name}: {c} classes but {self.class_src.shape[0]} / {self.class_dst.shape[0]} "
                             f"class embeddings")
        if self.class_src.shape[1] != self.embeddings.shape[1]:
            raise InputError(f"{self.name}: clip embeddings are {self.embeddings.shape[1]}-d but the ImageBind text "
                             f"embeddings of the classes are {self.class_src.shape[1]}-d")
        if len(np.unique(self.labels)) < 2:
            raise InputError(f"{self.name}: the usable clips cover only one class; at least 2 are needed")


@dataclass(frozen=True)
class LabelBank:
    """Label names with ``src (L, D_audio)`` ImageBind text and ``dst (L, D_det)`` detector-space embeddings."""

    names: tuple[str, ...]
    src: np.ndarray
    dst: np.ndarray


def eval_folds(data: EmbeddedClips, seed: int = 0) -> tuple[np.ndarray, str]:
    """The dataset's folds, or stratified random ones; with a description for the report."""
    if data.folds is not None and len(np.unique(data.folds)) >= 2:
        return data.folds, f"{len(np.unique(data.folds))} dataset folds"
    folds = np.zeros(len(data.labels), np.int64)
    for k, (_, held, _) in enumerate(cv_splits(data.labels, None, "folds", seed)):
        folds[held] = k
    return folds, f"{len(np.unique(folds))} stratified random folds (seed {seed}; the dataset has none)"


def class_halves(labels: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """The classes present, in a seeded order, split into two halves."""
    classes = np.random.default_rng(seed).permutation(np.unique(labels))
    return [np.sort(half) for half in np.array_split(classes, 2)]


def _entry(scores: Mapping[str, float], native_top1: float, split: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {key: float(scores[key]) for key in _KEYS}
    out["retention"] = float(scores["top1"] / native_top1) if native_top1 > 0 else None
    out.update(split=split, native_top1=float(native_top1), num_clips=int(n))
    return out


def _cross_fold(data: EmbeddedClips, folds: np.ndarray,
                predict: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``(N, D_det)`` predictions, each fold's rows from ``predict(train rows, held-out rows)``."""
    out = np.zeros((len(data.labels), data.class_dst.shape[1]))
    for fold in np.unique(folds):
        held = np.flatnonzero(folds == fold)
        out[held] = predict(np.flatnonzero(folds != fold), held)
    return out


def _paired_fit(data: EmbeddedClips, rows: np.ndarray, bank: LabelBank | None, text_weight: float, alpha: Any,
                cv: str, folds: np.ndarray, seed: int) -> PairedBridge:
    if text_weight > 0 and bank is None:
        raise InputError("a paired bridge with text_weight > 0 needs the label bank's text pairs")
    return PairedBridge.from_clips(
        data.embeddings[rows], data.labels[rows], data.class_dst, class_names=data.classes, folds=folds[rows],
        text_src=None if bank is None else bank.src, text_dst=None if bank is None else bank.dst,
        text_weight=text_weight, alpha=alpha, cv=cv, seed=seed, vocabulary=data.name)


def _class_disjoint(data: EmbeddedClips, bank: LabelBank | None, text_weight: float, alpha: Any, folds: np.ndarray,
                    seed: int) -> tuple[dict[str, float], dict[str, float], str]:
    """Pooled ``(paired scores, native scores, split description)`` over the two class halves."""
    halves = class_halves(data.labels, seed)
    inner = "classes" if min(len(h) for h in halves) >= 4 else "folds"
    bridged, native = [], []
    for fit_half, score_half in (halves, halves[::-1]):
        train = np.flatnonzero(np.isin(data.labels, fit_half))
        held = np.flatnonzero(np.isin(data.labels, score_half))
        bridge = _paired_fit(data, train, bank, text_weight, alpha, inner, folds, seed)
        bridged.append((len(held), candidate_scores(bridge.apply(data.embeddings[held]), data.class_dst,
                                                    data.labels[held], score_half)))
        native.append((len(held), candidate_scores(data.embeddings[held], data.class_src, data.labels[held],
                                                   score_half)))
    split = (f"class-disjoint: fitted on {len(halves[0])} classes, scored among the other {len(halves[1])} "
             f"(and the other way round); alpha by {'class-disjoint' if inner == 'classes' else 'fold'} CV")
    return pooled_scores(bridged), pooled_scores(native), split


def evaluate_bridges(data: EmbeddedClips, bridges: Mapping[str, Any], *, bank: LabelBank | None = None,
                     audio_stats: np.ndarray | None = None, audio_stats_source: str = "", gap: bool = True,
                     text_weight: float = 0.0, alpha: float | str = "auto", seed: int = 0,
                     progress: bool = False) -> dict[str, Any]:
    """Score bridges on ``data``; returns the content of ``bridge_eval.json`` (see the module doc).

    Args:
        bridges: ``{name: bridge object}`` (any object with ``apply`` and ``src_dim``), or ``{name: "paired"}``
            to fit paired bridges here (entries ``name`` and ``name:class-disjoint``).
        bank: the label bank, for paired bridges with ``text_weight > 0``.
        audio_stats: ``(M, D_audio)`` unlabelled clips for the gap correction (default: the other folds' clips).
        gap: add ``<name>+gap`` for every text-centred linear bridge.
        text_weight / alpha: paired-bridge options (see :meth:`PairedBridge.from_clips`).
    """
    from tqdm.auto import tqdm

    emb, labels = data.embeddings.astype(np.float64), data.labels
    dim = emb.shape[1]
    for name, bridge in bridges.items():
        if isinstance(bridge, str):
            if bridge != PAIRED:
                raise InputError(f"bridge {name!r}: only {PAIRED!r} is fitted here; give other bridges as objects")
        elif int(bridge.src_dim) != dim or int(bridge.dst_dim) != data.class_dst.shape[1]:
            raise InputError(f"bridge {name!r} maps {bridge.src_dim}-d -> {bridge.dst_dim}-d, but the clips are "
                             f"{dim}-d and the detector space {data.class_dst.shape[1]}-d; use a bridge fitted for "
                             f"this audio encoder")
    native = classification_scores(emb, data.class_src, labels)
    folds, fold_note = eval_folds(data, seed)
    results: dict[str, Any] = {}
    disjoint_native: dict[str, float] | None = None
    for name, bridge in tqdm(list(bridges.items()), desc="scoring bridges", unit="bridge", disable=not progress):
        if isinstance(bridge, str):
            predicted = _cross_fold(data, folds, lambda train, held: _paired_fit(
                data, train, bank, text_weight, alpha, "folds", folds, seed).apply(emb[held]))
            split = f"held-out folds ({fold_note}); alpha by nested fold CV; text weight {text_weight:g}"
            results[name] = _entry(classification_scores(predicted, data.class_dst, labels), native["top1"], split,
                                   len(labels))
            if len(np.unique(labels)) >= 4:
                scores, disjoint_native, split = _class_disjoint(data, bank, text_weight, alpha, folds, seed)
                results[name + CLASS_DISJOINT_SUFFIX] = _entry(scores, disjoint_native["top1"], split, len(labels))
            continue
        report = getattr(bridge, "report", None)
        seen = report is not None and report.vocabulary == data.name
        split = ("fitted on this dataset's clips: NOT held out" if seen
                 else "fitted without these clips; every clip scored")
        results[name] = _entry(classification_scores(bridge.apply(emb), data.class_dst, labels), native["top1"],
                               split, len(labels))
        if gap and type(bridge) is LinearBridge and bridge.centring == "text":
            if audio_stats is not None:
                corrected = bridge.with_audio_centring(audio_stats, source=audio_stats_source).apply(emb)
                split = f"sounds centred on the audio mean of {len(audio_stats)} clips from {audio_stats_source}"
            else:
                corrected = _cross_fold(data, folds, lambda train, held, linear=bridge: linear.with_audio_centring(
                    emb[train], source="other folds").apply(emb[held]))
                split = f"each fold centred on the audio mean of the other folds' clips ({fold_note}; labels unused)"
            results[name + GAP_SUFFIX] = _entry(classification_scores(corrected, data.class_dst, labels),
                                                native["top1"], split, len(labels))
    out: dict[str, Any] = {
        "dataset": data.name, "num_clips": int(len(labels)), "num_classes": int(len(np.unique(labels))),
        "skipped": dict(data.skipped), "native": {key: float(native[key]) for key in _KEYS},
        "bridges": results,
    }
    if disjoint_native is not None:
        out["native_class_disjoint"] = {key: float(disjoint_native[key]) for key in _KEYS}
    out["settings"] = {"seed": seed, "folds": fold_note, "text_weight": text_weight, "alpha": alpha,
                       "max_cv_splits": MAX_SPLITS, "classes": list(data.classes)}
    return out


def bridge_names(specs: Sequence[str]) -> list[str]:
    """Report names of bridge specs (a kind, or a file path -> its stem), refusing repeats."""
    from pathlib import Path

    from audiodetic.spaces import is_bridge_kind

    names = [spec if is_bridge_kind(spec) else Path(spec).stem for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"--bridge: two bridges would be named {repeated}; give each once (rename files)")
    return names
