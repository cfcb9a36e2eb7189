"""Detector latency and memory: per stage, end to end, and the cost of re-prompting a set image.

Usage::

    python bench/bench_detector.py                       # R50 and Swin-B, 2 threads, 3 repeats
    python bench/bench_detector.py --arch r50 --threads 1 --repeats 5 --json out.json

Weights are random but in the official layout with realistic statistics (``audiodetic.testing.detic_checkpoints``),
loaded through ``convert.load_detector`` exactly like a released file. The image is a seeded 480x640 picture with
shapes, resized to the 800x1067 network input of the default configs. Each architecture runs in a child process so
its peak RSS (``VmHWM``) is its own. Figures are medians over ``--repeats`` after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from typing import Any

from common import MODELS as LAYOUTS
from common import peak_rss_mb, timed_stages


def _image(height: int = 480, width: int = 640) -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    image = np.full((height, width, 3), 90, np.uint8) + rng.integers(0, 30, (height, width, 3), dtype=np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, height - 120), rng.integers(0, width - 160)
        image[y : y + rng.integers(40, 120), x : x + rng.integers(40, 160)] = rng.integers(0, 256, 3)
    return image



def bench_arch(arch: str, threads: int, repeats: int, classes: int, score_threshold: float) -> dict[str, Any]:
    import numpy as np
    import torch

    from audiodetic.detector.convert import load_detector
    from audiodetic.detector.predictor import DetectorPredictor
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict
    from audiodetic.vocabulary import Vocabulary

    torch.set_num_threads(threads)
    detector = load_detector(make_detic_state_dict(LAYOUTS[arch], seed=0))
    rss_model = peak_rss_mb()
    image = _image()
    rng = np.random.default_rng(1)
    vocabulary = Vocabulary(tuple(f"class{i}" for i in range(classes)),
                            rng.normal(size=(classes, 512)).astype(np.float32))

    detector.detect(image, vocabulary, score_threshold=score_threshold)  # warm-up
    stages: dict[str, list[float]] = {}
    end_to_end = []
    for _ in range(repeats):
        times, detections = timed_stages(detector, image, vocabulary, score_threshold)
        for name, value in times.items():
            stages.setdefault(name, []).append(value)
        start = time.perf_counter()
        detector.detect(image, vocabulary, score_threshold=score_threshold)
        end_to_end.append(time.perf_counter() - start)

    predictor = DetectorPredictor(detector)
    start = time.perf_counter()
    predictor.set_image(image)
    set_image = time.perf_counter() - start

    def fresh_vocabulary(index: int) -> Vocabulary:
        names = tuple(f"v{index}_{i}" for i in range(classes))
        return Vocabulary(names, rng.normal(size=(classes, 512)).astype(np.float32))

    start = time.perf_counter()
    predictor.predict(fresh_vocabulary(0), score_threshold=score_threshold)
    first_predict = time.perf_counter() - start  # includes the mask head for every surviving proposal
    reprompt = []
    for index in range(1, repeats + 1):
        vocabulary_i = fresh_vocabulary(index)  # a new vocabulary each time (masks of new proposals computed)
        start = time.perf_counter()
        reprompted = predictor.predict(vocabulary_i, score_threshold=score_threshold)
        reprompt.append(time.perf_counter() - start)
    full = statistics.median(end_to_end)
    again = statistics.median(reprompt)
    return {
        "arch": arch,
        "threads": threads,
        "input": list(image.shape[:2]),
        "network_input": [detector.config.min_size, detector.config.max_size],
        "classes": classes,
        "score_threshold": score_threshold,
        "detections": len(detections),
        "detections_reprompt": len(reprompted),
        "stages_s": {name: statistics.median(values) for name, values in stages.items()},
        "detect_s": full,
        "set_image_s": set_image,
        "first_predict_s": first_predict,
        "reprompt_s": again,
        "reprompt_ratio": again / full,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": rss_model,
    }


def _child(queue: Any, *args: Any) -> None:
    queue.put(bench_arch(*args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=[*LAYOUTS, "all"], default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=20, help="vocabulary size")
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    arches = list(LAYOUTS) if args.arch == "all" else [args.arch]
    context = multiprocessing.get_context("spawn")
    results = []
    for arch in arches:
        queue = context.Queue()
        process = context.Process(target=_child, args=(queue, arch, args.threads, args.repeats, args.classes,
                                                        args.score_threshold))
        process.start()
        result = queue.get()
        process.join()
        results.append(result)
        print(f"== {arch}: {result['input'][0]}x{result['input'][1]} image, {args.threads} threads, "
              f"{result['detections']} detections at >{args.score_threshold}")
        for name, value in result["stages_s"].items():
            print(f"  {name:<18} {value * 1000:9.1f} ms")
        print(f"  detect (end-to-end) {result['detect_s'] * 1000:8.1f} ms")
        print(f"  set_image           {result['set_image_s'] * 1000:8.1f} ms")
        print(f"  first predict       {result['first_predict_s'] * 1000:8.1f} ms   (mask head for all survivors)")
        print(f"  re-prompt (predict) {result['reprompt_s'] * 1000:8.1f} ms   ratio {result['reprompt_ratio']:.3f}x "
              f"of detect (target <= 0.05x; new vocabulary each time, {result['detections_reprompt']} detections)")
        print(f"  peak RSS {result['peak_rss_mb']:.0f} MB (after loading {result['rss_after_load_mb']:.0f} MB)")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
