"""Video throughput and memory: frames per second for R50 at 640, where the time goes, and peak memory for a
1-minute and a 10-minute video.

Usage::

    python bench/bench_video.py                              # 2 threads; videos cached in --workdir
    python bench/bench_video.py --speed-seconds 30 --memory-fps 0.5 --threads 1 --json out.json

Media: generated 640x360 videos at 10 fps (:mod:`audiodetic.testing.video_media`: moving shapes; a soundtrack that
cycles tone, noise, speech-like babble and silence every 8 s), H.264 + AAC, 1 and 10 minutes long.

Model: the random full-size R50 checkpoint in the official Detic layout
(:mod:`audiodetic.testing.detic_checkpoints`, loaded through ``convert.load_detector``), run at 640 (``input_size
= (640, 640)``, Detic's real-time setting), with the full-size ImageBind audio tower (random weights) and a random
linear bridge: the compute of the released models, not their accuracy.

Figures (each measurement in its own child process, so its peak RSS, ``VmHWM``, is its own):

* **speed**: ``--speed-seconds`` of the 1-minute video in soundtrack mode at ``--fps``: sampled frames per second of
  wall time, and the shares of decoding (frames and audio), audio encoding, detection and tracking.
* **memory**: the whole 1- and 10-minute videos in soundtrack mode at ``--memory-fps`` (a low rate so that the
  10-minute run stays affordable on a CPU; memory does not depend on it), and decode-only passes at ``--fps``:
  peak RSS of each and the 10-min / 1-min ratio.

The machine may be shared: timings are disturbed by other work; memory is not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import MODELS, peak_rss_mb

R50 = MODELS["r50"]
SIZE = (640, 360)
SOURCE_FPS = 10



def soundtrack_segments(minutes: float) -> list[Any]:
    from audiodetic.testing.video_media import Segment

    kinds = ("tone", "noise", "speech", "silence")
    return [Segment(start, start + 2.0, kinds[(int(start) // 2) % 4], 300.0 + 20 * (int(start) % 7))
            for start in range(0, int(minutes * 60), 2)]


def make_video(workdir: Path, minutes: float) -> Path:
    """The cached ``minutes``-long benchmark video."""
    from audiodetic.testing.video_media import write_test_video

    path = workdir / f"bench_{minutes:g}min.mp4"
    if not path.is_file():
        started = time.perf_counter()
        write_test_video(path, duration_s=minutes * 60, fps=SOURCE_FPS, size=SIZE,
                         segments=soundtrack_segments(minutes))
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    return path


def _model() -> Any:
    from audiodetic.api import AudiodeticModel
    from audiodetic.bridge import LinearBridge
    from audiodetic.detector.convert import load_detector
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.testing.detic_checkpoints import make_detic_state_dict

    detector = load_detector(make_detic_state_dict(R50, seed=0)).eval()
    audio = ImageBindAudioEncoder().eval()  # imagebind_huge's audio tower, random weights
    return AudiodeticModel(detector, audio_encoder=audio, bridge=LinearBridge.random(audio.embed_dim, 512, seed=0),
                           name="random R50")


def child(args: argparse.Namespace) -> None:
    """One measurement; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    if args.mode == "decode":
        from audiodetic.video.decode import VideoReader

        reader = VideoReader(args.video)
        started = time.perf_counter()
        frames = sum(1 for _ in reader.frames(fps=args.fps))
        blocks = sum(b.samples.shape[1] for b in reader.audio_blocks())
        wall = time.perf_counter() - started
        print(json.dumps({"mode": "decode", "video": args.video, "frames": frames, "decoded": reader.decoded_frames,
                          "audio_s": blocks / (reader.info.audio_sample_rate or 1), "wall_s": wall,
                          "peak_rss_mb": peak_rss_mb()}))
        return
    from audiodetic.video import detect_video

    model = _model()
    loaded_mb = peak_rss_mb()
    run = detect_video(args.video, soundtrack=True, fps=args.fps, end_s=args.end, model=model,
                       score_threshold=0.5, input_size=(640, 640), max_detections=100)
    started = time.perf_counter()
    frames = sum(1 for _ in run)
    wall = time.perf_counter() - started
    print(json.dumps({"mode": "detect", "video": args.video, "frames": frames, "wall_s": wall,
                      "fps": frames / wall if wall else None, "shares": run.stats.shares(),
                      "seconds": {"decode": run.stats.decode_s, "audio": run.stats.audio_s,
                                  "detect": run.stats.detect_s, "track": run.stats.track_s},
                      "windows_encoded": run.stats.windows_encoded, "silent_frames": run.stats.silent_frames,
                      "model_loaded_rss_mb": loaded_mb, "peak_rss_mb": peak_rss_mb()}))


def _spawn(args: argparse.Namespace, mode: str, video: Path, fps: float, end: float | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--video", str(video), "--fps", str(fps),
               "--threads", str(args.threads)]
    if end is not None:
        command += ["--end", str(end)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where the generated videos are kept (default: a temp dir)")
    parser.add_argument("--fps", type=float, default=2.0, help="sampling rate of the speed run (default 2)")
    parser.add_argument("--speed-seconds", type=float, default=20.0, help="seconds of video in the speed run")
    parser.add_argument("--memory-fps", type=float, default=0.2, help="sampling rate of the memory runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", choices=("detect", "decode"), dest="mode", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        child(args)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_video_"))
    workdir.mkdir(parents=True, exist_ok=True)
    videos = {minutes: make_video(workdir, minutes) for minutes in (1, 10)}
    figures: dict[str, Any] = {"threads": args.threads, "size": SIZE, "source_fps": SOURCE_FPS}
    speed = _spawn(args, "detect", videos[1], args.fps, end=args.speed_seconds)
    figures["speed"] = speed
    shares = ", ".join(f"{k} {100 * v:.1f} %" for k, v in speed["shares"].items())
    print(f"R50 at 640, soundtrack mode, {speed['frames']} frames at {args.fps:g} fps of a 640x360 video: "
          f"{speed['fps']:.3f} frames/s ({shares}); {speed['windows_encoded']} windows encoded, "
          f"{speed['silent_frames']} silent frames")
    for mode, fps in (("decode", args.fps), ("detect", args.memory_fps)):
        rows = {minutes: _spawn(args, mode, video, fps) for minutes, video in videos.items()}
        figures[f"memory_{mode}"] = rows
        one, ten = rows[1]["peak_rss_mb"], rows[10]["peak_rss_mb"]
        what = "decode only" if mode == "decode" else "soundtrack detection"
        print(f"peak RSS, {what} at {fps:g} fps: 1 min {one:.0f} MB ({rows[1]['frames']} frames), 10 min {ten:.0f} MB "
              f"({rows[10]['frames']} frames); ratio 10/1 = {ten / one:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
