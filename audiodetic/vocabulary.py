"""``Vocabulary``: named class embeddings in a named embedding space.

A vocabulary is what the detector classifies against: ``C`` prompt names and a ``(C, D)`` float32 matrix of
L2-normalised rows. The detector space of the released Detic checkpoints is the 512-d CLIP ViT-B/32 text space
(:data:`~audiodetic.spaces.DETECTOR_SPACE`). Builders from sounds, text and images live in
:mod:`audiodetic.prompts`.
"""

from __future__ import annotations

import json
import os
from dataclasses import InitVar, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from audiodetic import io
from audiodetic.errors import InputTypeError, MissingFileError, VocabularyError
from audiodetic.spaces import DETECTOR_SPACE, default_space, l2_normalize

_FORMAT = "audiodetic-vocabulary/1"


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """``C`` named, L2-normalised class embeddings in one embedding space.

    Args:
        names: ``C`` prompt names (unique, non-empty strings).
        embeddings: ``(C, D)`` real matrix; rows are L2-normalised on construction when ``normalize`` is true,
            otherwise they must already have unit norm.
        space: the name of the embedding space (``DETECTOR_SPACE`` for the released Detic models).
    """

    names: tuple[str, ...]
    embeddings: np.ndarray
    space: str = DETECTOR_SPACE
    normalize: InitVar[bool] = True

    def __post_init__(self, normalize: bool) -> None:
        if isinstance(self.names, str):
            raise VocabularyError("Vocabulary names must be a sequence of strings, not one string")
        names = tuple(self.names)
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise VocabularyError(f"Vocabulary names must be non-empty strings, got {name!r}")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise VocabularyError(f"Vocabulary names must be unique; repeated: {duplicates[:5]}")
        embeddings = self.embeddings
        if hasattr(embeddings, "detach"):
            embeddings = embeddings.detach().cpu().numpy()
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2:
            raise VocabularyError(f"Vocabulary embeddings must be a (C, D) matrix, got shape {embeddings.shape}")
        if embeddings.shape[0] != len(names):
            raise VocabularyError(
                f"Vocabulary has {len(names)} names but {embeddings.shape[0]} embedding rows; they must match"
            )
        if not len(names):
            raise VocabularyError("Vocabulary must have at least one entry")
        if not np.issubdtype(embeddings.dtype, np.number) or not np.all(np.isfinite(embeddings)):
            raise VocabularyError("Vocabulary embeddings must be finite real numbers")
        norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
        if np.any(norms < 1e-8):
            bad = [names[i] for i in np.flatnonzero(norms < 1e-8)[:5]]
            raise VocabularyError(f"Vocabulary embeddings must not be zero vectors; zero rows: {bad}")
        if normalize:
            # Rows already of unit norm keep their exact values, so select/concat/save/load are bit-exact.
            off = np.abs(norms - 1.0) > 1e-6
            embeddings = np.array(embeddings, np.float32)
            embeddings[off] = l2_normalize(embeddings[off])
        elif np.any(np.abs(norms - 1.0) > 1e-3):
            raise VocabularyError("Vocabulary embeddings must have unit L2 norm (or pass normalize=True)")
        embeddings = np.ascontiguousarray(embeddings, np.float32)
        embeddings.setflags(write=False)
        if not isinstance(self.space, str) or not self.space:
            raise VocabularyError(f"Vocabulary space must be a non-empty string, got {self.space!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "embeddings", embeddings)

    # -- basics ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        """Embedding width ``D``."""
        return int(self.embeddings.shape[1])

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:5]) + (", ..." if len(self) > 5 else "")
        return f"Vocabulary([{shown}], C={len(self)}, D={self.dim}, space={self.space!r})"

    def check_compatible(self, *, dim: int, space: str | None = None) -> None:
        """Raise :class:`VocabularyError` unless this vocabulary has width ``dim`` (and ``space`` when given)."""
        if self.dim != dim:
            raise VocabularyError(
                f"vocabulary embeddings are {self.dim}-d ({self.space}) but the model expects {dim}-d"
                + (f" ({space})" if space else "")
            )
        if space is not None and self.space != space:
            raise VocabularyError(f"vocabulary is in space {self.space!r} but the model expects {space!r}")

    def as_tensor(self, device: Any = "cpu", dtype: Any = None) -> Any:
        """The embeddings as a ``(C, D)`` torch tensor (float32 unless ``dtype`` is given)."""
        import torch

        return torch.as_tensor(np.array(self.embeddings), dtype=dtype or torch.float32, device=device)

    # -- combination ----------------------------------------------------------------------------------------
    def concat(self, *others: "Vocabulary") -> "Vocabulary":
        """Entries of ``self`` followed by those of ``others`` (same space and width; names stay unique)."""
        parts = [self, *others]
        for other in others:
            if not isinstance(other, Vocabulary):
                raise VocabularyError(f"can only concatenate Vocabulary objects, got {type(other).__name__}")
            if other.space != self.space or other.dim != self.dim:
                raise VocabularyError(
                    f"cannot concatenate a {other.dim}-d {other.space!r} vocabulary with a {self.dim}-d "
                    f"{self.space!r} one"
                )
        return Vocabulary(
            names=tuple(name for part in parts for name in part.names),
            embeddings=np.concatenate([part.embeddings for part in parts]),
            space=self.space,
        )

    def __add__(self, other: "Vocabulary") -> "Vocabulary":
        return self.concat(other)

    def select(self, items: Iterable[int | str]) -> "Vocabulary":
        """A vocabulary of the given entries (indices or names), in the given order."""
        indices = []
        for item in items:
            if isinstance(item, str):
                if item not in self.names:
                    raise VocabularyError(f"{item!r} is not in the vocabulary; known: {list(self.names[:10])}...")
                indices.append(self.names.index(item))
            else:
                index = int(item)
                if not -len(self) <= index < len(self):
                    raise VocabularyError(f"index {index} is out of range for a vocabulary of {len(self)} entries")
                indices.append(index % len(self))
        if not indices:
            raise VocabularyError("select() needs at least one entry")
        return Vocabulary(tuple(self.names[i] for i in indices), self.embeddings[indices], space=self.space)

    def rename(self, names: Sequence[str]) -> "Vocabulary":
        """The same embeddings under new names."""
        return Vocabulary(tuple(names), self.embeddings, space=self.space)

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a small ``.npz`` (names, embeddings, space). Refuses to write over a non-vocabulary file."""
        path = Path(path)
        if path.suffix != ".npz":
            raise VocabularyError(f"vocabulary files end in .npz, got {path.name!r}")
        if path.exists() and not _is_vocabulary_file(path):
            raise VocabularyError(f"{path} exists and is not an audiodetic vocabulary; not overwriting it")
        meta = json.dumps({"format": _FORMAT, "space": self.space, "names": list(self.names)})
        return io.save_npz(path, {"embeddings": self.embeddings, "meta": np.array(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, names: Sequence[str] | None = None) -> "Vocabulary":
        """Read a vocabulary saved by :meth:`save` (``.npz``) or a Detic-style ``(C, D)`` ``.npy`` matrix.

        A ``.npy`` has no names: pass ``names`` (else ``class_0 .. class_{C-1}``); its space is assumed to be
        :data:`DETECTOR_SPACE` when ``D == 512``.
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"vocabulary file not found: {path}")
        if path.suffix.lower() == ".npy":
            return cls.from_npy(path, names=names)
        if path.suffix.lower() != ".npz":
            raise VocabularyError(f"vocabulary files are .npz (audiodetic) or .npy (C x D matrix), got {path.name!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                embeddings = np.array(data["embeddings"])
        except (OSError, KeyError, ValueError) as error:
            raise VocabularyError(f"{path} is not an audiodetic vocabulary file: {error}") from None
        if meta.get("format") != _FORMAT:
            raise VocabularyError(f"{path} has format {meta.get('format')!r}; this version reads {_FORMAT!r}")
        vocabulary = cls(tuple(meta["names"]), embeddings, space=meta["space"])
        return vocabulary.rename(names) if names is not None else vocabulary

    @classmethod
    def from_npy(cls, path: str | os.PathLike[str], *, names: Sequence[str] | None = None,
                 space: str | None = None) -> "Vocabulary":
        """Read Detic's custom-classifier format: a ``(C, D)`` float ``.npy`` (rows need not be normalised)."""
        path = Path(path)
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise VocabularyError(f"cannot read {path} as a .npy matrix: {error}") from None
        if matrix.ndim != 2:
            raise VocabularyError(f"{path} must hold a (C, D) matrix, got shape {matrix.shape}")
        if names is None:
            names = [f"class_{i}" for i in range(matrix.shape[0])]
        elif len(names) != matrix.shape[0]:
            raise VocabularyError(f"{path} has {matrix.shape[0]} rows but {len(names)} names were given")
        return cls(tuple(names), matrix, space=space or default_space(matrix.shape[1]))

    def to_npy(self, path: str | os.PathLike[str]) -> Path:
        """Write the ``(C, D)`` matrix in Detic's ``.npy`` format (names are not stored)."""
        return io.save_npy(path, np.array(self.embeddings))


def _is_vocabulary_file(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"])).get("format") == _FORMAT
    except Exception:  # any unreadable file is "not ours"
        return False


def as_vocabulary(value: Any, names: Sequence[str] | None = None) -> Vocabulary:
    """Accept a ``Vocabulary``, a ``(C, D)`` array/tensor/nested list, or a ``.npy``/``.npz`` path."""
    if isinstance(value, Vocabulary):
        return value if names is None else value.rename(names)
    if isinstance(value, (str, os.PathLike)):
        return Vocabulary.load(value, names=names)
    if not (hasattr(value, "detach") or isinstance(value, (np.ndarray, list, tuple))):
        raise InputTypeError(f"vocabulary must be an audiodetic Vocabulary, a .npz/.npy path or a (C, D) array, "
                             f"got {type(value).__name__}")
    matrix = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if matrix.ndim != 2:
        raise VocabularyError(f"a vocabulary matrix must be (C, D), got shape {matrix.shape}")
    if names is None:
        names = [f"class_{i}" for i in range(matrix.shape[0])]
    return Vocabulary(tuple(names), matrix, space=default_space(matrix.shape[1]))

