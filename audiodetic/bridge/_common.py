"""Shared pieces of the bridges: the :class:`Bridge` protocol, input checks, train/held-out splits, retrieval
metrics, the fit report, file I/O.

A *bridge* maps embeddings from a source space (ImageBind, ``D_src`` = 1024) into the detector space
(CLIP ViT-B/32 text, ``D_dst`` = 512). Every bridge returns unit-norm float32 rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from audiodetic import io
from audiodetic.errors import CheckpointError, InputError, MissingFileError
from audiodetic.spaces import l2_normalize

FORMAT = "audiodetic-bridge/1"


@runtime_checkable
class Bridge(Protocol):
    """What every bridge offers: ``apply`` maps ``(B, src_dim)`` source-space rows (array or tensor; a single
    ``(src_dim,)`` row is read as ``B = 1``) to ``(B, dst_dim)`` unit-norm float32 detector-space rows."""

    kind: str
    report: "FitReport | None"

    @property
    def src_dim(self) -> int: ...

    @property
    def dst_dim(self) -> int: ...

    def apply(self, x: Any) -> np.ndarray: ...

    def save(self, path: str | os.PathLike[str]) -> Any: ...


def as_matrix(x: Any, name: str, *, dim: int | None = None) -> np.ndarray:
    """``x`` (array or tensor, ``(N, D)`` or a single ``(D,)`` row) as a finite float64 ``(N, D)`` matrix."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{name} must be a non-empty (N, D) matrix, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise InputError(f"{name} has width {x.shape[1]} but this bridge expects {dim}-d input")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} contains NaN or infinite values")
    return x


def check_pairs(src: Any, dst: Any) -> tuple[np.ndarray, np.ndarray]:
    """Paired training matrices ``src (N, D_src)``, ``dst (N, D_dst)`` as float64, with clear errors."""
    src = as_matrix(src, "src")
    dst = as_matrix(dst, "dst")
    if src.shape[0] != dst.shape[0]:
        raise InputError(f"src has {src.shape[0]} rows but dst has {dst.shape[0]}; they must be paired row by row")
    if src.shape[0] < 2:
        raise InputError(f"fitting a bridge needs at least 2 pairs, got {src.shape[0]}")
    return src, dst


def split_indices(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``(train, held_out)`` index arrays; ``holdout`` is a fraction in ``[0, 1)``.

    An empty held-out set is returned when ``holdout`` is 0 or when fewer than 2 rows would be held out.
    """
    if not 0.0 <= float(holdout) < 1.0:
        raise InputError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_out = int(round(n * holdout))
    if n_out < 2 or n - n_out < 2:
        return np.sort(order), np.zeros(0, dtype=np.int64)
    return np.sort(order[n_out:]), np.sort(order[:n_out])


def retrieval_scores(mapped: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """How often row ``i`` of ``mapped`` is nearest (cosine) to row ``i`` of ``targets`` among all target rows.

    Args:
        mapped: ``(N, D)`` predictions (any norm). targets: ``(N, D)`` true embeddings of the same items.
    Returns: ``{"top1": .., "top5": .., "mean_cosine": ..}`` (fractions in [0, 1]; cosine of each pair, averaged).
    Ties count against the prediction (the true row must beat every other row strictly).
    """
    a = l2_normalize(np.asarray(mapped, np.float64), what="mapped rows")
    b = l2_normalize(np.asarray(targets, np.float64), what="target rows")
    out: dict[str, float] = {}
    pair = np.einsum("nd,nd->n", a, b)
    rank = np.zeros(len(a), dtype=np.int64)
    for start in range(0, len(a), 1024):  # blocks keep the similarity matrix small
        sims = a[start:start + 1024] @ b.T
        rank[start:start + 1024] = (sims >= pair[start:start + 1024, None]).sum(axis=1) - 1
    for k in ks:
        out[f"top{k}"] = float(np.mean(rank < k))
    out["mean_cosine"] = float(np.mean(pair))
    return out


def classification_scores(mapped: np.ndarray, class_rows: np.ndarray, labels: np.ndarray,
                          ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Zero-shot classification: each row of ``mapped`` against every class row, by cosine.

    Args:
        mapped: ``(N, D)`` clip embeddings in the classes' space (any norm). class_rows: ``(C, D)`` class
            embeddings. labels: ``(N,)`` true class indices into ``class_rows``.
    Returns: ``{"top1", "top5", "mean_class_acc", "mean_cosine"}``: fractions of clips whose class ranks within
    k (ties count against the prediction), top-1 accuracy averaged over the classes present, and the mean cosine
    of each clip with its own class.
    """
    a = l2_normalize(np.asarray(mapped, np.float64), what="mapped clips")
    b = l2_normalize(np.asarray(class_rows, np.float64), what="class embeddings")
    labels = np.asarray(labels, np.int64)
    sims = a @ b.T
    own = sims[np.arange(len(a)), labels]
    rank = (sims >= own[:, None]).sum(axis=1) - 1
    out = {f"top{k}": float(np.mean(rank < k)) for k in ks}
    hits = rank < 1
    out["mean_class_acc"] = float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))
    out["mean_cosine"] = float(np.mean(own))
    return out


@dataclass(frozen=True)
class FitReport:
    """What a fitted bridge was fitted on and how well it retrieves held-out pairs.

    ``held_out`` holds ``top1``/``top5``/``mean_cosine`` of held-out pairs mapped by a bridge fitted on the training
    split only (retrieval among the held-out targets); ``train`` the same on (up to 4096) training pairs. The saved
    bridge itself is refitted on all ``n_pairs`` pairs when ``refit_all`` is true.
    """

    kind: str
    method: str
    src_dim: int
    dst_dim: int
    n_pairs: int
    n_train: int
    n_held_out: int
    held_out: Mapping[str, float]
    train: Mapping[str, float]
    params: Mapping[str, Any] = field(default_factory=dict)
    refit_all: bool = True
    vocabulary: str = ""
    encoders: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FitReport":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def summary(self) -> str:
        """One human-readable line."""
        held = self.held_out
        text = f"{self.kind}/{self.method}: {self.n_pairs} pairs, {self.src_dim}->{self.dst_dim}"
        if held:
            text += (f"; held-out ({self.n_held_out}) top-1 {held['top1']:.3f}, top-5 {held['top5']:.3f}, "
                     f"cosine {held['mean_cosine']:.3f}")
        if self.train:
            text += f"; train top-1 {self.train['top1']:.3f}"
        stats = self.params.get("audio_stats")
        if self.params.get("centring") == "audio" and isinstance(stats, Mapping):
            text += f"; sounds centred on the audio mean of {stats.get('n_clips')} clips ({stats.get('source')})"
        elif self.params.get("centring") == "text":
            text += "; sounds centred on the text mean"
        return text


def train_stats(mapped: np.ndarray, targets: np.ndarray, limit: int = 4096, seed: int = 0) -> dict[str, float]:
    """:func:`retrieval_scores` on at most ``limit`` rows (a fixed random subset)."""
    if len(mapped) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(mapped), limit, replace=False))
        mapped, targets = mapped[keep], targets[keep]
    return retrieval_scores(mapped, targets)


# ------------------------------------------------------------------------------------------------------ files
def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
             report: FitReport | None) -> Path:
    """Write ``path`` (``.npz``: arrays + JSON meta) and ``path`` with suffix ``.json`` (the report), atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"bridge files end in .npz, got {path.name!r}")
    payload = dict(meta, format=FORMAT, report=report.to_dict() if report else None)
    io.save_npz(path, dict(meta=np.array(json.dumps(payload)), **arrays), make_parents=True)
    if report is not None:
        io.write_json(path.with_suffix(".json"), report.to_dict())
    return path


def load_npz(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a bridge file: ``(meta, arrays)``. Raises ``MissingFileError`` / ``CheckpointError`` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"bridge file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: np.array(data[k]) for k in data.files if k != "meta"}
    except (OSError, KeyError, ValueError, EOFError) as error:
        raise CheckpointError(f"{path} is not an audiodetic bridge file: {error}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {meta.get('format')!r}; this version reads {FORMAT!r}")
    return meta, arrays


def finish_output(y: np.ndarray) -> np.ndarray:
    """Bridge output: unit-norm float32 rows."""
    return l2_normalize(np.asarray(y, np.float64), what="bridge output").astype(np.float32)
