"""``Detections``: what a detector returns for one image, with converters to common formats.

Coordinate frame: boxes are float32 ``(x1, y1, x2, y2)`` in the pixels of the image the caller passed in
(not the resized network input); ``x`` grows to the right, ``y`` downwards, ``(0, 0)`` is the top-left corner
of the top-left pixel. Masks are ``(N, H, W)`` bool in the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from audiodetic.errors import InputError


def _as_array(value: Any, dtype: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise InputError(f"Detections.{name} must be array-like of {np.dtype(dtype).name}: {error}") from None


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections in one image.

    Attributes:
        boxes: ``(N, 4)`` float32 ``x1, y1, x2, y2`` in input-image pixels, ``x1 <= x2``, ``y1 <= y2``.
        scores: ``(N,)`` float32 in ``[0, 1]``.
        class_ids: ``(N,)`` int64 indices into ``names``.
        names: the vocabulary's prompt names, ``len(names) = C``; ``class_ids`` index into it.
        masks: ``(N, H, W)`` bool instance masks in the input image, or ``None``.
        image_size: ``(H, W)`` of the input image.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: tuple[str, ...]
    image_size: tuple[int, int]
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _as_array(self.boxes, np.float32, "boxes")
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"Detections.boxes must have shape (N, 4), got {boxes.shape}")
        n = boxes.shape[0]
        scores = _as_array(self.scores, np.float32, "scores").reshape(-1)
        class_ids = _as_array(self.class_ids, np.int64, "class_ids").reshape(-1)
        if scores.shape != (n,) or class_ids.shape != (n,):
            raise InputError(
                f"Detections: boxes has {n} rows but scores has shape {scores.shape} and class_ids {class_ids.shape}"
            )
        names = tuple(str(name) for name in self.names)
        if n and (class_ids.min() < 0 or class_ids.max() >= len(names)):
            raise InputError(
                f"Detections.class_ids must lie in [0, {len(names)}) (the number of names), "
                f"got values from {class_ids.min()} to {class_ids.max()}"
            )
        if len(self.image_size) != 2 or min(int(v) for v in self.image_size) <= 0:
            raise InputError(f"Detections.image_size must be (H, W) with positive sides, got {self.image_size}")
        height, width = (int(v) for v in self.image_size)
        if not np.all(np.isfinite(boxes)) or not np.all(np.isfinite(scores)):
            raise InputError("Detections: boxes and scores must be finite")
        if n and np.any(boxes[:, 2:] < boxes[:, :2]):
            raise InputError("Detections.boxes must satisfy x1 <= x2 and y1 <= y2")
        masks = self.masks
        if masks is not None:
            masks = _as_array(masks, bool, "masks")
            if masks.shape != (n, height, width):
                raise InputError(f"Detections.masks must have shape {(n, height, width)}, got {masks.shape}")
        for key, value in (("boxes", boxes), ("scores", scores), ("class_ids", class_ids), ("masks", masks)):
            object.__setattr__(self, key, value)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "image_size", (height, width))

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
            masks=None if self.masks is None else self.masks[index],
        )

    def __repr__(self) -> str:
        masks = "none" if self.masks is None else "x".join(str(s) for s in self.masks.shape)
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
        masks = np.zeros((0, height, width), bool) if with_masks else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   tuple(names), (height, width), masks)

    # -- converters -----------------------------------------------------------------------------------------
    def mask_rles(self) -> list[dict[str, Any]]:
        """COCO compressed RLE of each mask: ``{"size": [H, W], "counts": str}`` (empty list without masks)."""
        if self.masks is None:
            return []
        from pycocotools import mask as mask_utils

        encoded = mask_utils.encode(np.asfortranarray(self.masks.transpose(1, 2, 0).astype(np.uint8)))
        return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded]

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
            from pycocotools import mask as mask_utils

            rles = [{"size": item["mask"]["size"], "counts": item["mask"]["counts"].encode("ascii")} for item in items]
            masks = mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)
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
        if (part.masks is None) != (first.masks is None):
            raise InputError("concatenate(): either all parts have masks or none")
    masks = None if first.masks is None else np.concatenate([p.masks for p in parts])
    return Detections(
        boxes=np.concatenate([p.boxes for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        class_ids=np.concatenate([p.class_ids for p in parts]),
        names=first.names,
        image_size=first.image_size,
        masks=masks,
    )
