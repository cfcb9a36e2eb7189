"""``Detections``: what a detector returns for one image, with converters to common formats.

Coordinate frame: boxes are float32 ``(x1, y1, x2, y2)`` in the pixels of the image the caller passed in
(not the resized network input); ``x`` grows to the right, ``y`` downwards, ``(0, 0)`` is the top-left corner
of the top-left pixel. Masks are ``(N, H, W)`` bool in the same image when asked for (:attr:`Detections.masks`);
the detector hands them over compactly as COCO RLE (:class:`~audiodetic.rle_masks.RleMasks`).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from audiodetic.errors import InputError
from audiodetic.rle_masks import RleMasks


def _as_array(value: Any, dtype: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise InputError(f"Detections.{name} must be array-like of {np.dtype(dtype).name}: {error}") from None


class Detections:
    """Detections in one image (immutable).

    Attributes:
        boxes: ``(N, 4)`` float32 ``x1, y1, x2, y2`` in input-image pixels, ``x1 <= x2``, ``y1 <= y2``.
        scores: ``(N,)`` float32 in ``[0, 1]``.
        class_ids: ``(N,)`` int64 indices into ``names``.
        names: the vocabulary's prompt names, ``len(names) = C``; ``class_ids`` index into it.
        image_size: ``(H, W)`` of the input image.
        masks: ``(N, H, W)`` bool instance masks in the input image, or ``None`` (see below).

    The ``masks`` argument takes ``(N, H, W)`` bool arrays or :class:`~audiodetic.rle_masks.RleMasks`. RLE masks
    (what the detector returns) cost about 1 to 5 bytes per column of each box — 14 to 60 KB for a detection
    12000 px wide, where its dense mask is ``H * W`` bytes (144 MB at 12000 x 12000). They stay RLE through indexing,
    sorting, :meth:`to_json_dict` and :meth:`to_coco_results`; the ``(N, H, W)`` array is made the first time
    :attr:`masks` is read (and kept). :meth:`mask` gives one ``(H, W)`` mask, :attr:`rle_masks` the compact form.
    """

    __slots__ = ("boxes", "scores", "class_ids", "names", "image_size", "_dense", "_rle")

    def __init__(self, boxes: Any, scores: Any, class_ids: Any, names: Sequence[str], image_size: Sequence[int],
                 masks: Any = None) -> None:
        boxes = _as_array(boxes, np.float32, "boxes")
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"Detections.boxes must have shape (N, 4), got {boxes.shape}")
        n = boxes.shape[0]
        scores = _as_array(scores, np.float32, "scores").reshape(-1)
        class_ids = _as_array(class_ids, np.int64, "class_ids").reshape(-1)
        if scores.shape != (n,) or class_ids.shape != (n,):
            raise InputError(
                f"Detections: boxes has {n} rows but scores has shape {scores.shape} and class_ids {class_ids.shape}"
            )
        names = tuple(str(name) for name in names)
        if n and (class_ids.min() < 0 or class_ids.max() >= len(names)):
            raise InputError(
                f"Detections.class_ids must lie in [0, {len(names)}) (the number of names), "
                f"got values from {class_ids.min()} to {class_ids.max()}"
            )
        if len(image_size) != 2 or min(int(v) for v in image_size) <= 0:
            raise InputError(f"Detections.image_size must be (H, W) with positive sides, got {image_size}")
        height, width = (int(v) for v in image_size)
        if not np.all(np.isfinite(boxes)) or not np.all(np.isfinite(scores)):
            raise InputError("Detections: boxes and scores must be finite")
        if n and np.any(boxes[:, 2:] < boxes[:, :2]):
            raise InputError("Detections.boxes must satisfy x1 <= x2 and y1 <= y2")
        dense, rle = None, None
        if isinstance(masks, RleMasks):
            if len(masks) != n or masks.image_size != (height, width):
                raise InputError(f"Detections.masks must hold {n} masks of {(height, width)}, got {n} boxes and "
                                 f"{len(masks)} RLE masks of {masks.image_size}")
            rle = masks
        elif masks is not None:
            dense = _as_array(masks, bool, "masks")
            if dense.shape != (n, height, width):
                raise InputError(f"Detections.masks must have shape {(n, height, width)}, got {dense.shape}")
        for key, value in (("boxes", boxes), ("scores", scores), ("class_ids", class_ids), ("names", names),
                           ("image_size", (height, width)), ("_dense", dense), ("_rle", rle)):
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Detections is immutable; cannot set {key!r} (build a new one)")

    # -- masks ----------------------------------------------------------------------------------------------------
    @property
    def has_masks(self) -> bool:
        """Whether the detections carry masks (without building any array)."""
        return self._dense is not None or self._rle is not None

    @property
    def masks(self) -> np.ndarray | None:
        """``(N, H, W)`` bool masks (``N * H * W`` bytes, decoded from RLE on first use and kept), or ``None``."""
        if self._dense is None and self._rle is not None:
            object.__setattr__(self, "_dense", self._rle.to_dense())
        return self._dense

    @property
    def rle_masks(self) -> RleMasks | None:
        """The masks as :class:`~audiodetic.rle_masks.RleMasks` (encoded now if they were given dense), or ``None``."""
        if self._rle is None and self._dense is not None:
            object.__setattr__(self, "_rle", RleMasks.from_dense(self._dense))
        return self._rle

    def mask(self, index: int) -> np.ndarray:
        """Mask ``index`` as an ``(H, W)`` bool array (only that one is decoded)."""
        if not self.has_masks:
            raise InputError("these detections have no masks")
        if self._dense is not None:
            return self._dense[index]
        return self._rle.mask(index)  # type: ignore[union-attr]

    def _selected_masks(self, index: Any) -> Any:
        if self._rle is not None:
            return self._rle[index]
        return None if self._dense is None else self._dense[index]

    # -- container protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: Any) -> "Detections":
        """Select detections with a boolean mask ``(N,)``, an integer array, an int or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean index must have shape ({len(self)},), got {index.shape}")
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            names=self.names,
            image_size=self.image_size,
            masks=self._selected_masks(index),
        )

    def __repr__(self) -> str:
        masks = "none"
        if self.has_masks:
            kind = "dense" if self._rle is None else "rle"
            masks = "x".join(str(s) for s in (len(self), *self.image_size)) + f" {kind}"
        return f"Detections(n={len(self)}, classes={len(self.names)}, image_size={self.image_size}, masks={masks})"

    @property
    def labels(self) -> list[str]:
        """The prompt name of each detection."""
        return [self.names[i] for i in self.class_ids]

    def sorted_by_score(self) -> "Detections":
        """A copy ordered by descending score (stable for ties)."""
        return self[np.argsort(-self.scores, kind="stable")]

    def above(self, threshold: float) -> "Detections":
        """Detections whose score is strictly greater than ``threshold``."""
        return self[self.scores > threshold]

    @classmethod
    def empty(cls, names: Sequence[str], image_size: tuple[int, int], *, with_masks: bool = False) -> "Detections":
        height, width = image_size
        masks = RleMasks((), (height, width)) if with_masks else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   tuple(names), (height, width), masks)

    # -- converters -----------------------------------------------------------------------------------------
    def mask_rles(self) -> list[dict[str, Any]]:
        """COCO compressed RLE of each mask: ``{"size": [H, W], "counts": str}`` (empty list without masks)."""
        masks = self.rle_masks
        return [] if masks is None else masks.to_coco()

    def to_json_dict(self, image: str = "") -> dict[str, Any]:
        """The CLI's per-image JSON object: ``{"image", "width", "height", "detections": [...]}``.

        Each detection is ``{"label", "class_id", "score", "box": [x1, y1, x2, y2], "mask": RLE}`` (``mask`` only
        when masks are present); detections are sorted by score.
        """
        ordered = self.sorted_by_score()
        rles = ordered.mask_rles()
        detections = []
        for i in range(len(ordered)):
            item: dict[str, Any] = {
                "label": ordered.names[ordered.class_ids[i]],
                "class_id": int(ordered.class_ids[i]),
                "score": float(ordered.scores[i]),
                "box": [float(v) for v in ordered.boxes[i]],
            }
            if rles:
                item["mask"] = rles[i]
            detections.append(item)
        height, width = self.image_size
        return {"image": image, "width": width, "height": height, "detections": detections}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any], names: Sequence[str] | None = None) -> "Detections":
        """Inverse of :meth:`to_json_dict`. ``names`` defaults to the labels found, placed at their class ids."""
        try:
            height, width = int(data["height"]), int(data["width"])
            items = list(data["detections"])
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"not a detections object (needs width, height, detections): {error}") from None
        if names is None:
            found: dict[int, str] = {}
            for item in items:
                found[int(item["class_id"])] = str(item["label"])
            size = max(found, default=-1) + 1
            names = [found.get(i, f"class_{i}") for i in range(size)]
        masks = None
        if items and all("mask" in item for item in items):
            masks = RleMasks.from_coco([item["mask"] for item in items], (height, width))
        return cls(
            boxes=np.array([item["box"] for item in items], np.float32).reshape(-1, 4),
            scores=np.array([item["score"] for item in items], np.float32),
            class_ids=np.array([item["class_id"] for item in items], np.int64),
            names=tuple(names),
            image_size=(height, width),
            masks=masks,
        )

    def to_coco_results(self, image_id: int, category_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """COCO results-format records: ``bbox`` as ``[x, y, w, h]``, ``segmentation`` RLE when masks exist.

        ``category_ids[class_id]`` gives the dataset category id of each vocabulary entry (default: the class id).
        """
        if category_ids is not None and len(category_ids) != len(self.names):
            raise InputError(f"category_ids has {len(category_ids)} entries but the vocabulary has {len(self.names)}")
        rles = self.mask_rles()
        records = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            class_id = int(self.class_ids[i])
            record: dict[str, Any] = {
                "image_id": int(image_id),
                "category_id": int(category_ids[class_id]) if category_ids is not None else class_id,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(self.scores[i]),
            }
            if rles:
                record["segmentation"] = rles[i]
            records.append(record)
        return records

    def to_hf(self) -> list[dict[str, Any]]:
        """Hugging Face ``zero-shot-object-detection`` pipeline style: ``[{"score", "label", "box": {...}}]``."""
        return [
            {
                "score": float(score),
                "label": self.names[class_id],
                "box": {"xmin": float(b[0]), "ymin": float(b[1]), "xmax": float(b[2]), "ymax": float(b[3])},
            }
            for score, class_id, b in zip(self.scores, self.class_ids, self.boxes)
        ]

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (needs the optional ``supervision`` package)."""
        try:
            import supervision as sv
        except ImportError:
            raise ImportError("to_supervision() needs the 'supervision' package: pip install supervision") from None
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32),
            confidence=self.scores.astype(np.float32),
            class_id=self.class_ids.astype(int),
            mask=self.masks,
            data={"class_name": np.array(self.labels, dtype=object)},
        )


def concatenate(parts: Iterable[Detections]) -> Detections:
    """Join detections of the same image and vocabulary."""
    parts = list(parts)
    if not parts:
        raise InputError("concatenate() needs at least one Detections")
    first = parts[0]
    for part in parts[1:]:
        if part.names != first.names or part.image_size != first.image_size:
            raise InputError("concatenate(): all parts must share names and image_size")
        if part.has_masks != first.has_masks:
            raise InputError("concatenate(): either all parts have masks or none")
    masks = None if not first.has_masks else RleMasks.concatenate([p.rle_masks for p in parts])
    return Detections(
        boxes=np.concatenate([p.boxes for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        class_ids=np.concatenate([p.class_ids for p in parts]),
        names=first.names,
        image_size=first.image_size,
        masks=masks,
    )
