"""Label vocabularies (class-name lists) for fitting bridges and for built-in detector vocabularies.

Data files beside this module, one name per line, in each dataset's official class order:

=============  =====  ==================================================================================
name           count  content
=============  =====  ==================================================================================
lvis           1203   LVIS v1 category names (``aerosol_can``, ...; ids 1..1203 in order)
coco           80     COCO detection ("thing") classes in detectron2's order
objects365     365    Objects365 names as Detic spells them (its ``names_fix`` spelling corrections)
openimages     500    Open Images (OID v4 challenge) boxable classes in Detic's order; two names repeat
audioset       527    AudioSet ontology display names in the 527-class label order
vggsound       310    VGGSound class names (alphabetical)
esc50          50     ESC-50 classes in target order (0..49)
=============  =====  ==================================================================================

``imagenet21k`` is read at run time from timm's own copy of the ImageNet-21k synset list and WordNet lemmas
(the first lemma of each of the 21,843 synsets), not copied here.

:func:`load_labels` returns names cleaned for prompting (``_`` -> space, whitespace collapsed) and deduplicated
(first occurrence wins, case-insensitive); :func:`dataset_names` returns a file's exact lines.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from importlib import resources
from pathlib import Path

from audiodetic.errors import InputError, MissingFileError

FILE_SETS = ("lvis", "coco", "objects365", "openimages", "audioset", "vggsound", "esc50")
LABEL_SETS = FILE_SETS + ("imagenet21k",)
DEFAULT_FIT_SETS = ("lvis", "coco", "objects365", "openimages", "audioset", "vggsound", "esc50")
"""What ``audiodetic bridge fit`` encodes by default (about 2.4k distinct names; add ``imagenet21k`` for ~23k, which
takes the ImageBind text tower much longer on a CPU)."""


@functools.lru_cache(maxsize=None)
def dataset_names(name: str) -> tuple[str, ...]:
    """The exact class names of one label set, in its official order (duplicates kept)."""
    if name == "imagenet21k":
        return _imagenet21k_lemmas()
    if name not in FILE_SETS:
        raise InputError(f"unknown label set {name!r}; available: {', '.join(LABEL_SETS)}")
    text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line.strip())


def clean_name(name: str) -> str:
    """A class name as a prompt: underscores to spaces, whitespace collapsed and trimmed."""
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip()


def load_labels(name: str) -> list[str]:
    """Cleaned, deduplicated names of one or several label sets (``"lvis"`` or ``"lvis+coco+audioset"``)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"label set name must be a non-empty string, got {name!r}")
    seen: set[str] = set()
    out: list[str] = []
    for part in name.split("+"):
        for raw in dataset_names(part.strip()):
            cleaned = clean_name(raw)
            if cleaned and cleaned.lower() not in seen:
                seen.add(cleaned.lower())
                out.append(cleaned)
    return out


def _imagenet21k_lemmas() -> tuple[str, ...]:
    """First WordNet lemma of every ImageNet-21k (fall 2011, 21,843 classes) synset, from timm's data files."""
    spec = importlib.util.find_spec("timm")  # locate timm without importing it (and torch)
    try:
        if spec is None or not spec.submodule_search_locations:
            raise MissingFileError("timm is not installed")
        info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
        synsets = (info / "imagenet21k_goog_synsets.txt").read_text().split()
        lemma_lines = (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
    except OSError as error:
        raise InputError(f"the imagenet21k label set needs timm's ImageNet data files ({error})") from None
    lemmas = dict(line.split("\t", 1) for line in lemma_lines if "\t" in line)
    return tuple(lemmas[s].split(",")[0].strip() for s in synsets if s in lemmas)
