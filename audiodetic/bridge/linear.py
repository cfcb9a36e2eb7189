"""Linear bridge: an affine map fitted on paired embeddings (ridge regression or orthogonal Procrustes).

With ``normalize=True`` (the default) both sides are L2-normalised first, so only directions matter (ImageBind
outputs carry a logit scale as their norm). With ``center=True`` the means are removed before fitting and the
target mean is added back: ``y = normalize(((x / |x|) - mu_src) @ W + mu_dst)``.

* ``ridge``: ``W = argmin |S W - D|^2 + alpha |W|^2`` (``alpha = 0``: least squares; ``alpha="auto"`` picks the
  best of :data:`ALPHA_GRID` by retrieval top-1 on a validation split carved out of the training pairs).
* ``procrustes``: ``W = s * U V^T`` from the SVD ``S^T D = U Σ V^T`` (orthonormal columns, ``D_src >= D_dst``;
  rows otherwise) with the least-squares scale ``s = tr(Σ) / |S U V^T|^2`` (the scale matters because of ``mu_dst``).
  ``U V^T`` maximises ``tr(W^T S^T D)``; it is the exact least-squares map when the centred source is isotropic
  (``S^T S ∝ I``) or the map is square.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Mapping

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

METHODS = ("ridge", "procrustes")
ALPHA_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _auto_alpha(src: np.ndarray, dst: np.ndarray, center: bool, seed: int) -> float:
    """The ridge ``alpha`` of :data:`ALPHA_GRID` with the best (top-1, mean cosine) on a 20% validation split."""
    fit_idx, val_idx = split_indices(len(src), 0.2, seed + 1)
    if not len(val_idx):
        return 1.0
    best, best_score = 1.0, (-1.0, -1.0)
    for alpha in ALPHA_GRID:
        weight, mu_s, mu_d = _solve(src[fit_idx], dst[fit_idx], "ridge", alpha, center)
        scores = retrieval_scores((src[val_idx] - mu_s) @ weight + mu_d, dst[val_idx])
        score = (scores["top1"], scores["mean_cosine"])
        if score > best_score:
            best, best_score = alpha, score
    return best


def _solve(src: np.ndarray, dst: np.ndarray, method: str, alpha: float, center: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W (D_src, D_dst), mu_src, mu_dst)`` for float64 inputs (already normalised when asked)."""
    mu_s = src.mean(axis=0) if center else np.zeros(src.shape[1])
    mu_d = dst.mean(axis=0) if center else np.zeros(dst.shape[1])
    s, d = src - mu_s, dst - mu_d
    if method == "ridge":
        if alpha > 0:
            gram = s.T @ s
            gram[np.diag_indices_from(gram)] += alpha
            weight = np.linalg.solve(gram, s.T @ d)
        else:
            weight = np.linalg.lstsq(s, d, rcond=None)[0]
    else:
        u, sigma, vt = np.linalg.svd(s.T @ d, full_matrices=False)
        rotation = u @ vt
        scale = float(sigma.sum() / max(np.sum((s @ rotation) ** 2), 1e-12))
        weight = scale * rotation
    return weight, mu_s, mu_d


class LinearBridge:
    """``y = normalize((prep(x) - src_mean) @ weight + dst_mean)``: ``(B, D_src) -> (B, D_dst)`` unit-norm float32.

    Args:
        weight: ``(D_src, D_dst)`` matrix. src_mean: ``(D_src,)``. dst_mean: ``(D_dst,)``.
        normalize: L2-normalise inputs first (``prep``); must match how the map was fitted.
        method: how ``weight`` was obtained (informational). report: the :class:`FitReport` of the fit, if any.
    """

    kind = "linear"

    def __init__(self, weight: Any, src_mean: Any | None = None, dst_mean: Any | None = None, *,
                 normalize: bool = True, method: str = "custom", report: FitReport | None = None) -> None:
        weight = as_matrix(weight, "weight")
        src_mean = np.zeros(weight.shape[0]) if src_mean is None else np.asarray(src_mean, np.float64).reshape(-1)
        dst_mean = np.zeros(weight.shape[1]) if dst_mean is None else np.asarray(dst_mean, np.float64).reshape(-1)
        if src_mean.shape != (weight.shape[0],) or dst_mean.shape != (weight.shape[1],):
            raise InputError(
                f"src_mean {src_mean.shape} / dst_mean {dst_mean.shape} do not match weight {weight.shape}"
            )
        self.weight = weight.astype(np.float32)
        self.src_mean = src_mean.astype(np.float32)
        self.dst_mean = dst_mean.astype(np.float32)
        self.normalize = bool(normalize)
        self.method = method
        self.report = report

    @property
    def src_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dst_dim(self) -> int:
        return int(self.weight.shape[1])

    def __repr__(self) -> str:
        return f"LinearBridge({self.method}, {self.src_dim}->{self.dst_dim})"

    # ------------------------------------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, src: Any, dst: Any, *, method: str = "ridge", alpha: float | str = 1.0, center: bool = True,
            normalize: bool = True, holdout: float = 0.1, seed: int = 0, refit_all: bool = True,
            vocabulary: str = "", encoders: Mapping[str, str] | None = None) -> "LinearBridge":
        """Fit on paired rows ``src (N, D_src)`` and ``dst (N, D_dst)`` (row ``i`` of each = the same item).

        A fraction ``holdout`` of the pairs (random, ``seed``) is held out; the report's ``held_out`` scores map
        those through a bridge fitted on the rest and retrieve among the held-out targets by cosine. With
        ``refit_all`` the returned bridge is then refitted on all pairs (the report still describes the split).
        """
        if method not in METHODS:
            raise InputError(f"unknown linear bridge method {method!r}; choose one of {METHODS}")
        auto = isinstance(alpha, str) and alpha == "auto"
        if not auto and (isinstance(alpha, (str, bool)) or not np.isfinite(alpha) or alpha < 0):
            raise InputError(f"alpha must be a finite number >= 0 or 'auto', got {alpha!r}")
        src, dst = check_pairs(src, dst)
        if normalize:
            src, dst = l2_normalize(src), l2_normalize(dst)
        train, held = split_indices(len(src), holdout, seed)
        if auto:
            alpha = _auto_alpha(src[train], dst[train], center, seed) if method == "ridge" else 0.0
        weight, mu_s, mu_d = _solve(src[train], dst[train], method, float(alpha), center)
        split_bridge = cls(weight, mu_s, mu_d, normalize=False, method=method)
        held_scores = retrieval_scores(split_bridge._map(src[held]), dst[held]) if len(held) else {}
        train_scores = train_stats(split_bridge._map(src[train]), dst[train], seed=seed)
        if refit_all and len(held):
            weight, mu_s, mu_d = _solve(src, dst, method, float(alpha), center)
        report = FitReport(
            kind=cls.kind, method=method, src_dim=src.shape[1], dst_dim=dst.shape[1], n_pairs=len(src),
            n_train=len(train), n_held_out=len(held), held_out=held_scores, train=train_scores,
            params={"alpha": float(alpha), "alpha_auto": auto, "center": center, "normalize": normalize,
                    "holdout": holdout, "seed": seed, "centring": "text" if center else "none"},
            refit_all=refit_all, vocabulary=vocabulary, encoders=dict(encoders or {}),
        )
        return cls(weight, mu_s, mu_d, normalize=normalize, method=method, report=report)

    @classmethod
    def random(cls, src_dim: int, dst_dim: int = 512, *, seed: int = 0) -> "LinearBridge":
        """A random semi-orthogonal map (for tests and demos without weights)."""
        if src_dim < 1 or dst_dim < 1:
            raise InputError(f"dimensions must be positive, got {src_dim} -> {dst_dim}")
        gaussian = np.random.default_rng(seed).standard_normal((max(src_dim, dst_dim), min(src_dim, dst_dim)))
        q = np.linalg.qr(gaussian)[0]
        weight = q if src_dim >= dst_dim else q.T
        return cls(weight, normalize=True, method="random")

    @property
    def centring(self) -> str:
        """What inputs are centred with: ``"text"`` (the mean of the fitted source rows, e.g. ImageBind text),
        ``"audio"`` (the mean of a cloud of sound clips, :meth:`with_audio_centring`), ``"none"`` or ``"custom"``."""
        params = self.report.params if self.report is not None else {}
        return str(params.get("centring", "text" if params.get("center", False) else "custom"))

    def with_audio_centring(self, audio: Any, *, source: str = "") -> "LinearBridge":
        """The same map, with inputs centred on the mean of ``audio`` instead of the fitted source mean.

        ImageBind's audio embeddings sit in another cone than its text embeddings (the modality gap), so a map
        fitted on text pairs, centred with the text mean, shifts every sound by the gap. Centring sounds with their
        own cloud's mean removes that shift. Args: ``audio (N, D_src)`` unlabelled clip embeddings (any norm;
        normalised first like every input when ``normalize``), ``source`` where they came from (for the report).
        Returns a new bridge whose report says ``centring="audio"`` with the clip count and source.
        """
        rows = as_matrix(audio, "audio clips for the centring mean", dim=self.src_dim)
        if len(rows) < 2:
            raise InputError(f"the audio centring mean needs at least 2 clips, got {len(rows)}")
        mean = (l2_normalize(rows) if self.normalize else rows).mean(axis=0)
        report = self.report
        if report is not None:
            params = dict(report.params, centring="audio", audio_stats={"source": source, "n_clips": len(rows)})
            report = replace(report, params=params)
        return type(self)(self.weight, mean, self.dst_mean, normalize=self.normalize, method=self.method,
                          report=report)

    # -------------------------------------------------------------------------------------------------- apply
    def _map(self, x: np.ndarray) -> np.ndarray:
        if self.normalize:
            x = l2_normalize(x)
        return (x - self.src_mean) @ self.weight.astype(np.float64) + self.dst_mean

    def apply(self, x: Any) -> np.ndarray:
        """Map ``x`` (``(B, D_src)`` or ``(D_src,)``, array or tensor) to ``(B, D_dst)`` unit-norm float32 rows."""
        return finish_output(self._map(as_matrix(x, "bridge input", dim=self.src_dim)))

    __call__ = apply

    # -------------------------------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> "os.PathLike[str]":
        """Write ``path`` (``.npz``) and its fit report beside it (``.json``), atomically."""
        meta = {"kind": self.kind, "method": self.method, "normalize": self.normalize}
        arrays = {"weight": self.weight, "src_mean": self.src_mean, "dst_mean": self.dst_mean}
        return save_npz(path, arrays, meta, self.report)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "LinearBridge":
        meta, arrays = load_npz(path)
        if meta.get("kind") != cls.kind:
            raise CheckpointError(f"{path} holds a {meta.get('kind')!r} bridge, not a {cls.kind} one")
        report = FitReport.from_dict(meta["report"]) if meta.get("report") else None
        return cls(arrays["weight"], arrays["src_mean"], arrays["dst_mean"], normalize=meta["normalize"],
                   method=meta["method"], report=report)
