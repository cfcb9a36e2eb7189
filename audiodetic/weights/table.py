"""The table of model files audiodetic knows: where each comes from, what it is, under which licence.

The table is plain data (:data:`MODELS`, keyed by the official name of each file). ``size`` and ``sha256`` are
filled in only where the publisher states them; the only published digest is OpenAI's, whose download URL embeds
the file's full SHA-256. For the others the cache records the digest at first download (trust on first use, see
:mod:`audiodetic.weights.cache`).

Detector checkpoints listed here all share the architecture audiodetic implements: CenterNet2 proposals
(``C2`` in the name) + a 3-stage cascade with a zero-shot CLIP classifier and a mask head, on a timm ResNet-50
(``R5021k``) or Swin-B backbone with FPN P3-P7. They differ in training data and in the width of the stored
training classifier (``zs_weight``, unused at inference). Released Detic files NOT listed because audiodetic does
not implement their architecture: the real-time ``..._R18_...`` (ResNet-18 basic blocks) and ``..._CXT21k_...``
(ConvNeXt-T) backbones, the Deformable-DETR models (``BoxSup-DeformDETR_L_R50_4x``, ``Detic_DeformDETR_LI_R50_4x_ft4x``)
and the open-vocabulary COCO models (``*_OVCOCO_*``: ResNet-50-C4 Faster R-CNN, no CenterNet2).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from audiodetic.errors import InputError

__all__ = ["ModelFile", "MODELS", "ModelKind", "find_model", "known_names", "suggest_names"]

ModelKind = Literal["detector", "audio-text", "audio", "text"]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_KINDS = ("detector", "audio-text", "audio", "text")


@dataclass(frozen=True)
class ModelFile:
    """One downloadable model file.

    Attributes:
        name: official name (the upstream config/model name); the key in :data:`MODELS`.
        url: the publisher's download URL.
        filename: the file's name in the cache directory (unique across the table).
        licence: SPDX-style licence identifier of the weights.
        kind: ``"detector"`` (Detic), ``"audio-text"`` (ImageBind: audio + text towers), ``"audio"``
            (Wav2CLIP: audio only) or ``"text"`` (CLIP).
        description: what the file holds, in one or two sentences.
        architecture: hint for loaders, e.g. ``"detic-c2-cascade/resnet50-21k"``, ``"imagebind-huge"``.
        aliases: short names accepted wherever a name is.
        size: size in bytes where published, else None.
        sha256: lower-case hex SHA-256 where published, else None.
        source: page that documents the file and its licence.
    """

    name: str
    url: str
    filename: str
    licence: str
    kind: ModelKind
    description: str
    architecture: str
    aliases: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InputError(f"ModelFile {self.name!r}: kind {self.kind!r} is not one of {_KINDS}")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise InputError(f"ModelFile {self.name!r}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if self.size is not None and self.size <= 0:
            raise InputError(f"ModelFile {self.name!r}: size must be positive, got {self.size}")
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"ModelFile {self.name!r}: url must be http(s), got {self.url!r}")
        if not self.filename or "/" in self.filename or "\\" in self.filename or self.filename.startswith("."):
            raise InputError(f"ModelFile {self.name!r}: filename must be a plain file name, got {self.filename!r}")


_DETIC_URL = "https://dl.fbaipublicfiles.com/detic/"
_DETIC_ZOO = "https://github.com/facebookresearch/Detic/blob/main/docs/MODEL_ZOO.md"
_R50 = "detic-c2-cascade/resnet50-21k"
_SWINB = "detic-c2-cascade/swin-b"


def _detic(name: str, architecture: str, description: str, aliases: tuple[str, ...] = ()) -> ModelFile:
    return ModelFile(
        name=name,
        url=f"{_DETIC_URL}{name}.pth",
        filename=f"{name}.pth",
        licence="Apache-2.0",
        kind="detector",
        description=description,
        architecture=architecture,
        aliases=aliases,
        source=_DETIC_ZOO,
    )


_ENTRIES: tuple[ModelFile, ...] = (
    # LVIS + COCO + ImageNet-21k: the demo models (detect people well; "LCOCOI21k").
    _detic(
        "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size", _R50,
        "Detic R50: LVIS + COCO boxes and ImageNet-21k image labels; 22047-class training classifier. "
        "The default detector.",
        aliases=("detic-r50",),
    ),
    _detic(
        "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size", _SWINB,
        "Detic Swin-B: LVIS + COCO boxes and ImageNet-21k image labels; the most accurate demo model.",
        aliases=("detic-swinb",),
    ),
    _detic(
        "BoxSup-C2_LCOCO_CLIP_SwinB_896b32_4x", _SWINB,
        "Box-supervised Swin-B on LVIS + COCO (the initialisation of the Detic Swin-B LCOCOI21k model).",
    ),
    # Standard LVIS (all 1203 classes seen in training).
    _detic(
        "BoxSup-C2_L_CLIP_R5021k_640b64_4x", _R50,
        "Box-supervised R50 on LVIS (1203 classes, federated loss).",
        aliases=("boxsup-r50",),
    ),
    _detic(
        "Detic_LI_CLIP_R5021k_640b64_4x_ft4x_max-size", _R50,
        "Detic R50 on LVIS boxes + ImageNet image labels of the LVIS classes.",
    ),
    _detic(
        "BoxSup-C2_L_CLIP_SwinB_896b32_4x", _SWINB,
        "Box-supervised Swin-B on LVIS (1203 classes).",
    ),
    _detic(
        "Detic_LI_CLIP_SwinB_896b32_4x_ft4x_max-size", _SWINB,
        "Detic Swin-B on LVIS boxes + ImageNet image labels of the LVIS classes.",
    ),
    _detic(
        "Detic_LI21k_CLIP_SwinB_896b32_4x_ft4x_max-size", _SWINB,
        "Detic Swin-B on LVIS boxes + all of ImageNet-21k's image labels.",
    ),
    # Open-vocabulary LVIS (rare classes held out in training): for measuring novel-class accuracy.
    _detic(
        "BoxSup-C2_Lbase_CLIP_R5021k_640b64_4x", _R50,
        "Box-supervised R50 on LVIS base classes (rare classes held out).",
    ),
    _detic(
        "Detic_LbaseI_CLIP_R5021k_640b64_4x_ft4x_max-size", _R50,
        "Detic R50 on LVIS base boxes + ImageNet image labels (rare classes held out from boxes).",
    ),
    _detic(
        "Detic_LbaseCCimg_CLIP_R5021k_640b64_4x_ft4x_max-size", _R50,
        "Detic R50 on LVIS base boxes + Conceptual Captions image labels.",
    ),
    _detic(
        "Detic_LbaseCCcapimg_CLIP_R5021k_640b64_4x_ft4x_max-size", _R50,
        "Detic R50 on LVIS base boxes + Conceptual Captions image labels and captions (trained with a caption "
        "loss; any caption-encoder weights in the file are not used at inference).",
    ),
    _detic(
        "BoxSup-C2_Lbase_CLIP_SwinB_896b32_4x", _SWINB,
        "Box-supervised Swin-B on LVIS base classes (rare classes held out).",
    ),
    _detic(
        "Detic_LbaseI_CLIP_SwinB_896b32_4x_ft4x_max-size", _SWINB,
        "Detic Swin-B on LVIS base boxes + ImageNet image labels (rare classes held out from boxes).",
    ),
    ModelFile(
        name="imagebind_huge",
        url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
        filename="imagebind_huge.pth",
        licence="CC-BY-NC-4.0",
        kind="audio-text",
        description="ImageBind (huge): plain state_dict of all six modality towers; audiodetic reads the audio "
        "and text towers (1024-d joint space). Non-commercial licence.",
        architecture="imagebind-huge",
        source="https://github.com/facebookresearch/ImageBind",
    ),
    ModelFile(
        name="clip-vit-b32",
        url="https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        filename="ViT-B-32.pt",
        licence="MIT",
        kind="text",
        description="OpenAI CLIP ViT-B/32 (TorchScript archive); its 512-d text tower embeds text prompts in "
        "the space Detic's classifiers were trained against.",
        architecture="clip-vit-b32",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        source="https://github.com/openai/CLIP",
    ),
    ModelFile(
        name="wav2clip",
        url="https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt",
        filename="Wav2CLIP.pt",
        licence="MIT",
        kind="audio",
        description="Wav2CLIP audio encoder (ResNet-18 on spectrograms) distilled into CLIP ViT-B/32's image "
        "space: 512-d sound embeddings that need no bridge.",
        architecture="wav2clip",
        source="https://github.com/descriptinc/lyrebird-wav2clip",
    ),
)

MODELS: dict[str, ModelFile] = {entry.name: entry for entry in _ENTRIES}
"""Every model file audiodetic knows, keyed by official name."""


def _build_lookup() -> dict[str, ModelFile]:
    lookup: dict[str, ModelFile] = {}
    filenames: set[str] = set()
    for entry in _ENTRIES:
        if entry.filename in filenames:
            raise RuntimeError(f"duplicate filename in the model table: {entry.filename}")
        filenames.add(entry.filename)
        for key in (entry.name, *entry.aliases):
            folded = key.casefold()
            if folded in lookup:
                raise RuntimeError(f"duplicate model name or alias in the model table: {key}")
            lookup[folded] = entry
    return lookup


_LOOKUP = _build_lookup()


def find_model(name: str) -> ModelFile | None:
    """The table entry whose name or alias equals ``name`` (case-insensitive), or None."""
    return _LOOKUP.get(name.casefold())


def known_names() -> list[str]:
    """Official names followed by their aliases in brackets, one string per model, in table order."""
    return [entry.name + (f" ({', '.join(entry.aliases)})" if entry.aliases else "") for entry in _ENTRIES]


def suggest_names(name: str, limit: int = 3) -> list[str]:
    """Known names or aliases that look like ``name`` (for "did you mean" hints)."""
    candidates = [key for entry in _ENTRIES for key in (entry.name, *entry.aliases)]
    return difflib.get_close_matches(name, candidates, n=limit, cutoff=0.6)
