"""Benchmark: ImageBind audio embedding from a full-size imagebind_huge-layout file, tower-only vs whole-model load.

* ``tower``: :meth:`ImageBindAudioEncoder.from_checkpoint` (memory-mapped, audio tensors only);
* ``whole``: what upstream ``imagebind_huge(pretrained=True)`` does: allocate and initialise all six towers at full
  size (1.2 B parameters), ``torch.load`` the whole file (no mmap) and copy every tensor in; then embed with the
  audio tower.

Each mode runs in its own subprocess so peak RSS (``VmHWM``) is its own. Reported per mode: load time, peak
RSS, median preprocessing time per 10-s 44.1 kHz file, tower time per 2-s clip (three clips per file; fastest of
``--repeats`` batches). The per-clip ratio is timed in one process, alternating both towers, so CPU contention
from other processes affects both alike. The tower is also timed against itself run through upstream
ImageBind's operators (``AUDIODETIC_NNPACK=0``: ``nn.MultiheadAttention``, ``F.linear``, ``F.gelu`` as in
``BlockWithMasking``; the ImageBind package itself is not installed here), with the embeddings' cosine. Also
compared: preparing the input of one long file by reading only the three clips (ours) vs decoding and resampling
the whole file (upstream).
Without ``--checkpoint`` a random full-size six-modality file is written first (4.8 GB, about a minute).

    python bench/bench_audio.py [--checkpoint PATH] [--files 4] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import peak_rss_mb


def _write_media(folder: Path, files: int, long_seconds: float) -> tuple[list[Path], Path]:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        t = np.arange(10 * 44100) / 44100
        signal = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(t.shape)
        paths.append(folder / f"clip{i}.wav")
        sf.write(paths[-1], signal.astype(np.float32), 44100)
    long = folder / "long.flac"
    sf.write(long, (0.1 * rng.standard_normal(int(long_seconds * 44100))).astype(np.float32), 44100)
    return paths, long


def _worker(mode: str, checkpoint: str, media: list[str], threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from audiodetic.encoders.audio.features import load_imagebind_audio
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

    base_rss = peak_rss_mb()
    start = time.perf_counter()
    if mode == "tower":
        audio = ImageBindAudioEncoder.from_checkpoint(checkpoint)
    else:
        from audiodetic.testing.imagebind_checkpoints import imagebind_layout

        model = {key: torch.empty(shape).normal_(0, 0.02) for key, shape in imagebind_layout("huge").items()}
        loaded = torch.load(checkpoint, weights_only=True, map_location="cpu")
        for key, tensor in model.items():
            tensor.copy_(loaded[key])
        del loaded
        audio = ImageBindAudioEncoder.from_state_dict(model, source=checkpoint)
    load_s = time.perf_counter() - start

    load_imagebind_audio(media[0])  # warm-up (filter bank caches)
    feature_times, items = [], []
    for path in media:
        start = time.perf_counter()
        items.append(load_imagebind_audio(path))
        feature_times.append(time.perf_counter() - start)
    features = torch.stack(items)
    features_s = sorted(feature_times)[len(feature_times) // 2]
    audio.encode(features[:1])  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        audio.encode(features)
        runs.append(time.perf_counter() - start)
    clips = features.shape[0] * features.shape[1]
    result = {"mode": mode, "load_s": load_s, "peak_rss_mb": peak_rss_mb(), "rss_after_import_mb": base_rss,
              "features_s_per_file": features_s, "tower_s_per_clip": min(runs) / clips}
    if mode == "tower":
        result["vs_upstream_operators"] = _vs_upstream_operators(audio, features, repeats)
    if mode == "whole":
        # Timing under the same CPU contention: alternate the whole-model tower with a tower-only load.
        tower_only = ImageBindAudioEncoder.from_checkpoint(checkpoint)
        tower_only.encode(features[:1])
        best = {"tower": float("inf"), "whole": float("inf")}
        for _ in range(repeats):  # one file (three clips) at a time, alternating, fastest counts
            for item in features.split(1):
                for name, encoder in (("tower", tower_only), ("whole", audio)):
                    start = time.perf_counter()
                    encoder.encode(item)
                    best[name] = min(best[name], (time.perf_counter() - start) / item.shape[1])
        result["interleaved_s_per_clip"] = best
    return result


def _vs_upstream_operators(audio: object, features: object, repeats: int) -> dict:
    """Per-clip time of our tower against the same weights run through upstream ImageBind's operators.

    ``AUDIODETIC_NNPACK=0`` makes every block call ``nn.MultiheadAttention`` and ``F.linear``/``F.gelu`` as
    upstream's ``BlockWithMasking`` does (MKL GEMMs); unset, the blocks run on oneDNN GEMMs with fused GELU and
    residuals. Alternating one file (three clips) at a time, fastest per clip; embeddings compared by cosine.
    """
    import torch

    def encode(item: object, upstream: bool) -> object:
        previous = os.environ.pop("AUDIODETIC_NNPACK", None)
        if upstream:
            os.environ["AUDIODETIC_NNPACK"] = "0"
        try:
            return audio.encode(item)
        finally:
            os.environ.pop("AUDIODETIC_NNPACK", None)
            if previous is not None:
                os.environ["AUDIODETIC_NNPACK"] = previous

    best = {"ours": float("inf"), "upstream": float("inf")}
    for _ in range(repeats):
        for item in features.split(1):
            for name in ("ours", "upstream"):
                start = time.perf_counter()
                encode(item, name == "upstream")
                best[name] = min(best[name], (time.perf_counter() - start) / item.shape[1])
    cosine = torch.nn.functional.cosine_similarity(encode(features, False), encode(features, True))
    return {"s_per_clip": best, "ratio": best["ours"] / best["upstream"], "min_cosine": float(cosine.min())}


def _long_file(path: Path) -> dict:
    import torch

    from audiodetic.encoders.audio.features import _clip_features, clip_bounds, load_imagebind_audio, resample
    from audiodetic.encoders.audio.io import load_audio

    load_imagebind_audio(path)  # warm-up: filter bank caches, file cache
    start = time.perf_counter()
    load_imagebind_audio(path)
    clips_s = time.perf_counter() - start
    start = time.perf_counter()
    waveform, rate = load_audio(path)
    whole = resample(torch.from_numpy(waveform), rate)
    for lo, hi in clip_bounds(whole.shape[1]):
        clip = whole[:, lo:hi]
        _clip_features(clip - clip.mean(), False)
    whole_s = time.perf_counter() - start
    return {"seconds": len(waveform[0]) / rate, "read_three_clips_s": clips_s, "decode_and_resample_whole_s": whole_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="imagebind_huge-layout file (default: write a random one)")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "audiodetic-bench-audio"))
    parser.add_argument("--files", type=int, default=4, help="10-s 44.1 kHz files per batch")
    parser.add_argument("--long-seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per mode (the fastest counts)")
    parser.add_argument("--modes", default="tower,whole")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--media", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args.worker, args.checkpoint, args.media, args.threads, args.repeats)))
        return 0

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint) if args.checkpoint else workdir / "imagebind_huge_random.pth"
    if not checkpoint.exists():
        from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

        print(f"writing a random full-size checkpoint to {checkpoint} ...", flush=True)
        write_imagebind_checkpoint(checkpoint, "huge", seed=0)
    media, long = _write_media(workdir, args.files, args.long_seconds)

    results = {}
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--worker", mode, "--checkpoint", str(checkpoint),
                   "--threads", str(args.threads), "--repeats", str(args.repeats), "--media", *map(str, media)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    results["long_file"] = _long_file(long)

    print(f"{'mode':8s} {'load s':>8s} {'peak RSS MB':>12s} {'features s/file':>16s} {'tower ms/clip':>14s}")
    for mode in args.modes.split(","):
        r = results[mode]
        print(f"{mode:8s} {r['load_s']:8.2f} {r['peak_rss_mb']:12.0f} {r['features_s_per_file']:16.3f} "
              f"{1000 * r['tower_s_per_clip']:14.1f}")
    if "tower" in results and "whole" in results:
        t, w = results["tower"], results["whole"]
        both = w["interleaved_s_per_clip"]
        results["ratios"] = {"peak_rss": t["peak_rss_mb"] / w["peak_rss_mb"], "load_time": t["load_s"] / w["load_s"],
                             "tower_time_per_clip": both["tower"] / both["whole"]}
        r = results["ratios"]
        print(f"interleaved in one process: tower-only {1000 * both['tower']:.1f} ms/clip, whole-model "
              f"{1000 * both['whole']:.1f} ms/clip")
        print(f"ratios tower/whole: peak RSS {r['peak_rss']:.3f} (target <= 0.3), load time {r['load_time']:.3f}, "
              f"per-clip time {r['tower_time_per_clip']:.3f} (target <= 1)")
    if "tower" in results:
        vs = results["tower"]["vs_upstream_operators"]
        print(f"per clip against upstream's operators (same process, alternating): ours "
              f"{1000 * vs['s_per_clip']['ours']:.1f} ms, upstream {1000 * vs['s_per_clip']['upstream']:.1f} ms, "
              f"ratio {vs['ratio']:.2f} (target <= 0.8); embeddings min cosine {vs['min_cosine']:.7f} "
              "(target >= 0.99999)")
    lf = results["long_file"]
    print(f"long file ({lf['seconds']:.0f} s, 44.1 kHz) to model input: reading three clips "
          f"{lf['read_three_clips_s']:.3f} s vs decoding and resampling the whole file "
          f"{lf['decode_and_resample_whole_s']:.3f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
