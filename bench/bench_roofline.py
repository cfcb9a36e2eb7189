"""How far each detector stage is from what this CPU can do: counted FLOPs, achieved GFLOP/s, the machine's peak.

For each model and thread count (each in its own spawned process): the FLOPs of one detect per stage, counted by
``torch.utils.flop_counter.FlopCounterMode`` (with formulas added for the kernels it does not know: NNPACK
convolutions and oneDNN GEMMs count as the direct convolution / GEMM they replace, CPU flash attention as its two
matrix products; RoIAlign, NMS, norms and element-wise ops count zero), the stage's median and minimum wall time
over ``--repeats`` runs, and the peak float32 rate of this machine measured in the same process by large matrix
products (4096^3 through oneDNN and through torch.mm/MKL; the fastest run counts, measured before the stages and
after each timed detect). ``headroom_s`` = time - FLOPs / peak: what the stage would save at the machine's peak;
the stage with the most is named. Winograd (NNPACK) does fewer multiplications than the direct convolution it is
counted as, so a convolution stage can exceed 100 % of the GEMM peak.

Random full-size weights in the official layout, a seeded 480x640 picture (800x1067 network input), 80 classes,
score threshold 0.5 (as ``bench_upstream.py``). Usage::

    python bench/bench_roofline.py [--models r50,swinb] [--threads 1,2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import MODELS, STAGES, parse_list, run_isolated, staged_detect, summary

PEAK_SIZE = 4096


def _gemm_flops(x_shape: Any, w_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # mkldnn::_linear_pointwise(X, W, B, attr, ...) and .binary(X, other, W, B, attr)
    if len(args) >= 2 and not isinstance(args[1], str):
        w_shape = args[0]
    rows = 1
    for size in x_shape[:-1]:
        rows *= size
    return 2 * rows * w_shape[0] * w_shape[1]


def _nnpack_flops(x_shape: Any, w_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    batch, _, height, width = out_shape
    out_channels, in_channels, kh, kw = w_shape
    return 2 * batch * out_channels * height * width * in_channels * kh * kw


def _attention_flops(q_shape: Any, k_shape: Any, v_shape: Any, *args: Any, out_shape: Any = None, **kw: Any) -> int:
    batch, heads, queries, depth = q_shape
    return 4 * batch * heads * queries * k_shape[-2] * depth


def _custom_flops() -> dict[Any, Any]:
    import torch

    mapping: dict[Any, Any] = {torch.ops.aten._nnpack_spatial_convolution: _nnpack_flops,
                               torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        mapping[torch.ops.mkldnn._linear_pointwise] = _gemm_flops
    return mapping


def peak_gflops(size: int = PEAK_SIZE, repeats: int = 3) -> dict[str, float]:
    """Best float32 GFLOP/s of a ``size``-cubed matrix product through oneDNN and through ``torch.mm`` (MKL)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    flops = 2.0 * size**3
    rates = {}
    runs = {"mm": lambda: torch.mm(a, b)}
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        runs["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    for name, run in runs.items():
        run()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        rates[name] = flops / best / 1e9
    return rates


def counted_flops(detector: Any, image: Any, vocabulary: Any, score_threshold: float) -> dict[str, int]:
    """FLOPs of each stage of one detect (see module docstring for what is counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops: dict[str, int] = {}
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flops())
    done = 0

    def mark(name: str) -> None:
        nonlocal done
        total = counter.get_total_flops()
        flops[name] = total - done
        done = total

    with counter:
        staged_detect(detector, image, vocabulary, score_threshold, mark)
    flops["total"] = done
    return flops


def bench_model(key: str, threads: int, repeats: int, score_threshold: float) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from bench_detector import _image
    from common import timed_stages

    from audiodetic.detector.convert import load_detector
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict
    from audiodetic.vocabulary import Vocabulary

    detector = load_detector(make_detic_state_dict(MODELS[key], seed=0))
    image = _image()
    embeddings = np.random.default_rng(1).normal(size=(80, 512)).astype(np.float32)
    vocabulary = Vocabulary(tuple(f"class{i}" for i in range(80)), embeddings)
    peaks = [peak_gflops()]
    detector.detect(image, vocabulary, score_threshold=score_threshold)  # warm-up
    flops = counted_flops(detector, image, vocabulary, score_threshold)
    times: dict[str, list[float]] = {}
    for _ in range(repeats):  # the peak is re-measured between detects: other processes load the machine unevenly
        stage_times, detections = timed_stages(detector, image, vocabulary, score_threshold)
        for name, value in stage_times.items():
            times.setdefault(name, []).append(value)
        peaks.append(peak_gflops())
    peak = max(max(p.values()) for p in peaks)
    rows = {}
    for name in (*STAGES, "total"):
        timing = summary(times[name])
        rate = flops[name] / timing["median"] / 1e9
        rows[name] = {"gflop": flops[name] / 1e9, **{f"{k}_s": v for k, v in timing.items()},
                      "gflops": rate, "of_peak": rate / peak,
                      "headroom_s": timing["median"] - flops[name] / (peak * 1e9)}
    stage_rows = {name: rows[name] for name in STAGES}
    most = max(stage_rows, key=lambda name: stage_rows[name]["headroom_s"])
    return {"model": key, "threads": threads, "peak_gflops": peak, "peaks": peaks, "stages": rows,
            "most_headroom": most, "detections": len(detections)}


def _print(result: dict[str, Any]) -> None:
    best = {name: max(p[name] for p in result["peaks"]) for name in result["peaks"][0]}
    runs = ", ".join(f"{name} {value:.0f}" for name, value in best.items())
    print(f"== {result['model']}, {result['threads']} thread(s): machine peak {result['peak_gflops']:.0f} GFLOP/s "
          f"float32 (best of {len(result['peaks'])}: {runs}); {result['detections']} detections")
    print(f"  {'stage':<18} {'GFLOP':>8} {'median s':>9} {'min s':>7} {'GFLOP/s':>8} {'of peak':>8} {'headroom s':>11}")
    for name, row in result["stages"].items():
        print(f"  {name:<18} {row['gflop']:8.1f} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['gflops']:8.1f} "
              f"{100 * row['of_peak']:7.1f}% {row['headroom_s']:11.3f}")
    print(f"  most headroom: {result['most_headroom']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=lambda s: parse_list(s, set(MODELS)), default=list(MODELS))
    parser.add_argument("--threads", type=lambda s: parse_list(s, kind=int), default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or any(n < 1 for n in args.threads):
        parser.error("--repeats and every thread count must be >= 1")
    results = []
    for key in args.models:
        for threads in args.threads:
            results.append(run_isolated(bench_model, key, threads, args.repeats, args.score_threshold))
            _print(results[-1])
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
