"""Bridge specs and files: what a ``bridge=`` argument may be (a kind to fit, or a saved file), and reading any
saved bridge back.

A *bridge spec* is one of :data:`~audiodetic.spaces.BRIDGE_KINDS` (fitted or loaded from the cache by
:func:`audiodetic.bridge.default_bridge` when first needed) or the path of a bridge saved by ``save`` (``.npz``,
the kind stored inside).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from audiodetic.bridge._common import load_npz
from audiodetic.bridge.linear import LinearBridge
from audiodetic.bridge.paired import PairedBridge
from audiodetic.bridge.retrieval import RetrievalBridge
from audiodetic.errors import CheckpointError, InputError, InputTypeError, MissingFileError
from audiodetic.spaces import BRIDGE_KINDS, is_bridge_kind, is_label_bank_kind

BRIDGE_CLASSES: dict[str, type] = {cls.kind: cls for cls in (LinearBridge, RetrievalBridge, PairedBridge)}
"""The class that reads each kind of :data:`audiodetic.spaces.BRIDGE_KINDS` from a file."""

PAIRED_HINT = ("a paired bridge is fitted on labelled clips beforehand: `audiodetic bridge fit --kind paired "
               "--dataset DIR --output paired.npz`, then give that file as the bridge")


def check_bridge_spec(spec: Any, *, argument: str = "bridge") -> str | Path:
    """``spec`` as a bridge kind (``str``, one of :data:`BRIDGE_KINDS`) or a saved bridge file (``Path``, exists).

    Raises:
        InputError: a bare word that is no bridge kind (``"quadratic"``).
        MissingFileError: a file name (``.npz`` or a path with a folder) that does not exist.
        InputTypeError: ``spec`` is not a string or path.
    """
    if is_bridge_kind(spec):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise InputTypeError(f"{argument}: expected a bridge kind ({', '.join(BRIDGE_KINDS)}) or a saved bridge "
                             f"file, got {type(spec).__name__}")
    path = Path(spec)
    if path.is_file():
        return path
    if path.suffix == ".npz" or len(path.parts) > 1 or isinstance(spec, os.PathLike):
        raise MissingFileError(f"{argument}: bridge file not found: {path}")
    raise InputError(f"{argument}: unknown bridge kind {os.fspath(spec)!r}; choose one of "
                     f"{', '.join(BRIDGE_KINDS)} or give a saved bridge .npz file")


def check_bridge_to_use(spec: Any, *, argument: str = "bridge") -> str | Path:
    """:func:`check_bridge_spec`, and a kind must also be one that is made on first use from label names
    (:data:`~audiodetic.spaces.LABEL_BANK_KINDS`): a bare ``paired`` is refused with how to fit one. What
    ``load(bridge=)``, ``--bridge`` and a collection's settings accept, checked before any model loads."""
    checked = check_bridge_spec(spec, argument=argument)
    if isinstance(checked, str) and not is_label_bank_kind(checked):
        raise InputError(f"{argument} {checked!r}: {PAIRED_HINT}")
    return checked


def load_bridge(path: str | os.PathLike[str]) -> Any:
    """Read any bridge saved by ``save`` (the kind is stored in the file)."""
    meta, _ = load_npz(path)
    kind = meta.get("kind")
    if kind not in BRIDGE_CLASSES:
        raise CheckpointError(f"{path}: unknown bridge kind {kind!r}; known: {', '.join(BRIDGE_KINDS)}")
    return BRIDGE_CLASSES[kind].load(path)
