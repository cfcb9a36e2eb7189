"""Collections: images/s and peak memory of the one-at-a-time loop, the pipelined path and Ray with 1 and 2
workers; and peak memory of a run over N vs 10 N images (it must not grow with the collection).

Usage::

    python bench/bench_collection.py                                   # both parts, defaults below
    python bench/bench_collection.py --part speed --images 64 --repeats 2
    python bench/bench_collection.py --part memory --images 64 --memory-factor 10 --json out.json

Model: the R50 Detic layout with random weights and realistic statistics (``audiodetic.testing``), written once
as a checkpoint file into ``--workdir`` (Ray actors load it from there), 80 random classes. Images: seeded
480x640 JPEGs with shapes. Speed part: network input 640,640 (``--input-size``), masks on, score > 0.3.
Memory part: small 96x128 images at input 128,160 with up to 100 detections each at score > 0.05 (so that
each image adds a JSON line of several KB that a run holding its results would keep), run through the
pipelined path.

Every variant runs in a fresh child process; its wall time counts from the start of the run to the last result
written, model loading included (Ray: starting the local runtime too); peak memory is the largest sum of the
resident sizes of the child and all its descendants (Ray's raylet, GCS and worker processes), sampled every
0.1 s (memory Ray shares between processes is counted once per process). Variants alternate over
``--repeats``; the table gives the median and the minimum. The machine is whatever runs this; on a shared one,
take the figures as +-10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import MODELS

REPO = Path(__file__).resolve().parents[1]
LAYOUT = MODELS["r50"]
SPEED_VARIANTS = ("loop", "pipelined", "ray-1", "ray-2")


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def _run_child(args: list[str]) -> dict[str, Any]:
    """Run ``bench_collection.py --child ...``; returns its JSON report plus ``peak_mb`` of its process tree."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{err[-3000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    report["peak_mb"] = peak / 2**20
    return report


def _picture(height: int, width: int, seed: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 90, np.uint8) + rng.integers(0, 30, (height, width, 3), dtype=np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, height - height // 4), rng.integers(0, width - width // 4)
        image[y : y + rng.integers(height // 12, height // 4), x : x + rng.integers(width // 12, width // 4)] = \
            rng.integers(0, 256, 3)
    return image


def prepare(workdir: Path, images: int, size: tuple[int, int], name: str) -> Path:
    """The checkpoint, the vocabulary and ``images`` JPEGs of ``size`` in ``workdir/name`` (made once)."""
    import numpy as np
    from PIL import Image

    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "r50.pth").exists():
        make_detic_checkpoint(workdir / "r50.pth", LAYOUT, seed=0)
    if not (workdir / "vocab.npy").exists():
        np.save(workdir / "vocab.npy", np.random.default_rng(0).normal(size=(80, 512)).astype(np.float32))
    folder = workdir / name
    folder.mkdir(exist_ok=True)
    for index in range(images):
        path = folder / f"img{index:05d}.jpg"
        if not path.exists():
            Image.fromarray(_picture(*size, seed=index)).save(path, quality=90)
    return folder


def child(variant: str, folder: Path, workdir: Path, input_size: tuple[int, int], threshold: float,
          max_detections: int, out: Path) -> dict[str, Any]:
    """One timed run in this process (see the module docstring)."""
    import torch

    from audiodetic.collection import DetectionSettings, RunOptions, detect_collection

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    out.unlink(missing_ok=True)
    out.with_name(out.name + ".run.json").unlink(missing_ok=True)
    images = sorted(folder.glob("*.jpg"))
    start = time.perf_counter()
    if variant == "loop":  # what a user writes with the public API
        import audiodetic
        from audiodetic.io import JsonLinesAppender

        model = audiodetic.load(workdir / "r50.pth")
        vocabulary = model.vocabulary(vocabulary=workdir / "vocab.npy")
        predictor = model.predictor()
        with JsonLinesAppender(out) as lines:
            for path in images:
                predictor.set_image(path, input_size=input_size)
                found = predictor.predict(vocabulary, score_threshold=threshold, max_detections=max_detections)
                lines.append(found.to_json_dict(image=str(path)))
    else:
        settings = DetectionSettings(detector=str(workdir / "r50.pth"), vocabulary=str(workdir / "vocab.npy"),
                                     score_threshold=threshold, input_size=input_size, max_detections=max_detections)
        engine, workers = ("ray", int(variant.split("-")[1])) if variant.startswith("ray") else ("local", 2)
        summary = detect_collection([str(folder)], settings, out, RunOptions(engine=engine, workers=workers,
                                                                             progress=False))
        assert summary.processed == len(images) and not summary.failed_total, summary
    seconds = time.perf_counter() - start
    lines = out.read_text().splitlines()
    detections = sum(len(json.loads(line)["detections"]) for line in lines)
    return {"variant": variant, "images": len(lines), "seconds": seconds, "detections": detections,
            "output_mb": out.stat().st_size / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("speed", "memory", "both"), default="both")
    parser.add_argument("--images", type=int, default=64, help="images of the speed part and of the small run")
    parser.add_argument("--memory-factor", type=int, default=10, help="the large run has this many times more")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of the speed variants")
    parser.add_argument("--variants", default=",".join(SPEED_VARIANTS))
    parser.add_argument("--input-size", default="640,640")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiodetic-bench-collection"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, default=0.3, help=argparse.SUPPRESS)
    parser.add_argument("--max-detections", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.input_size.split(","))
    if args.child:
        report = child(args.child, args.folder, args.workdir, size, args.threshold, args.max_detections,
                       args.workdir / f"out-{os.getpid()}.jsonl")
        print(json.dumps(report))
        return 0
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "threads": int(os.environ.get("BENCH_THREADS", "2"))}
    if args.part in ("speed", "both"):
        folder = prepare(args.workdir, args.images, (480, 640), f"speed-{args.images}")
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeats):
            for variant in args.variants.split(","):
                report = _run_child(["--child", variant, "--folder", str(folder), "--workdir", str(args.workdir),
                                     "--input-size", args.input_size])
                runs.setdefault(variant, []).append(report)
                print(f"  {variant}: {report['seconds']:.1f} s, peak {report['peak_mb']:.0f} MB", flush=True)
        print(f"\n{args.images} images 480x640, R50 (random, full size) at {args.input_size}, "
              f"{os.cpu_count()} CPUs, {args.repeats} repeat(s); median (min)")
        print(f"{'variant':<10} {'seconds':>16} {'images/s':>16} {'peak MB':>16}")
        speed = {}
        for variant, reports in runs.items():
            seconds = [r["seconds"] for r in reports]
            peaks = [r["peak_mb"] for r in reports]
            speed[variant] = {"seconds": seconds, "peak_mb": peaks, "detections": reports[0]["detections"]}
            rates = [args.images / s for s in seconds]
            print(f"{variant:<10} {statistics.median(seconds):>9.1f} ({min(seconds):5.1f}) "
                  f"{statistics.median(rates):>9.3f} ({max(rates):5.3f}) "
                  f"{statistics.median(peaks):>9.0f} ({min(peaks):5.0f})")
        if "loop" in speed:
            base = statistics.median(speed["loop"]["seconds"])
            for variant in speed:
                ratio = base / statistics.median(speed[variant]["seconds"])
                speed[variant]["speed_vs_loop"] = ratio
                print(f"images/s of {variant} / loop: {ratio:.3f}")
        figures["speed"] = speed
    if args.part in ("memory", "both"):
        memory = {}
        for count in (args.images, args.images * args.memory_factor):
            folder = prepare(args.workdir, count, (96, 128), f"small-{count}")
            report = _run_child(["--child", "pipelined", "--folder", str(folder), "--workdir", str(args.workdir),
                                 "--input-size", "128,160", "--threshold", "0.05", "--max-detections", "100"])
            memory[count] = report
            print(f"  {count} images: {report['seconds']:.1f} s, peak {report['peak_mb']:.0f} MB", flush=True)
        small, large = (memory[c] for c in sorted(memory))
        print("\npipelined path, 96x128 images at 128,160, <= 100 detections each (masks as RLE)")
        for count in sorted(memory):
            r = memory[count]
            print(f"{count:>6} images: peak {r['peak_mb']:7.0f} MB, {r['detections']} detections, "
                  f"{r['output_mb']:.1f} MB of JSON lines written, {r['seconds']:.0f} s")
        print(f"peak memory {sorted(memory)[1]} / {sorted(memory)[0]} images: "
              f"{large['peak_mb'] / small['peak_mb']:.3f} (output grew {large['output_mb'] / small['output_mb']:.1f}x)")
        figures["memory"] = memory
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
