"""Bridges from an audio encoder's space (ImageBind, 1024-d) into the detector's space (CLIP ViT-B/32 text, 512-d).

* :class:`LinearBridge` - ridge or orthogonal-Procrustes affine map fitted on paired text embeddings of a label
  vocabulary (:mod:`.linear`).
* :class:`RetrievalBridge` - softmax over the input's similarity to label embeddings, then the weighted sum of the
  same labels' detector-space embeddings (:mod:`.retrieval`).
* :func:`fit_bridge` / :func:`default_bridge` - encode a label vocabulary with both text encoders, fit, cache by
  content hash, or load a saved bridge (:mod:`.fit`).

Every bridge has ``apply(x (B, D_src)) -> np.ndarray (B, D_dst)`` unit-norm float32, ``src_dim``, ``dst_dim``,
``report`` (:class:`FitReport` or ``None``), ``save(path)`` and ``load(path)`` (``.npz`` + ``.json`` report).
"""

from __future__ import annotations

import os
from typing import Any, Union

from audiodetic.bridge._common import FitReport, load_npz, retrieval_scores
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.retrieval import RetrievalBridge

Bridge = Union[LinearBridge, RetrievalBridge]

__all__ = [
    "Bridge", "FitReport", "LinearBridge", "RetrievalBridge", "load_bridge", "retrieval_scores", "fit_bridge",
    "default_bridge",
]


def load_bridge(path: str | os.PathLike[str]) -> Bridge:
    """Read any bridge saved by ``save`` (the kind is stored in the file)."""
    meta, _ = load_npz(path)
    kinds = {"linear": LinearBridge, "retrieval": RetrievalBridge}
    if meta.get("kind") not in kinds:
        raise ValueError(f"{path}: unknown bridge kind {meta.get('kind')!r}; known: {sorted(kinds)}")
    return kinds[meta["kind"]].load(path)


def __getattr__(name: str) -> Any:  # fit_bridge / default_bridge import the encoders lazily
    if name in ("fit_bridge", "default_bridge"):
        from audiodetic.bridge import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'audiodetic.bridge' has no attribute {name!r}")
