"""COCO- and LVIS-format annotation files: categories, images, and the image files they name.

A dataset is the parsed annotation JSON plus the folder its images live in. Category ids are the dataset's own
(COCO's run 1..90 with gaps, LVIS v1's 1..1203); the detector's vocabulary index ``k`` maps to
``category_ids[k]`` when a run uses the whole category list.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from audiodetic.errors import InputError, MissingFileError

DatasetKind = Literal["coco", "lvis"]
DATASET_KINDS: tuple[str, ...] = ("coco", "lvis")
LVIS_FREQUENCIES: tuple[str, ...] = ("r", "c", "f")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


@dataclass(frozen=True, eq=False)
class EvalDataset:
    """A parsed COCO/LVIS annotation file.

    Attributes:
        kind: ``"coco"`` (exhaustive labels, scored with pycocotools) or ``"lvis"`` (federated, lvis-api).
        annotation_path: the JSON file it was read from (``None`` when built from a dict).
        data: the parsed JSON (``images``, ``annotations``, ``categories``).
        images_dir: folder the image ``file_name`` (COCO) or ``coco_url`` tail (LVIS) is resolved against.
    """

    kind: str
    data: dict[str, Any]
    annotation_path: Path | None = None
    images_dir: Path | None = None
    _images: dict[int, dict[str, Any]] = field(init=False, repr=False)
    _categories: dict[int, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = str(self.annotation_path or "annotations")
        _require(self.kind in DATASET_KINDS, f"dataset kind must be one of {DATASET_KINDS}, got {self.kind!r}")
        _require(isinstance(self.data, dict), f"{where}: expected a JSON object, got {type(self.data).__name__}")
        for key in ("images", "annotations", "categories"):
            _require(isinstance(self.data.get(key), list), f"{where}: missing list {key!r} (not a {self.kind} file)")
        images = {int(image["id"]): image for image in self.data["images"]}
        categories = {int(category["id"]): category for category in self.data["categories"]}
        _require(len(images) == len(self.data["images"]), f"{where}: image ids are not unique")
        _require(len(categories) == len(self.data["categories"]), f"{where}: category ids are not unique")
        _require(bool(categories), f"{where}: has no categories")
        if self.kind == "lvis":
            for image in self.data["images"][:1000]:
                for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                    _require(key in image, f"{where}: LVIS images need {key!r} (image {image.get('id')}); "
                                           "is this a COCO file? use 'eval coco'")
            for category in categories.values():
                _require(category.get("frequency") in LVIS_FREQUENCIES,
                         f"{where}: LVIS categories need 'frequency' in {LVIS_FREQUENCIES} "
                         f"(category {category.get('id')} has {category.get('frequency')!r})")
        object.__setattr__(self, "_images", images)
        object.__setattr__(self, "_categories", categories)

    # -- construction -----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, kind: str, annotations: str | os.PathLike[str],
             images_dir: str | os.PathLike[str] | None = None) -> "EvalDataset":
        """Read ``annotations`` (a COCO/LVIS JSON file); ``images_dir`` is checked to exist when given."""
        path = Path(annotations)
        if not path.is_file():
            raise MissingFileError(f"annotation file not found: {path}")
        if images_dir is not None and not Path(images_dir).is_dir():
            raise MissingFileError(f"image folder not found: {images_dir}")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path} is not valid JSON: {error}") from None
        return cls(kind, data, path, None if images_dir is None else Path(images_dir))

    # -- categories -------------------------------------------------------------------------------------------
    @property
    def category_ids(self) -> tuple[int, ...]:
        """All category ids, ascending."""
        return tuple(sorted(self._categories))

    @property
    def category_names(self) -> tuple[str, ...]:
        """Category names in :attr:`category_ids` order (LVIS keeps its ``car_(automobile)`` style)."""
        return tuple(str(self._categories[i]["name"]) for i in self.category_ids)

    def category(self, category_id: int) -> dict[str, Any]:
        """The category record with this id."""
        try:
            return self._categories[int(category_id)]
        except KeyError:
            raise InputError(f"category id {category_id} is not in this {self.kind} dataset") from None

    def category_ids_for_names(self, names: Sequence[str]) -> list[int]:
        """Dataset category ids of ``names`` (exact names; LVIS synonyms are accepted too)."""
        lookup: dict[str, int] = {}
        for category_id in self.category_ids:
            record = self._categories[category_id]
            for synonym in record.get("synonyms", []):
                lookup.setdefault(str(synonym), category_id)
        for category_id in self.category_ids:
            lookup[str(self._categories[category_id]["name"])] = category_id
        missing = [name for name in names if name not in lookup]
        if missing:
            raise InputError(f"not {self.kind} category names: {missing[:10]}; e.g. {list(self.category_names[:5])}")
        return [lookup[name] for name in names]

    # -- images -----------------------------------------------------------------------------------------------
    @property
    def image_ids(self) -> tuple[int, ...]:
        """All image ids, ascending."""
        return tuple(sorted(self._images))

    def image_record(self, image_id: int) -> dict[str, Any]:
        """The image record with this id."""
        try:
            return self._images[int(image_id)]
        except KeyError:
            raise InputError(f"image id {image_id} is not in this {self.kind} dataset") from None

    def image_path(self, image_id: int) -> Path:
        """Where the image file is: ``images_dir/file_name``, or for LVIS ``images_dir/<split>/<name>`` from the
        ``coco_url`` (``images_dir`` = the COCO root holding ``train2017/`` and ``val2017/``), falling back to
        ``images_dir/<name>``."""
        if self.images_dir is None:
            raise InputError("this dataset was loaded without an image folder (--images)")
        record = self.image_record(image_id)
        candidates: list[Path] = []
        if record.get("file_name"):
            candidates.append(self.images_dir / str(record["file_name"]))
        url = str(record.get("coco_url", ""))
        if url:
            split, name = url.rstrip("/").split("/")[-2:]
            candidates += [self.images_dir / split / name, self.images_dir / name]
        if not candidates:
            raise InputError(f"image {image_id} has neither 'file_name' nor 'coco_url'")
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise MissingFileError(f"image {image_id} not found; looked for {[str(c) for c in candidates]}")

    def load_image(self, image_id: int) -> np.ndarray:
        """The image as an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied (as detectron2 reads images for
        evaluation); its size must match the annotation record."""
        from audiodetic.inputs import as_rgb_array

        path = self.image_path(image_id)
        array = as_rgb_array(path, argument=f"image {image_id}")
        record = self.image_record(image_id)
        expected = (int(record.get("height") or array.shape[0]), int(record.get("width") or array.shape[1]))
        if array.shape[:2] != expected:
            raise InputError(f"image {path} is {array.shape[1]}x{array.shape[0]} but the annotations say "
                             f"{expected[1]}x{expected[0]}")
        return array

    # -- annotations ------------------------------------------------------------------------------------------
    def num_instances(self, image_ids: Sequence[int] | None = None) -> dict[int, int]:
        """Non-crowd ground-truth instances per category id over ``image_ids`` (default all images)."""
        keep = None if image_ids is None else {int(i) for i in image_ids}
        counts = {category_id: 0 for category_id in self.category_ids}
        for annotation in self.data["annotations"]:
            if keep is not None and int(annotation["image_id"]) not in keep:
                continue
            if not annotation.get("iscrowd", 0):
                counts[int(annotation["category_id"])] += 1
        return counts

    def subset(self, image_ids: Sequence[int]) -> "EvalDataset":
        """A dataset with only ``image_ids`` (same categories), e.g. for a quick run on the first N images.

        The subset has no ``annotation_path`` (it no longer matches the file)."""
        keep = {int(i) for i in image_ids}
        unknown = keep - set(self._images)
        _require(not unknown, f"image ids not in the dataset: {sorted(unknown)[:10]}")
        data = dict(self.data)
        data["images"] = [image for image in self.data["images"] if int(image["id"]) in keep]
        data["annotations"] = [a for a in self.data["annotations"] if int(a["image_id"]) in keep]
        return EvalDataset(self.kind, data, None, self.images_dir)
