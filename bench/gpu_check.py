"""GPU check: CUDA detections against the CPU ones, float16 inference, ImageBind audio on CUDA, throughput table.

One script, meant to finish in under 5 minutes on one GPU (random full-size weights in the official layouts, built
in memory; no files needed)::

    python bench/gpu_check.py [--device cuda:0] [--json out.json]
    python bench/gpu_check.py --dry-run      # tiny models on the CPU: exercises every path in seconds

Checks, each reported as passed / failed with its figures (a failure does not stop the others):

* ``fp32``: R50 and Swin-B detections of one 480x640 picture (800x1067 network input, 80 classes, score > 0.3) on
  the GPU against the CPU, with the parity tolerances of ``tests/upstream/test_parity.py``: every detection
  matched by class and IoU >= 0.9, boxes within 1e-2 px, scores within 1e-4, masks IoU >= 0.99 (masks differing in
  <= 2 pixels tolerated). TF32 is switched off for this check (it rounds convolutions to 10-bit mantissas).
* ``fp16``: the same through ``AudiodeticModel(half=True)``'s float16 autocast, against the CPU float32 result.
  Stated tolerances (never yet measured on a GPU): >= 90 % of the CPU detections matched, scores within 2e-2,
  boxes within 2 px, masks IoU >= 0.9 unless they differ in <= 10 pixels.
* ``audio``: the full-size ImageBind audio tower (random weights) on the GPU against the CPU: cosine >= 0.99999.
* ``throughput``: images/s of detect (encode + classify + masks) at input sizes 640 (``(640, 640)``) and 800
  (``(800, 1333)``), batch 1 and 8, R50 and Swin-B, float32 and float16. Batch 8 uses the detector's batched
  method when it has one (``detect_batch(images, vocabulary, input_size=...)`` or ``encode_batch(images,
  input_size=...)``), else 8 single-image calls; the table says which.

``--dry-run`` uses the tiny layouts, 96x128 pictures, one input size, batches 1 and 2, 8 classes, bfloat16 CPU
autocast in place of CUDA float16 (shown, not judged) and one timed iteration; its figures mean nothing, it only
runs the code. Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, upstream_env  # this folder holds the shared bench helpers

FULL = MODELS
TINY = {"r50": "tiny", "swinb": "tiny-swin"}
FP32_TOLERANCE = {"box_px": 1e-2, "score": 1e-4, "mask_iou": 0.99, "mask_pixels": 2, "matched": 1.0}
FP16_TOLERANCE = {"box_px": 2.0, "score": 2e-2, "mask_iou": 0.9, "mask_pixels": 10, "matched": 0.9}
AUDIO_MIN_COSINE = 0.99999
SIZES = {"640": (640, 640), "800": (800, 1333)}
BATCH_METHODS = ("detect_batch", "encode_batch")


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _half(detector: Any, device: Any) -> Iterator[None]:
    """The product's float16 context on CUDA (``AudiodeticModel(half=True).inference()``); bfloat16 CPU autocast in a
    dry run."""
    import torch

    if device.type == "cuda":
        from audiodetic.api import AudiodeticModel

        with AudiodeticModel(detector, device=str(device), half=True).inference():
            yield
    else:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


def _check_detections(ue: Any, ours: Any, reference: Any, tolerance: dict[str, float]) -> dict[str, Any]:
    report = ue.compare_detections(ue.RawDetections.from_detections(ours), ue.RawDetections.from_detections(reference))
    matched = report.matched / max(report.num_theirs, report.num_ours, 1)
    mismatches = report.mask_mismatches(min_iou=tolerance["mask_iou"], rounding_pixels=int(tolerance["mask_pixels"]))
    passed = (matched >= tolerance["matched"] and report.max_box_diff <= tolerance["box_px"]
              and report.max_score_diff <= tolerance["score"] and mismatches == 0 and report.num_theirs > 0)
    return {"passed": passed, "summary": report.summary(), "matched_fraction": matched,
            "max_box_diff": report.max_box_diff, "max_score_diff": report.max_score_diff, "mask_mismatches": mismatches}


def _detect(detector: Any, images: list[np.ndarray], vocabulary: Any, input_size: tuple[int, int],
            threshold: float) -> tuple[list[Any], str]:
    """Detections of every image and how they were computed (a batched method of the detector, or a loop)."""
    if len(images) > 1:
        for name in BATCH_METHODS:
            method = getattr(detector, name, None)
            if method is None:
                continue
            try:
                if name == "detect_batch":
                    return list(method(images, vocabulary, input_size=input_size, score_threshold=threshold)), name
                encodings = method(images, input_size=input_size)
                return [detector.classify(e, vocabulary, score_threshold=threshold) for e in encodings], name
            except TypeError:
                continue  # another signature than the one this script knows: fall back to the loop
    return [detector.detect(image, vocabulary, input_size=input_size, score_threshold=threshold)
            for image in images], "loop"


def _throughput(detector: Any, image: np.ndarray, vocabulary: Any, input_size: tuple[int, int], batch: int,
                device: Any, half: bool, iterations: int) -> dict[str, Any]:
    import torch

    images = [image] * batch
    context = _half(detector, device) if half else torch.inference_mode()
    with context:
        _, how = _detect(detector, images, vocabulary, input_size, 0.5)  # warm-up (kernel selection, caches)
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(iterations):
            _detect(detector, images, vocabulary, input_size, 0.5)
        _synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": batch * iterations / seconds, "method": how}


def _run_check(results: dict[str, Any], name: str, function: Callable[[], dict[str, Any]]) -> None:
    start = time.perf_counter()
    try:
        results[name] = function()
    except Exception as error:  # noqa: BLE001  (report every failure, keep checking)
        results[name] = {"passed": False, "error": f"{type(error).__name__}: {error}",
                         "traceback": traceback.format_exc(limit=-5)}
    results[name]["seconds"] = time.perf_counter() - start
    status = {True: "passed", False: "FAILED", None: "shown"}[results[name].get("passed", True)]
    detail = results[name].get("summary") or results[name].get("error") or ""
    print(f"[{status}] {name} ({results[name]['seconds']:.1f} s) {detail}", flush=True)
    if "traceback" in results[name]:
        print(results[name]["traceback"], flush=True)


def _audio_check(device: Any, dry_run: bool) -> dict[str, Any]:
    import torch

    from audiodetic.encoders.audio.features import load_imagebind_audio
    from audiodetic.encoders.audio.imagebind import AudioTowerConfig, ImageBindAudioEncoder

    torch.manual_seed(0)
    tower = ImageBindAudioEncoder(AudioTowerConfig.tiny() if dry_run else AudioTowerConfig.huge()).eval()
    rate = 16000
    t = np.arange(5 * rate) / rate
    sounds = [(np.sin(2 * np.pi * f * t)[None].astype(np.float32), rate) for f in (220.0, 880.0)]
    features = torch.stack([load_imagebind_audio(sound) for sound in sounds])
    on_cpu = tower.encode(features)
    on_device = tower.to(device).encode(features)
    cosine = float(torch.nn.functional.cosine_similarity(on_cpu, on_device).min())
    return {"passed": cosine >= AUDIO_MIN_COSINE, "min_cosine": cosine,
            "summary": f"min cosine {cosine:.7f} (>= {AUDIO_MIN_COSINE})"}


def _check_model(results: dict[str, Any], ue: Any, key: str, layout: str, image: np.ndarray, vocabulary: Any,
                 device: Any, sizes: dict[str, tuple[int, int]], batches: tuple[int, ...], iterations: int,
                 dry_run: bool) -> list[tuple[str, str, int, str, dict[str, Any]]]:
    """The fp32 and fp16 checks and the throughput cells of one model; returns its table rows."""
    from audiodetic.detector.convert import load_detector
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict

    state = make_detic_state_dict(layout, seed=0)
    reference = load_detector(state).detect(image, vocabulary, score_threshold=0.3)
    gpu = load_detector(state, device=str(device))
    _run_check(results, f"{key}_fp32", lambda: _check_detections(
        ue, gpu.detect(image, vocabulary, score_threshold=0.3), reference, FP32_TOLERANCE))

    def half_detect() -> dict[str, Any]:
        with _half(gpu, device):
            ours = gpu.detect(image, vocabulary, score_threshold=0.3)
        result = _check_detections(ue, ours, reference, FP16_TOLERANCE)
        if dry_run:  # bfloat16 keeps 8 mantissa bits, float16 11: the float16 tolerances do not apply
            result["passed"], result["summary"] = None, "(bfloat16 stand-in, not judged) " + result["summary"]
        return result

    _run_check(results, f"{key}_fp16", half_detect)
    rows = []
    for size, input_size in sizes.items():
        for batch in batches:
            for half in (False, True):
                name = f"{key}_{size}_b{batch}_{'fp16' if half else 'fp32'}"
                _run_check(results, name, functools.partial(
                    _throughput, gpu, image, vocabulary, input_size, batch, device, half, iterations))
                rows.append((key, size, batch, "fp16" if half else "fp32", results[name]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (default cuda)")
    parser.add_argument("--dry-run", action="store_true", help="tiny models on the CPU (code paths only)")
    parser.add_argument("--iterations", type=int, default=None, help="timed iterations per throughput cell")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    import torch

    from audiodetic.vocabulary import Vocabulary

    if args.dry_run:
        device, layouts, iterations, batches = torch.device("cpu"), TINY, args.iterations or 1, (1, 2)
        height, width, sizes = 96, 128, {"640": (128, 192)}  # P7 at least 1x2 (GroupNorm of the tiny heads)
    else:
        if not torch.cuda.is_available():
            print("gpu_check: CUDA is not available here (use --dry-run to exercise the code on the CPU)",
                  file=sys.stderr)
            return 2
        device, layouts, iterations, batches = torch.device(args.device), FULL, args.iterations or 3, (1, 8)
        height, width, sizes = 480, 640, SIZES
        torch.backends.cudnn.allow_tf32 = False  # true float32 convolutions for the fp32 comparison and table
        torch.backends.cuda.matmul.allow_tf32 = False
    ue = upstream_env()
    image = ue.synthetic_image(height, width, seed=0)
    classes = 8 if args.dry_run else 80
    embed = np.random.default_rng(1).normal(size=(classes, 512)).astype(np.float32)
    vocabulary = Vocabulary(tuple(f"class{i}" for i in range(classes)), embed)
    results: dict[str, Any] = {"device": str(device), "dry_run": args.dry_run}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
        print(f"GPU: {results['gpu']}; torch {torch.__version__}", flush=True)
    table = []
    for key, layout in layouts.items():
        table += _check_model(results, ue, key, layout, image, vocabulary, device, sizes, batches, iterations,
                              args.dry_run)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    _run_check(results, "audio", lambda: _audio_check(device, args.dry_run))
    print(f"\nthroughput on {results.get('gpu', device)} (images/s; random weights, one 480x640 picture repeated)")
    print(f"{'model':6s} {'size':>4s} {'batch':>5s} {'dtype':>5s} {'images/s':>9s}  method")
    for key, size, batch, dtype, row in table:
        rate = f"{row['images_per_s']:9.2f}" if "images_per_s" in row else "   failed"
        print(f"{key:6s} {size:>4s} {batch:5d} {dtype:>5s} {rate}  {row.get('method', row.get('error', ''))}")
    failed = [name for name, row in results.items() if isinstance(row, dict) and row.get("passed") is False]
    print(f"\n{'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
