"""Run a detector over a dataset's images, resumably, one shard at a time, for one or more vocabularies.

Output folder layout (``OUT``)::

    OUT/run.json                                  what was run (checked on resume: a different run is refused)
    OUT/predictions/<variant>/<shard>.jsonl       one line per finished image: {"image_id", "results": [...]}
    OUT/predictions/<variant>/<shard>.done        written when the shard has finished
    OUT/<variant>/results.json                    merged COCO results (see :func:`merge_predictions`)

A *variant* is one vocabulary with the dataset category id of each of its entries. Several variants share each
image's vocabulary-independent work when the detector has ``encode``/``classify`` (the sound benchmark runs
text and many audio vocabularies over the same images). Lines are flushed and fsynced as each image finishes,
so an interrupted run resumes at the first unfinished image; a half-written last line is discarded.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from audiodetic import io
from audiodetic.errors import InputError, MissingFileError
from audiodetic.eval.datasets import EvalDataset
from audiodetic.io import JsonLinesAppender, iter_json_lines, repair_json_lines
from audiodetic.sharding import Shard, wait_for_files
from audiodetic.structures import Detections
from audiodetic.vocabulary import Vocabulary

ImageHook = Callable[[int, int], None]
"""Called as ``hook(image_id, images_done_in_this_call)`` after an image's results are on disk."""


@dataclass(frozen=True, eq=False)
class Variant:
    """A vocabulary and the dataset category id of each entry (``len(category_ids) == len(vocabulary)``)."""

    vocabulary: Vocabulary
    category_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.category_ids) != len(self.vocabulary):
            raise InputError(f"variant has {len(self.vocabulary)} vocabulary entries but "
                             f"{len(self.category_ids)} category ids")

    def fingerprint(self) -> dict[str, Any]:
        digest = hashlib.sha1(np.ascontiguousarray(self.vocabulary.embeddings).tobytes()).hexdigest()
        return {"names": list(self.vocabulary.names), "category_ids": [int(c) for c in self.category_ids],
                "space": self.vocabulary.space, "embeddings_sha1": digest}


def _write_json_atomic(path: Path, payload: Any) -> None:
    io.write_text(path, json.dumps(payload, indent=1, sort_keys=True), make_parents=True)


def refuse_other_run(output_dir: Path, existing: Mapping[str, Any], info: Mapping[str, Any], *,
                     keys: Iterable[str] | None = None) -> None:
    """Raise :class:`InputError` when the folder's ``run.json`` (``existing``) and this run's ``info`` differ in
    ``keys`` (default: any key), naming them."""
    names = set(existing) | set(info) if keys is None else set(keys)
    changed = sorted(key for key in names if existing.get(key) != info.get(key))
    if changed:
        raise InputError(f"{output_dir} holds a different run (differs in {changed}); use a new --output "
                         "or --overwrite to start over")


def prepare_output(output_dir: Path, run_info: Mapping[str, Any], *, overwrite: bool = False,
                   shard: Shard | None = None) -> None:
    """Create ``output_dir`` and write ``run.json``; refuse to resume into a folder that holds a different run.

    With ``overwrite`` each process deletes only its own ``shard``'s prediction files (processes of one run start
    at different times and must not delete each other's work); shard 0 also deletes files of other shard counts.
    """
    shard = shard or Shard()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "run.json"
    info = json.loads(json.dumps(run_info))  # normalise tuples, keys
    if path.exists() and not overwrite:
        refuse_other_run(output_dir, json.loads(path.read_text(encoding="utf-8")), info)
        return
    if overwrite and (output_dir / "predictions").exists():
        for file in (output_dir / "predictions").glob("*/shard-*"):
            same_count = file.name.split(".")[0].endswith(f"-of-{shard.name.split('-of-')[1]}")
            if file.name.split(".")[0] == shard.name or (shard.index == 0 and not same_count):
                file.unlink()
    _write_json_atomic(path, info)


class PredictionStore:
    """The JSON-lines predictions file of one variant and shard; see the module docstring."""

    def __init__(self, output_dir: Path, variant: str, shard: Shard) -> None:
        folder = output_dir / "predictions" / variant
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{shard.name}.jsonl"
        self.done_path = folder / f"{shard.name}.done"
        self.finished: dict[int, list[dict[str, Any]]] = read_predictions(self.path, repair=True)
        self._lines = JsonLinesAppender(self.path)

    def append(self, image_id: int, records: list[dict[str, Any]]) -> None:
        """Persist one image's results (flushed and fsynced)."""
        self._lines.append({"image_id": int(image_id), "results": records})
        self.finished[int(image_id)] = records

    def mark_done(self, image_ids: Sequence[int]) -> None:
        """Write the shard's ``.done`` marker (the merge step and rank 0 wait for it)."""
        _write_json_atomic(self.done_path, {"images": len(image_ids)})

    def close(self) -> None:
        """Close the file (appended lines are already on disk)."""
        self._lines.close()


def read_predictions(path: Path, *, repair: bool = False) -> dict[int, list[dict[str, Any]]]:
    """``{image_id: records}`` from a predictions file. A broken last line (an interrupted write) is ignored and,
    with ``repair``, cut off the file; a broken line elsewhere is an error."""
    if not path.exists():
        return {}
    if repair:
        repair_json_lines(path)
    finished: dict[int, list[dict[str, Any]]] = {}
    for number, _, item in iter_json_lines(path):
        try:
            finished[int(item["image_id"])] = list(item["results"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: line {number} is not a predictions record; the file is damaged") from None
    return finished


def _accepts(method: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def predict_variants(detector: Any, image: np.ndarray, variants: Mapping[str, Variant], *,
                     score_threshold: float, max_detections: int, all_classes: bool,
                     input_size: tuple[int, int] | None = None, with_masks: bool = True) -> dict[str, Detections]:
    """Detections of ``image`` (``(H, W, 3)`` uint8 RGB) for every variant.

    Uses ``detector.encode`` once and ``detector.classify`` per vocabulary when available, else
    ``detector.detect(image, vocabulary, ...)`` per vocabulary. ``all_classes`` (every class above threshold
    per proposal, Detic's evaluation setting) is passed only to detectors that accept it; ``input_size``
    (resize ``(min, max)``) only when given; ``with_masks`` to detectors that accept it.
    """
    encode_options: dict[str, Any] = {} if input_size is None else {"input_size": tuple(input_size)}
    options: dict[str, Any] = {"score_threshold": score_threshold, "max_detections": max_detections}
    outputs: dict[str, Detections] = {}
    if hasattr(detector, "encode") and hasattr(detector, "classify"):
        import torch

        for key, value in (("all_classes", all_classes), ("with_masks", with_masks)):
            if _accepts(detector.classify, key):
                options[key] = value
        with torch.inference_mode():
            encoding = detector.encode(image, **encode_options)
            for name, variant in variants.items():
                # classify takes the Vocabulary itself (names included) and moves it to the detector's device
                outputs[name] = detector.classify(encoding, variant.vocabulary, **options)
        return outputs
    for key, value in (("all_classes", all_classes), ("with_masks", with_masks)):
        if _accepts(detector.detect, key):
            options[key] = value
    for name, variant in variants.items():
        outputs[name] = detector.detect(image, variant.vocabulary, **encode_options, **options)
    return outputs


def run_predictions(detector: Any, dataset: EvalDataset, variants: Mapping[str, Variant], output_dir: Path, *,
                    image_ids: Sequence[int], shard: Shard | None = None, score_threshold: float = 0.02,
                    max_detections: int = 300, all_classes: bool = True,
                    input_size: tuple[int, int] | None = None, with_masks: bool = True, progress: bool = True,
                    on_image_done: ImageHook | None = None) -> dict[str, int]:
    """Run ``detector`` over this shard's share of ``image_ids`` for every variant, resuming where a previous
    call stopped. Returns ``{"images": shard size, "skipped": already done, "processed": run now}``."""
    from tqdm import tqdm

    if not variants:
        raise InputError("run_predictions needs at least one variant")
    shard = shard or Shard()
    mine = shard.select(sorted(int(i) for i in image_ids))
    stores = {name: PredictionStore(output_dir, name, shard) for name in variants}
    try:
        todo = [i for i in mine if any(i not in store.finished for store in stores.values())]
        bar = tqdm(todo, desc=f"eval {shard.name}", unit="img", disable=not progress,
                   initial=len(mine) - len(todo), total=len(mine))
        for done, image_id in enumerate(bar, start=1):
            pending = {name: v for name, v in variants.items() if image_id not in stores[name].finished}
            detections = predict_variants(detector, dataset.load_image(image_id), pending,
                                          score_threshold=score_threshold, max_detections=max_detections,
                                          all_classes=all_classes, input_size=input_size,
                                          with_masks=with_masks)
            for name, found in detections.items():
                stores[name].append(image_id, found.to_coco_results(image_id, pending[name].category_ids))
            if on_image_done is not None:
                on_image_done(image_id, done)
        for store in stores.values():
            store.mark_done(mine)
    finally:
        for store in stores.values():
            store.close()
    return {"images": len(mine), "skipped": len(mine) - len(todo), "processed": len(todo)}


def wait_for_shards(output_dir: Path, variants: Sequence[str], count: int, *, timeout_s: float = 86400.0,
                    poll_s: float = 2.0) -> None:
    """Block until every shard of ``count`` has its ``.done`` marker for every variant (file-based barrier)."""
    wait_for_files([output_dir / "predictions" / v / f"{Shard(i, count).name}.done" for v in variants
                    for i in range(count)], timeout_s=timeout_s, poll_s=poll_s)


def merge_predictions(output_dirs: Sequence[Path], variant: str, image_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Join the finished shards of ``variant`` found under ``output_dirs`` into one COCO results list.

    Every shard of one shard count must be present and finished, and together they must cover exactly
    ``image_ids``. Records are ordered by image id, then as the detector returned them.
    """
    done_files = sorted({f for d in output_dirs for f in (Path(d) / "predictions" / variant).glob("shard-*.done")})
    if not done_files:
        raise MissingFileError(f"no finished shards of {variant!r} under {[str(d) for d in output_dirs]}")
    counts = {int(f.stem.split("-of-")[1]) for f in done_files}
    if len(counts) != 1:
        raise InputError(f"finished shards of {variant!r} come from different shard counts {sorted(counts)}")
    count = counts.pop()
    found: dict[int, list[dict[str, Any]]] = {}
    for index in range(count):
        name = Shard(index, count).name
        paths = [Path(d) / "predictions" / variant / f"{name}.jsonl" for d in output_dirs]
        present = [p for p in paths if p.with_suffix(".done").exists()]
        if not present:
            raise InputError(f"shard {index}/{count} of {variant!r} has not finished (no {name}.done)")
        for image_id, records in read_predictions(present[0]).items():
            found[image_id] = records
    expected = {int(i) for i in image_ids}
    if set(found) != expected:
        missing, extra = sorted(expected - set(found)), sorted(set(found) - expected)
        raise InputError(f"merged shards of {variant!r} do not cover the run's images: missing {missing[:5]} "
                         f"({len(missing)}), unexpected {extra[:5]} ({len(extra)})")
    return [record for image_id in sorted(found) for record in found[image_id]]
