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

from typing import Any

from audiodetic.bridge._common import Bridge, FitReport, retrieval_scores
from audiodetic.bridge.files import check_bridge_spec, load_bridge
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.retrieval import RetrievalBridge

__all__ = [
    "Bridge", "FitReport", "LinearBridge", "RetrievalBridge", "check_bridge_spec", "load_bridge", "retrieval_scores",
    "fit_bridge", "default_bridge",
]


def __getattr__(name: str) -> Any:  # fit_bridge / default_bridge import the encoders lazily
    if name in ("fit_bridge", "default_bridge"):
        from audiodetic.bridge import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'audiodetic.bridge' has no attribute {name!r}")
