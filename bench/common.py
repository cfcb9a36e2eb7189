"""Helpers shared by the benchmark scripts (run them as ``python bench/NAME.py``; this folder is on ``sys.path``)."""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MODELS = {
    "r50": "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size",
    "swinb": "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size",
}


def upstream_env() -> Any:
    """``tests/upstream/upstream_env.py`` (shimmed upstream imports, parity matching helpers), loaded by path."""
    if "upstream_env" in sys.modules:
        return sys.modules["upstream_env"]
    spec = importlib.util.spec_from_file_location("upstream_env", ROOT / "tests" / "upstream" / "upstream_env.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["upstream_env"] = module
    spec.loader.exec_module(module)
    return module


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB: Linux's ``VmHWM``, which starts afresh at ``exec``.

    Not ``ru_maxrss``: a child that ``subprocess`` or ``multiprocessing`` starts (vfork + exec) inherits its
    parent's peak there, so the child of a parent that once held 5 GB reports at least 5 GB. Falls back to
    ``ru_maxrss`` where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_list(text: str, allowed: set[str] | None = None, kind: type = str) -> list[Any]:
    """``"a,b"`` -> ``["a", "b"]`` (each converted by ``kind``); argparse errors name what is allowed."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    if allowed is not None and not set(values) <= allowed:
        raise argparse.ArgumentTypeError(f"unknown {sorted(set(values) - allowed)}; allowed: {sorted(allowed)}")
    try:
        return [kind(v) for v in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind.__name__} values, got {text!r}") from None


def summary(values: list[float]) -> dict[str, float]:
    """``{"median", "min", "max"}`` of a list of timings."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _child(queue: Any, function: Callable[..., dict], args: tuple[Any, ...]) -> None:
    try:
        queue.put(function(*args))
    except BaseException as error:  # report instead of leaving the parent waiting
        queue.put({"error": f"{type(error).__name__}: {error}"})
        raise


def run_isolated(function: Callable[..., dict], *args: Any) -> dict:
    """``function(*args)`` in a fresh spawned process (thread pools such as NNPACK's are sized once per process)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, function, args))
    process.start()
    row = queue.get()
    process.join()
    if "error" in row:
        raise RuntimeError(f"benchmark child failed: {row['error']}")
    return row


STAGES = ("preprocess", "backbone", "fpn", "centernet_head", "proposals", "cascade", "classify_nms",
          "masks_postprocess")


def staged_detect(detector: Any, image: Any, vocabulary: Any, score_threshold: float,
                  mark: Callable[[str], None]) -> Any:
    """One ``detector.detect`` split into :data:`STAGES`, calling ``mark(stage)`` after each; returns Detections.

    Same calls as ``Detector.encode`` + ``classify`` (the default input size).
    """
    import torch

    from audiodetic.detector.centernet import centernet_proposals
    from audiodetic.detector.model import ImageEncoding, class_embeddings
    from audiodetic.detector.preprocess import preprocess_image
    from audiodetic.detector.roi_heads import class_weight_matrix

    config = detector.config
    with torch.inference_mode():
        inputs = preprocess_image(image, min_size=config.min_size, max_size=config.max_size,
                                  pixel_mean=detector.pixel_mean, pixel_std=detector.pixel_std,
                                  size_divisibility=config.size_divisibility)
        mark("preprocess")
        bottom_up = detector.backbone(inputs.tensor)
        mark("backbone")
        pyramid = detector.fpn(bottom_up)
        mark("fpn")
        heatmaps, regressions = detector.centernet(pyramid)
        mark("centernet_head")
        boxes, scores = centernet_proposals(
            heatmaps, regressions, config.centernet_strides, score_threshold=config.centernet_score_threshold,
            pre_nms_topk=config.centernet_pre_nms_topk, nms_threshold=config.centernet_nms_threshold,
            post_nms_topk=config.centernet_post_nms_topk, min_box_side=config.centernet_min_box_side)
        mark("proposals")
        features = list(pyramid[: len(config.pooler_strides)])
        regions = detector.roi_heads.encode(features, boxes, scores, inputs.resized_size)
        encoding = ImageEncoding(inputs.original_size, inputs.resized_size, features, boxes, scores, regions.boxes,
                                 regions.embeddings)
        mark("cascade")
        matrix, names = class_embeddings(vocabulary, None, config.embed_dim)
        result = detector.roi_heads.classify(encoding.regions, class_weight_matrix(matrix),
                                             score_threshold=score_threshold)
        mark("classify_nms")
        detections = detector._postprocess(encoding, result.boxes, result.scores, result.class_ids,
                                           result.proposal_index, names, True)
        mark("masks_postprocess")
    return detections


def timed_stages(detector: Any, image: Any, vocabulary: Any, score_threshold: float) -> tuple[dict[str, float], Any]:
    """Seconds per stage of one :func:`staged_detect` (plus ``"total"``) and its detections."""
    times: dict[str, float] = {}
    start = last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        times[name] = now - last
        last = now

    detections = staged_detect(detector, image, vocabulary, score_threshold, mark)
    times["total"] = time.perf_counter() - start
    return times, detections
