"""Retrieval bridge: describe a sound by the labels it is closest to, then take those labels' detector embeddings.

For an input ``x`` (``D_src``) and ``L`` labels embedded on both sides (``label_src (L, D_src)``, e.g. ImageBind text
embeddings, and ``label_dst (L, D_dst)``, e.g. CLIP ViT-B/32 text embeddings, rows L2-normalised on construction):

``s = cos(x, label_src)`` -> keep the ``top_k`` largest -> ``w = softmax(s / temperature)`` ->
``y = normalize(w @ label_dst[top_k])``.

The output is a convex combination of real detector-space text embeddings, so it stays on (near) the text manifold
the detector was trained on.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic.bridge._common import (
    FitReport,
    as_matrix,
    check_pairs,
    finish_output,
    load_npz,
    retrieval_scores,
    save_npz,
    split_indices,
    train_stats,
)
from audiodetic.errors import CheckpointError, InputError
from audiodetic.spaces import l2_normalize


class RetrievalBridge:
    """Softmax-weighted label retrieval from ``D_src`` into ``D_dst``.

    Args:
        label_src: ``(L, D_src)`` label embeddings in the input space. label_dst: ``(L, D_dst)`` the same labels in
            the detector space. names: ``L`` label names (for :meth:`explain`; default ``label_0 ..``).
        temperature: softmax temperature on cosine similarities (> 0). top_k: labels mixed per input (>= 1).
    """

    kind = "retrieval"
    method = "softmax-top-k"

    def __init__(self, label_src: Any, label_dst: Any, names: Sequence[str] | None = None, *,
                 temperature: float = 0.05, top_k: int = 10, report: FitReport | None = None) -> None:
        src, dst = as_matrix(label_src, "label_src"), as_matrix(label_dst, "label_dst")
        if len(src) != len(dst):
            raise InputError(f"label_src has {len(src)} rows but label_dst has {len(dst)}")
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
            raise InputError(f"temperature must be a finite number > 0, got {temperature!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be an integer >= 1, got {top_k!r}")
        names = tuple(f"label_{i}" for i in range(len(src))) if names is None else tuple(str(n) for n in names)
        if len(names) != len(src):
            raise InputError(f"{len(names)} names given for {len(src)} labels")
        self.label_src = l2_normalize(src).astype(np.float32)
        self.label_dst = l2_normalize(dst).astype(np.float32)
        self.names = names
        self.temperature = float(temperature)
        self.top_k = int(min(top_k, len(src)))
        self.report = report

    @property
    def src_dim(self) -> int:
        return int(self.label_src.shape[1])

    @property
    def dst_dim(self) -> int:
        return int(self.label_dst.shape[1])

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (f"RetrievalBridge(L={len(self)}, {self.src_dim}->{self.dst_dim}, "
                f"temperature={self.temperature}, top_k={self.top_k})")

    # -------------------------------------------------------------------------------------------------- apply
    def label_weights(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(indices (B, k) int64, weights (B, k) float64)``: the chosen labels per input, best first."""
        x = l2_normalize(as_matrix(x, "bridge input", dim=self.src_dim))
        sims = x @ self.label_src.T.astype(np.float64)  # (B, L)
        k = self.top_k
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.tile(
            np.arange(sims.shape[1]), (len(x), 1))
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        top, top_sims = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)
        logits = top_sims / self.temperature
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return top, weights / weights.sum(axis=1, keepdims=True)

    def apply(self, x: Any) -> np.ndarray:
        """Map ``x`` (``(B, D_src)`` or ``(D_src,)``) to ``(B, D_dst)`` unit-norm float32 rows."""
        top, weights = self.label_weights(x)
        mixed = np.einsum("bk,bkd->bd", weights, self.label_dst[top].astype(np.float64))  # widen only the k rows used
        return finish_output(mixed)

    __call__ = apply

    def explain(self, x: Any) -> list[list[tuple[str, float]]]:
        """Per input row, the ``(label name, weight)`` pairs it was built from, heaviest first."""
        top, weights = self.label_weights(x)
        return [[(self.names[i], float(w)) for i, w in zip(row_i, row_w)] for row_i, row_w in zip(top, weights)]

    # ------------------------------------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, label_src: Any, label_dst: Any, names: Sequence[str] | None = None, *, temperature: float = 0.05,
            top_k: int = 10, holdout: float = 0.1, seed: int = 0, vocabulary: str = "",
            encoders: Mapping[str, str] | None = None) -> "RetrievalBridge":
        """Build over all labels, with a report of how well it generalises to labels it does not contain.

        The report's ``held_out`` scores come from a bridge built on the training split only: each held-out label's
        ``label_src`` row is mapped and must retrieve its own ``label_dst`` row among the held-out ones (cosine).
        ``train`` scores map training labels through that bridge (near 1.0 with a sharp temperature: they are
        in the bank). The returned bridge always contains every label.
        """
        src, dst = check_pairs(label_src, label_dst)
        train, held = split_indices(len(src), holdout, seed)
        part = cls(src[train], dst[train], temperature=temperature, top_k=top_k)
        held_scores = retrieval_scores(part.apply(src[held]), dst[held]) if len(held) else {}
        train_scores = train_stats(part.apply(src[train]), dst[train], seed=seed)
        report = FitReport(
            kind=cls.kind, method=cls.method, src_dim=src.shape[1], dst_dim=dst.shape[1], n_pairs=len(src),
            n_train=len(train), n_held_out=len(held), held_out=held_scores, train=train_scores,
            params={"temperature": float(temperature), "top_k": int(top_k), "holdout": holdout, "seed": seed},
            refit_all=True, vocabulary=vocabulary, encoders=dict(encoders or {}),
        )
        return cls(src, dst, names, temperature=temperature, top_k=top_k, report=report)

    # -------------------------------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> "os.PathLike[str]":
        """Write ``path`` (``.npz``: label banks + names) and its fit report (``.json``), atomically."""
        meta = {"kind": self.kind, "names": list(self.names), "temperature": self.temperature, "top_k": self.top_k}
        return save_npz(path, {"label_src": self.label_src, "label_dst": self.label_dst}, meta, self.report)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "RetrievalBridge":
        meta, arrays = load_npz(path)
        if meta.get("kind") != cls.kind:
            raise CheckpointError(f"{path} holds a {meta.get('kind')!r} bridge, not a retrieval one")
        report = FitReport.from_dict(meta["report"]) if meta.get("report") else None
        return cls(arrays["label_src"], arrays["label_dst"], meta["names"], temperature=meta["temperature"],
                   top_k=meta["top_k"], report=report)
