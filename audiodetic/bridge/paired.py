"""Paired bridge: a ridge map fitted on labelled sound clips, so it has seen where sounds really lie.

Each training row is a clip's audio embedding (L2-normalised) paired with the CLIP ViT-B/32 text embedding of its
label (Detic's ``"a " + name``, L2-normalised); optionally the label bank's text pairs (ImageBind text -> CLIP text
of the same names) join them with a total weight of ``text_weight`` times the clips' total. Clip rows are centred on
the clips' mean and text rows on the text mean (the modality gap between the two clouds carries no meaning), targets
on their weighted mean; the map is weighted ridge, ``y = normalize((x / |x| - mu_audio) @ W + mu_dst)`` - a
:class:`LinearBridge` whose file says ``kind="paired"``.

``alpha`` is chosen by cross-validation on the clips (:func:`cv_splits`): ``cv="folds"`` holds out one dataset fold
at a time (or stratified random folds) and scores zero-shot top-1 among all classes; ``cv="classes"`` holds out
groups of classes and scores each group among its own classes - the case of a user's sound of a class the bridge
never saw. The fit report's ``held_out`` scores are those cross-validated scores at the chosen ``alpha``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic.bridge._common import FitReport, as_matrix, classification_scores
from audiodetic.bridge.linear import LinearBridge
from audiodetic.errors import InputError
from audiodetic.spaces import l2_normalize

PAIRED_ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
"""Ridge strengths tried by cross-validation (inputs are unit rows, so the scale is fixed)."""
CV_MODES = ("folds", "classes")
MAX_SPLITS = 5


def _weighted_ridge(src: np.ndarray, dst: np.ndarray, weights: np.ndarray,
                    alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``[(W (D_src, D_dst), mu_src, mu_dst)]`` of weighted ridge, one per alpha, from one eigendecomposition."""
    w = weights / weights.sum()
    mu_s, mu_d = w @ src, w @ dst
    root = np.sqrt(weights)[:, None]
    s, d = (src - mu_s) * root, (dst - mu_d) * root
    values, vectors = np.linalg.eigh(s.T @ s)
    projected = vectors.T @ (s.T @ d)
    return [(vectors @ (projected / (np.maximum(values, 0.0) + float(a))[:, None]), mu_s, mu_d) for a in alphas]


def cv_splits(labels: np.ndarray, folds: np.ndarray | None, mode: str, seed: int = 0,
              max_splits: int = MAX_SPLITS) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``[(train clip indices, held-out clip indices, candidate classes)]`` for cross-validation.

    ``mode="folds"``: one split per dataset fold (when ``folds`` holds at least 2 values) or per stratified random
    fold (``max_splits``); candidates are all classes. ``mode="classes"``: the classes (seeded order) in up to
    ``max_splits`` groups of at least 2; each group is held out with its clips, and is its own candidate set.
    """
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if mode not in CV_MODES:
        raise InputError(f"cv must be one of {CV_MODES}, got {mode!r}")
    if mode == "classes":
        if len(classes) < 4:
            raise InputError(f"class-disjoint cross-validation needs at least 4 classes, got {len(classes)}")
        groups = np.array_split(rng.permutation(classes), min(max_splits, len(classes) // 2))
        return [(np.flatnonzero(~np.isin(labels, g)), np.flatnonzero(np.isin(labels, g)), np.sort(g))
                for g in groups]
    if folds is not None and len(np.unique(folds)) >= 2:
        assigned = np.asarray(folds, np.int64)
    else:  # stratified: each class's clips dealt round-robin over the splits, in a seeded order
        assigned = np.zeros(len(labels), np.int64)
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            assigned[members] = np.arange(len(members)) % max_splits
    splits = [(np.flatnonzero(assigned != f), np.flatnonzero(assigned == f), classes) for f in np.unique(assigned)]
    return [split for split in splits if len(split[0]) and len(split[1])]


def candidate_scores(mapped: np.ndarray, class_rows: np.ndarray, labels: np.ndarray,
                     candidates: np.ndarray) -> dict[str, float]:
    """:func:`classification_scores` among the ``candidates`` classes only (``labels`` are full class indices)."""
    lookup = {int(c): i for i, c in enumerate(candidates)}
    return classification_scores(mapped, class_rows[candidates], np.array([lookup[int(c)] for c in labels]))


def pooled_scores(parts: Sequence[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """Scores of several held-out parts ``[(clip count, scores)]`` averaged with the clip counts as weights."""
    total = sum(n for n, _ in parts)
    return {key: float(sum(n * s[key] for n, s in parts) / total) for key in parts[0][1]}


class PairedBridge(LinearBridge):
    """A :class:`LinearBridge` fitted on labelled clips (``kind="paired"``); build it with :meth:`from_clips`."""

    kind = "paired"

    @classmethod
    def from_clips(cls, clips: Any, labels: Any, class_dst: Any, *, class_names: Sequence[str] | None = None,
                   folds: Any = None, text_src: Any = None, text_dst: Any = None, text_weight: float = 0.0,
                   alpha: float | str = "auto", cv: str = "folds", seed: int = 0, vocabulary: str = "",
                   encoders: Mapping[str, str] | None = None) -> "PairedBridge":
        """Fit on clips and their labels.

        Args:
            clips: ``(N, D_src)`` audio embeddings (any norm). labels: ``(N,)`` class indices into ``class_dst``.
            class_dst: ``(C, D_dst)`` detector-space embeddings of the class names (CLIP ``"a " + name``).
            class_names: ``C`` names, for the report. folds: ``(N,)`` dataset folds for ``cv="folds"``, or None.
            text_src / text_dst: ``(L, D_src)`` / ``(L, D_dst)`` label-bank text pairs, used when
                ``text_weight > 0`` (their total weight = ``text_weight`` x the number of training clips).
            alpha: a ridge strength >= 0, or ``"auto"`` (the best of :data:`PAIRED_ALPHAS` by cross-validated
                top-1, then mean cosine). cv: ``"folds"`` or ``"classes"`` (see the module doc).
        """
        x = l2_normalize(as_matrix(clips, "clip embeddings"))
        targets = l2_normalize(as_matrix(class_dst, "class embeddings"))
        y = np.asarray(labels).reshape(-1)
        if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"labels must be {len(x)} integer class indices (one per clip), got {y.dtype} "
                             f"of shape {np.shape(labels)}")
        if y.min() < 0 or y.max() >= len(targets):
            raise InputError(f"labels must index the {len(targets)} class embeddings, got values "
                             f"{int(y.min())}..{int(y.max())}")
        if len(np.unique(y)) < 2:
            raise InputError(f"a paired bridge needs clips of at least 2 classes, got {len(np.unique(y))}")
        weight = float(text_weight)
        if not np.isfinite(weight) or weight < 0:
            raise InputError(f"text_weight must be a finite number >= 0, got {text_weight!r}")
        if weight > 0:
            if text_src is None or text_dst is None:
                raise InputError("text_weight > 0 needs the label bank's text pairs (text_src, text_dst)")
            t_src = l2_normalize(as_matrix(text_src, "text_src", dim=x.shape[1]))
            t_dst = l2_normalize(as_matrix(text_dst, "text_dst", dim=targets.shape[1]))
            if len(t_src) != len(t_dst):
                raise InputError(f"text_src has {len(t_src)} rows but text_dst has {len(t_dst)}")
        else:
            t_src, t_dst = np.zeros((0, x.shape[1])), np.zeros((0, targets.shape[1]))
        auto = isinstance(alpha, str)
        if auto and alpha != "auto" or not auto and (isinstance(alpha, bool) or not np.isfinite(alpha) or alpha < 0):
            raise InputError(f"alpha must be a finite number >= 0 or 'auto', got {alpha!r}")
        alphas = PAIRED_ALPHAS if auto else (float(alpha),)
        fold_array = None if folds is None else np.asarray(folds, np.int64).reshape(-1)

        def fit_rows(rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            # each modality centred on its own cloud (the gap between them is no signal); sounds keep the audio mean
            audio_mean = x[rows].mean(axis=0)
            text_centred = t_src - t_src.mean(axis=0) if len(t_src) else t_src
            src = np.concatenate([x[rows] - audio_mean, text_centred])
            dst = np.concatenate([targets[y[rows]], t_dst])
            text_each = weight * len(rows) / max(len(t_src), 1)
            weights = np.concatenate([np.ones(len(rows)), np.full(len(t_src), text_each)])
            return [(w, audio_mean + mu_s, mu_d) for w, mu_s, mu_d in _weighted_ridge(src, dst, weights, alphas)]

        splits = cv_splits(y, fold_array, cv, seed)
        per_alpha: list[list[tuple[int, dict[str, float]]]] = [[] for _ in alphas]
        for train, held, candidates in splits:
            for k, (w, mu_s, mu_d) in enumerate(fit_rows(train)):
                mapped = (x[held] - mu_s) @ w + mu_d
                per_alpha[k].append((len(held), candidate_scores(mapped, targets, y[held], candidates)))
        pooled = [pooled_scores(parts) for parts in per_alpha]
        best = max(range(len(alphas)), key=lambda k: (pooled[k]["top1"], pooled[k]["mean_cosine"], alphas[k]))
        w, mu_s, mu_d = fit_rows(np.arange(len(x)))[best]
        train_scores = classification_scores((x - mu_s) @ w + mu_d, targets, y)
        report = FitReport(
            kind=cls.kind, method="ridge", src_dim=x.shape[1], dst_dim=targets.shape[1],
            n_pairs=len(x) + len(t_src), n_train=len(x) + len(t_src), n_held_out=int(sum(len(h) for _, h, _ in splits)),
            held_out=pooled[best], train=train_scores,
            params={"alpha": float(alphas[best]), "alpha_auto": auto, "cv": cv, "cv_splits": len(splits),
                    "cv_top1": {f"{a:g}": p["top1"] for a, p in zip(alphas, pooled)}, "text_weight": weight,
                    "n_clips": len(x), "n_text_pairs": len(t_src), "n_classes": int(len(np.unique(y))),
                    "classes": list(class_names) if class_names is not None else [], "seed": seed,
                    "centring": "audio", "normalize": True},
            refit_all=True, vocabulary=vocabulary, encoders=dict(encoders or {}),
        )
        return cls(w, mu_s, mu_d, normalize=True, method="ridge", report=report)
