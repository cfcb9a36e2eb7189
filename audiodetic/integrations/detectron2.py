"""Plugin mode: give an existing upstream Detic (detectron2) model an audiodetic vocabulary.

For users who already run Detic through detectron2 (its ``demo.py``, their own pipelines) and want to keep that
model while prompting it with sounds. Three lines::

    from audiodetic.integrations.detectron2 import install_vocabulary
    installed = install_vocabulary(predictor, vocabulary)   # DefaultPredictor, VisualizationDemo or the model
    Visualizer(image[:, :, ::-1], installed.metadata).draw_instance_predictions(predictor(image)["instances"])

``vocabulary`` is an :class:`audiodetic.vocabulary.Vocabulary` (built from sounds, text, images or a mix with
:mod:`audiodetic.prompts`), a ``.npz``/``.npy`` file, or a ``(C, D)`` array. It becomes the zero-shot classifier
of every cascade stage, exactly as Detic's own ``reset_cls_test`` does it (class columns L2-normalised, a zero
background column), so the model's detections equal audiodetic's own detector on the same checkpoint and vocabulary.

* Any classifier width: ``D`` must equal the width the model's classifier was built with (512 for the released
  models); the vocabulary's rows are checked against it.
* Swap / undo without rebuilding: call :func:`install_vocabulary` again, or ``installed.undo()`` /
  :func:`restore_classifier` to get the model's original classifier (the same tensor object) back.
* No registry pollution: each installed vocabulary gets a fresh ``MetadataCatalog`` name
  (detectron2 refuses to reassign ``thing_classes``); it is removed again on swap or undo.
* Importing this module does not import detectron2; it is only imported when metadata is created.

Unlike audiodetic's own :class:`~audiodetic.detector.model.Detector` (vocabulary passed per call), this patches
the model, as upstream does: one model must not serve two vocabularies concurrently.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiodetic.errors import InputError
from audiodetic.vocabulary import Vocabulary, as_vocabulary

__all__ = ["InstalledVocabulary", "find_detic_model", "install_vocabulary", "installed_vocabulary", "restore_classifier"]

_LOCK = threading.RLock()
_COUNTER = itertools.count()
_STATES: weakref.WeakKeyDictionary[Any, _ModelState] = weakref.WeakKeyDictionary()


@dataclass
class _OriginalWeight:
    """How one stage's ``cls_score.zs_weight`` was registered before audiodetic touched it."""

    module: Any
    kind: str  # "parameter" | "buffer" | "attribute"
    value: Any
    persistent: bool


@dataclass
class _ModelState:
    originals: list[_OriginalWeight]
    num_classes: Any
    holders: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # id -> (weakref to holder, its metadata)
    active: InstalledVocabulary | None = None


@dataclass(eq=False)
class InstalledVocabulary:
    """A vocabulary installed in an upstream Detic model (returned by :func:`install_vocabulary`).

    Attributes:
        names: the ``C`` class names; the model's ``pred_classes`` index into them.
        vocabulary: the installed :class:`Vocabulary` (``(C, D)`` float32 unit rows).
        metadata: detectron2 ``Metadata`` with ``thing_classes = names`` (for ``Visualizer``).
        metadata_name: its ``MetadataCatalog`` name (fresh per install; removed on swap/undo).
    """

    names: tuple[str, ...]
    vocabulary: Vocabulary
    metadata: Any
    metadata_name: str
    _model_ref: Any = field(repr=False)

    @property
    def active(self) -> bool:
        """Whether this vocabulary is the one the model currently classifies with."""
        model = self._model_ref()
        state = _STATES.get(model) if model is not None else None
        return state is not None and state.active is self

    def undo(self) -> None:
        """Restore the model's original classifier if this vocabulary is still installed; idempotent.

        A vocabulary that was already replaced by a newer :func:`install_vocabulary` leaves the model alone.
        """
        with _LOCK:
            model = self._model_ref()
            if model is not None and self.active:
                restore_classifier(model)
            _forget_metadata(self.metadata_name)

    def __enter__(self) -> InstalledVocabulary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def find_detic_model(target: Any) -> Any:
    """The Detic ``nn.Module`` inside ``target``: the model itself, a ``DefaultPredictor`` (``.model``) or a Detic
    ``VisualizationDemo`` (``.predictor.model``). ``ValueError`` for anything else."""
    candidates = [target, getattr(target, "model", None)]
    predictor = getattr(target, "predictor", None)
    if predictor is not None:
        candidates.append(getattr(predictor, "model", None))
    for candidate in candidates:
        if candidate is not None and _stages(candidate):
            return candidate
    if predictor is not None and hasattr(predictor, "procs"):
        raise InputError(
            "VisualizationDemo(parallel=True) keeps its models in worker processes; build it with parallel=False "
            "to install a vocabulary"
        )
    raise InputError(
        f"expected an upstream Detic model (roi_heads.box_predictor[k].cls_score.zs_weight), a DefaultPredictor or a "
        f"VisualizationDemo holding one, got {type(target).__name__}"
    )


def _stages(model: Any) -> list[Any]:
    """The zero-shot classifiers (``cls_score``) of every cascade stage of a Detic model, or ``[]``."""
    roi_heads = getattr(model, "roi_heads", None)
    predictors = getattr(roi_heads, "box_predictor", None)
    if predictors is None:
        return []
    if not isinstance(predictors, (list, tuple)) and not hasattr(predictors, "__len__"):
        predictors = [predictors]
    classifiers = [getattr(p, "cls_score", None) for p in predictors]
    if not classifiers or any(c is None or not hasattr(c, "zs_weight") for c in classifiers):
        return []
    return classifiers


def _classifier_matrix(vocabulary: Vocabulary, like: Any, normalize: bool) -> Any:
    """``(D, C + 1)`` weight as Detic's ``reset_cls_test`` builds it: class columns, zero background column,
    columns L2-normalised when the classifier normalises its weights; on ``like``'s device and dtype."""
    import torch
    from torch.nn import functional as F

    weight = torch.from_numpy(np.array(vocabulary.embeddings, dtype=np.float32)).t().contiguous()
    weight = torch.cat([weight, weight.new_zeros((weight.shape[0], 1))], dim=1)
    if normalize:
        weight = F.normalize(weight, p=2, dim=0)
    return weight.to(device=like.device, dtype=like.dtype)


def _record_original(module: Any) -> _OriginalWeight:
    import torch

    value = module.zs_weight
    if isinstance(value, torch.nn.Parameter) and "zs_weight" in dict(module.named_parameters(recurse=False)):
        kind = "parameter"
    elif "zs_weight" in dict(module.named_buffers(recurse=False)):
        kind = "buffer"
    else:
        kind = "attribute"
    persistent = "zs_weight" in module.state_dict(keep_vars=True)
    return _OriginalWeight(module, kind, value, persistent)


def _set_weight(module: Any, value: Any, kind: str, persistent: bool) -> None:
    delattr(module, "zs_weight")
    if kind == "parameter" or kind == "attribute":
        module.zs_weight = value  # a Parameter re-registers itself, a plain tensor stays an attribute
    else:
        module.register_buffer("zs_weight", value, persistent=persistent)


def _new_metadata(names: tuple[str, ...]) -> tuple[Any, str]:
    from detectron2.data import MetadataCatalog

    while True:
        name = f"audiodetic_vocabulary_{os.getpid()}_{next(_COUNTER)}"
        if name not in MetadataCatalog.list():
            break
    metadata = MetadataCatalog.get(name)
    metadata.set(thing_classes=list(names))
    return metadata, name


def _forget_metadata(name: str) -> None:
    from detectron2.data import MetadataCatalog

    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)


def install_vocabulary(target: Any, vocabulary: Any, *, names: Sequence[str] | None = None) -> InstalledVocabulary:
    """Make ``vocabulary`` the classifier of every cascade stage of an upstream Detic model.

    Args:
        target: a Detic model (``CustomRCNN``), a detectron2 ``DefaultPredictor`` or a Detic ``VisualizationDemo``
            (``parallel=False``). Holders that draw with ``.metadata`` get the new metadata (restored on undo).
        vocabulary: a :class:`Vocabulary`, a ``.npz``/``.npy`` vocabulary file, or a ``(C, D)`` array/tensor;
            ``D`` must equal the model's classifier width (512 for the released Detic models).
        names: class names for an array or ``.npy`` (default ``class_0 ..``), or to rename a vocabulary.

    Returns:
        :class:`InstalledVocabulary` with ``metadata`` (``thing_classes``) to draw with; ``pred_classes`` of the
        model's outputs index into ``names``. Replaces any vocabulary installed before (its metadata is removed).

    Raises ``ValueError`` when ``target`` holds no Detic model or the vocabulary width does not fit it.
    """
    with _LOCK:
        model = find_detic_model(target)
        classifiers = _stages(model)
        vocabulary = as_vocabulary(vocabulary, names)
        width = int(classifiers[0].zs_weight.shape[0])
        if vocabulary.dim != width:
            raise InputError(
                f"vocabulary rows are {vocabulary.dim}-d but this Detic model's classifier expects {width}-d "
                f"class embeddings (ROI_BOX_HEAD.ZEROSHOT_WEIGHT_DIM); build the vocabulary in that space"
            )
        state = _STATES.get(model)
        if state is None:
            state = _ModelState([_record_original(c) for c in classifiers], getattr(model.roi_heads, "num_classes", None))
            _STATES[model] = state
        metadata, metadata_name = _new_metadata(vocabulary.names)
        for classifier in classifiers:
            weight = _classifier_matrix(vocabulary, classifier.zs_weight, bool(getattr(classifier, "norm_weight", True)))
            _set_weight(classifier, weight, "buffer", persistent=False)
        model.roi_heads.num_classes = len(vocabulary)
        for holder in (target, getattr(target, "predictor", None)):
            if holder is not None and holder is not model and hasattr(holder, "metadata"):
                if id(holder) not in state.holders:
                    state.holders[id(holder)] = (weakref.ref(holder), holder.metadata)
                holder.metadata = metadata
        previous, installed = state.active, InstalledVocabulary(
            vocabulary.names, vocabulary, metadata, metadata_name, weakref.ref(model)
        )
        state.active = installed
        if previous is not None:
            _forget_metadata(previous.metadata_name)
        return installed


def installed_vocabulary(target: Any) -> InstalledVocabulary | None:
    """The vocabulary currently installed in ``target``'s Detic model by audiodetic, or ``None``."""
    state = _STATES.get(find_detic_model(target))
    return None if state is None else state.active


def restore_classifier(target: Any) -> None:
    """Put back the classifier (same tensor objects, same registration), ``num_classes`` and holder metadata the
    model had before the first :func:`install_vocabulary`; remove audiodetic's metadata. No-op if none installed."""
    with _LOCK:
        model = find_detic_model(target)
        state = _STATES.pop(model, None)
        if state is None:
            return
        for original in state.originals:
            _set_weight(original.module, original.value, original.kind, original.persistent)
        if state.num_classes is not None:
            model.roi_heads.num_classes = state.num_classes
        for holder_ref, metadata in state.holders.values():
            holder = holder_ref()
            if holder is not None:
                holder.metadata = metadata
        if state.active is not None:
            _forget_metadata(state.active.metadata_name)
