"""Benchmark: what the first sound prompt costs, with a cold cache and with a warm one.

The setting is a sound-only user: ``audiodetic.load(detector, audio_weights=IB)`` with the default bridge
(``retrieval``) and the default label bank (``auto``: Detic's shipped CLIP rows of the LVIS/COCO/Objects365/Open
Images names, so no CLIP ViT-B/32 file). ImageBind is the random full-size ``imagebind_huge`` layout
(audio and text towers, as :func:`audiodetic.testing.imagebind_checkpoints.write_imagebind_checkpoint` builds it;
1.8 GB in float32); the detector is the tiny random layout (the detector takes no part in building a prompt).

Each run is a fresh process (``--child``) and times, in order: loading the audio tower, making the bridge (loading
ImageBind's text tower, fingerprinting it, encoding the label bank or reading it from the disk cache, building the
bridge), the first sound prompt (a 5-s clip through the audio tower and the bridge) and a second, different sound.
``cold`` runs start from an empty weights cache; ``warm`` runs reuse the cache the cold run before them filled.
Runs alternate cold, warm, cold, warm ... so load from other processes affects both alike; min and median are
printed per stage.

    python bench/bench_first_prompt.py [--repeats 2] [--threads 2] [--workdir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("audio tower", "bridge", "first prompt", "first sound prompt, total", "second sound")


def _child(workdir: Path, threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    import audiodetic

    model = audiodetic.load(workdir / "detector.pth", audio_weights=workdir / "imagebind_huge.pth")
    times: dict[str, float] = {}
    start = time.perf_counter()
    model.audio_encoder()
    times["audio tower"] = time.perf_counter() - start
    mark = time.perf_counter()
    model.bridge()
    times["bridge"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model.vocabulary({"dog": str(workdir / "bark.wav")})
    times["first prompt"] = time.perf_counter() - mark
    times["first sound prompt, total"] = time.perf_counter() - start
    mark = time.perf_counter()
    model.vocabulary({"siren": str(workdir / "siren.wav")})
    times["second sound"] = time.perf_counter() - mark
    return times


def _prepare(workdir: Path) -> None:
    import numpy as np
    import soundfile as sf

    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "imagebind_huge.pth").is_file():
        print("writing a random full-size imagebind_huge-layout file (audio + text towers) ...", file=sys.stderr)
        write_imagebind_checkpoint(workdir / "imagebind_huge.pth", "huge", modalities=("audio", "text"))
    if not (workdir / "detector.pth").is_file():
        make_detic_checkpoint(workdir / "detector.pth", "tiny")
    t = np.arange(5 * 44100) / 44100
    for name, pitch in (("bark", 320.0), ("siren", 900.0)):
        tone = 0.4 * np.sin(2 * np.pi * pitch * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)) * t)
        sf.write(workdir / f"{name}.wav", tone.astype(np.float32), 44100)


def _run(kind: str, workdir: Path, cache: Path, threads: int) -> dict[str, float]:
    env = dict(os.environ, AUDIODETIC_CACHE=str(cache), AUDIODETIC_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, __file__, "--child", "--workdir", str(workdir), "--threads", str(threads)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-4000:]}")
    notes = [line for line in done.stderr.splitlines() if "label names" in line or "labels took" in line]
    for line in notes:
        print(f"  [{kind}] {line.strip()}", file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="cold/warm pairs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "audiodetic-bench-first-prompt")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.workdir, args.threads)))
        return
    _prepare(args.workdir)
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=args.workdir) as cache:
            for kind in ("cold", "warm"):
                print(f"run {repeat + 1}/{args.repeats}: {kind} ...", file=sys.stderr)
                runs[kind].append(_run(kind, args.workdir, Path(cache), args.threads))
    import torch

    print(f"first sound prompt, random full-size imagebind_huge layout, {args.threads} threads, "
          f"{os.cpu_count()} CPUs ({torch.__version__}); seconds, min / median of {args.repeats}:")
    print(f"{'stage':28s} {'cold cache':>18s} {'warm cache':>18s} {'warm/cold':>10s}")
    summary = {}
    for stage in STAGES:
        cold = [r[stage] for r in runs["cold"]]
        warm = [r[stage] for r in runs["warm"]]
        summary[stage] = {"cold": cold, "warm": warm}
        ratio = min(warm) / min(cold) if min(cold) > 0 else float("nan")
        print(f"{stage:28s} {min(cold):8.2f} / {statistics.median(cold):7.2f} "
              f"{min(warm):8.2f} / {statistics.median(warm):7.2f} {ratio:10.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"threads": args.threads, "stages": summary}, indent=2))


if __name__ == "__main__":
    main()
