"""Embedding spaces, bridge kinds and the one rule for unit vectors: who lives where, and what needs a bridge.

Every embedding handed between components carries the name of its space. The detector classifies in
:data:`DETECTOR_SPACE` (512-d CLIP ViT-B/32 text embeddings, what released Detic checkpoints were trained against).
CLIP's image space (:data:`CLIP_IMAGE_SPACE`: CLIP ViT-B/32 image embeddings, Wav2CLIP's target) is joint with it,
so such vectors are used directly. Anything else - ImageBind's 1024-d space (:data:`IMAGEBIND_SPACE`) above all -
needs a bridge (:data:`BRIDGE_KINDS`) into the detector space.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiodetic.errors import InputError

DETECTOR_SPACE = "clip-vit-b32-text"
"""The 512-d space released Detic classifiers were trained against (CLIP ViT-B/32 text embeddings)."""
CLIP_IMAGE_SPACE = "clip-vit-b32-image"
"""CLIP ViT-B/32's image space (Wav2CLIP's target): joint with the text space, so usable without a bridge."""
IMAGEBIND_SPACE = "imagebind"
"""ImageBind's joint 1024-d space (``imagebind_huge``: audio, text and the other towers)."""
DIRECT_SPACES: tuple[str, ...] = (DETECTOR_SPACE, CLIP_IMAGE_SPACE)
"""Spaces whose vectors the detector can score without a bridge."""

BRIDGE_KINDS: tuple[str, ...] = ("linear", "retrieval", "paired")
"""Bridges audiodetic can fit, besides saved bridge files: ``"linear"`` (ridge/Procrustes on paired label-name
embeddings of the two text towers), ``"retrieval"`` (a softmax over label-name embeddings) and ``"paired"`` (ridge on
labelled sound clips: clip embedding -> CLIP text embedding of its label)."""
LABEL_BANK_KINDS: tuple[str, ...] = ("linear", "retrieval")
"""The kinds of :data:`BRIDGE_KINDS` made from label names alone, so they can be fitted on first use; the others need
labelled sounds and are fitted beforehand (``audiodetic bridge fit --kind paired --dataset DIR``)."""


def needs_bridge(space: str) -> bool:
    """Whether vectors of ``space`` must go through a bridge before the detector can score them."""
    return space not in DIRECT_SPACES


def default_space(dim: int) -> str:
    """The space assumed for a bare ``(C, dim)`` matrix: the detector space when ``dim == 512``."""
    return DETECTOR_SPACE if int(dim) == 512 else f"unknown-{int(dim)}d"


def check_bridge_kind(kind: Any, *, argument: str = "bridge") -> str:
    """``kind`` when it is one of :data:`BRIDGE_KINDS`; :class:`~audiodetic.errors.InputError` otherwise."""
    if not isinstance(kind, str) or kind not in BRIDGE_KINDS:
        raise InputError(f"{argument}: unknown bridge kind {kind!r}; choose one of {', '.join(BRIDGE_KINDS)} "
                         f"(or give a saved bridge .npz file)")
    return kind


def is_bridge_kind(value: Any) -> bool:
    """Whether ``value`` names a bridge kind (rather than, say, a saved bridge file)."""
    return isinstance(value, str) and value in BRIDGE_KINDS


def is_label_bank_kind(value: Any) -> bool:
    """Whether ``value`` names a kind that is fitted from label names alone (:data:`LABEL_BANK_KINDS`)."""
    return isinstance(value, str) and value in LABEL_BANK_KINDS


MIN_NORM = 1e-12
"""Rows shorter than this have no direction: :func:`l2_normalize` refuses them."""


def l2_normalize(x: Any, *, what: str = "embedding") -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm - the one normalisation rule for embeddings handed between components.

    Args:
        x: ``(N, D)`` matrix (``N`` may be 0) or one ``(D,)`` vector (numpy array, list or torch tensor) of real
            numbers.
        what: what the rows are, for the error message.

    Returns:
        The same shape, unit rows. float32 input stays float32 (computed in float32, so already-unit float32 rows
        come back bit-identical up to rounding of the division); every other input is computed and returned in
        float64.

    Raises:
        InputError: a row is non-finite or shorter than :data:`MIN_NORM` (a zero vector has no direction to use;
        it is never silently kept as zero or inflated).
    """
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputError(f"{what}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32 if array.dtype == np.float32 else np.float64, copy=False)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise InputError(f"{what}: expected a (D,) vector or an (N, D) matrix with D >= 1, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{what}: contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    if np.any(norms < MIN_NORM):
        rows = np.flatnonzero(norms.reshape(-1) < MIN_NORM)[:5].tolist()
        where = "the vector is a zero vector" if array.ndim == 1 else f"rows {rows} are zero vectors"
        raise InputError(f"{what}: {where} (norm < {MIN_NORM}): no direction to use")
    return array / norms
