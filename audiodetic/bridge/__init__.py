"""Bridges from an audio encoder's space (ImageBind, 1024-d) into the detector's space (CLIP ViT-B/32 text, 512-d).

* :class:`LinearBridge` - ridge or orthogonal-Procrustes affine map fitted on paired text embeddings of a label
  vocabulary (:mod:`.linear`); :meth:`LinearBridge.with_audio_centring` centres sounds on their own cloud's mean
  (the modality-gap correction).
* :class:`RetrievalBridge` - softmax over the input's similarity to label embeddings, then the weighted sum of the
  same labels' detector-space embeddings (:mod:`.retrieval`); :meth:`RetrievalBridge.explain` says which labels.
* :class:`PairedBridge` - ridge fitted on labelled sound clips (clip -> CLIP text of its label), optionally with the
  label bank's text pairs (:mod:`.paired`).
* :func:`fit_bridge` / :func:`default_bridge` - encode a label bank with both text towers (:mod:`.label_bank`), fit,
  cache by content hash, or load a saved bridge (:mod:`.fit`). :mod:`.datasets`, :mod:`.clips`, :mod:`.evaluate`
  and :mod:`.report` score bridges on labelled audio (``audiodetic bridge eval``).

Every bridge has ``apply(x (B, D_src)) -> np.ndarray (B, D_dst)`` unit-norm float32, ``src_dim``, ``dst_dim``,
``report`` (:class:`FitReport` or ``None``), ``save(path)`` and ``load(path)`` (``.npz`` + ``.json`` report).
"""

from __future__ import annotations

from typing import Any

from audiodetic.bridge._common import Bridge, FitReport, retrieval_scores
from audiodetic.bridge.files import BRIDGE_CLASSES, check_bridge_spec, check_bridge_to_use, load_bridge
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.paired import PairedBridge
from audiodetic.bridge.retrieval import RetrievalBridge

__all__ = [
    "BRIDGE_CLASSES", "Bridge", "FitReport", "LinearBridge", "PairedBridge", "RetrievalBridge", "check_bridge_spec",
    "check_bridge_to_use", "load_bridge",
    "retrieval_scores",
    "fit_bridge", "default_bridge",
]


def __getattr__(name: str) -> Any:  # fit_bridge / default_bridge import the encoders lazily
    if name in ("fit_bridge", "default_bridge"):
        from audiodetic.bridge import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'audiodetic.bridge' has no attribute {name!r}")
