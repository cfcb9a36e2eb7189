"""``audiodetic video``: find what is sounding in a video, frame by frame.

::

    audiodetic video IN.mp4|FRAMES_DIR --output OUT.jsonl [--draw OUT.mp4 [--heatmap]] [--tracks OUT.json]
        [--soundtrack] [--audio NAME=FILE]... [--text NAME]... [--vocabulary FILE [--names a,b]]
        [--fps 2|all] [--start S] [--end S] [--frame-rate FPS --audio-file FILE] [--score-threshold T] ...

``OUT.jsonl`` has one JSON object per sampled frame (see :mod:`audiodetic.video.records`); the track table goes to
``--tracks`` (default ``OUT.tracks.json``). Existing outputs are not replaced without ``--overwrite``, and no
output may be one of the inputs. Exit codes: 0 done, 1 a problem with the input (the message names it; for a file
damaged part-way the results up to the damage are kept), 2 bad command-line syntax, 130 interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

from audiodetic.errors import InputError, MissingFileError


def register(subparsers: Any) -> None:
    """Add the ``video`` subcommand."""
    from audiodetic.cli.options import add_detection_options, add_model_options, add_progress_option, add_prompt_options

    parser = subparsers.add_parser(
        "video", help="find the things that are sounding in a video, frame by frame",
        description="Detect prompted things - or whatever the video's own soundtrack sounds like - in the frames of "
                    "a video; write JSON Lines (one object per sampled frame), a track table and an annotated video.",
        epilog="examples: audiodetic video street.mp4 --soundtrack --output out.jsonl --draw out.mp4 --heatmap | "
               "audiodetic video street.mp4 --audio siren=siren.wav --text car --output out.jsonl")
    parser.add_argument("input", metavar="IN", help="a video file, or a folder of frames (with --frame-rate and "
                                                    "--audio-file)")
    parser.add_argument("--output", "-o", required=True, metavar="OUT.jsonl", help="JSON Lines, one line per frame")
    parser.add_argument("--draw", metavar="OUT.mp4", help="also write an annotated video (.mp4, .mkv, .webm, .mov, "
                                                          ".avi) at the sampled frame rate, with the original audio")
    parser.add_argument("--heatmap", action="store_true", help="overlay the soundtrack prompt's heat map in --draw")
    parser.add_argument("--tracks", metavar="OUT.json", help="track table (default: OUT.tracks.json)")
    prompts = parser.add_argument_group("prompts (any mix; at least one)")
    prompts.add_argument("--soundtrack", action="store_true",
                         help="use the video's own audio around each frame as a prompt named 'soundtrack'")
    add_prompt_options(prompts)
    timing = parser.add_argument_group("time")
    timing.add_argument("--fps", default="2", help="frames sampled per second, or 'all'")
    timing.add_argument("--start", type=float, default=0.0, metavar="S", help="start time in seconds")
    timing.add_argument("--end", type=float, metavar="S", help="end time in seconds (default: the end)")
    timing.add_argument("--frame-rate", type=float, metavar="FPS", help="frame rate of a folder of frames")
    timing.add_argument("--audio-file", metavar="FILE", help="the soundtrack of a folder of frames")
    add_model_options(parser.add_argument_group("models"))
    add_detection_options(parser, score_threshold=0.5, max_detections=100, per="frame")
    parser.add_argument("--no-tracking", action="store_true", help="do not link detections into tracks")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def parse_fps(text: str) -> float | None:
    """``"2"`` -> 2.0, ``"all"`` (or ``source``, ``original``) -> ``None`` (every frame); anything else but a
    positive finite number raises :class:`InputError` naming ``--fps``."""
    from audiodetic.video.sampling import check_fps

    if text.strip().lower() in ("all", "source", "original"):
        return None
    return check_fps(text, argument="--fps")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from audiodetic.inputs import parse_audio_options, parse_input_size, parse_names_option, parse_text_options
    from audiodetic.io import check_output, same_file
    from audiodetic.video.writer import check_video_suffix
    from audiodetic.vocabulary import Vocabulary

    fps = parse_fps(args.fps)
    input_size = parse_input_size(args.input_size)
    audio, text = parse_audio_options(args.audio), parse_text_options(args.text)
    names = parse_names_option(args.names)
    if not (audio or text or args.vocabulary or args.soundtrack):
        raise InputError("no prompts: give --soundtrack, --audio NAME=FILE, --text NAME and/or --vocabulary FILE")
    source = Path(args.input)
    if not source.exists():
        raise MissingFileError(f"input not found: {source}")
    inputs = [source, *(Path(f) for files in audio.values() for f in files)]
    inputs += [Path(p) for p in (args.audio_file, args.vocabulary) if p]
    output = check_output(args.output, inputs=inputs, overwrite=args.overwrite, what="--output")
    tracks = check_output(args.tracks or output.with_name(output.stem + ".tracks.json"), inputs=inputs,
                          overwrite=args.overwrite, what="--tracks")
    draw = None
    if args.draw:
        draw = check_output(check_video_suffix(args.draw), inputs=inputs, overwrite=args.overwrite, what="--draw")
    outputs_asked = [output, tracks, *([draw] if draw else [])]
    if any(same_file(a, b) for a, b in itertools.combinations(outputs_asked, 2)):
        raise InputError("--output, --tracks and --draw must be different files")
    vocabulary = Vocabulary.load(args.vocabulary, names=names) if args.vocabulary else None

    from tqdm.auto import tqdm

    from audiodetic import api
    from audiodetic.video.outputs import write_outputs
    from audiodetic.video.pipeline import detect_video

    model = api.load(args.detector, device=args.device, half=args.half, audio_weights=args.audio_weights,
                     text_weights=args.text_weights, bridge=args.bridge)
    run_ = detect_video(source, audio or None, text_prompts=text or None, vocabulary=vocabulary,
                        soundtrack=args.soundtrack, fps=fps, start_s=args.start, end_s=args.end, model=model,
                        score_threshold=args.score_threshold, with_masks=not args.no_masks,
                        max_detections=args.max_detections, input_size=input_size, audio=args.audio_file,
                        frame_rate=args.frame_rate, track=not args.no_tracking)
    bar = tqdm(total=run_.expected_frames, desc="video", unit="frame", file=sys.stderr,
               disable=True if args.no_progress else None)
    try:
        outputs = write_outputs(run_, jsonl=output, tracks_json=tracks, video=draw, heatmap=args.heatmap,
                                on_frame=lambda _: bar.update(1))
    finally:
        bar.close()
    silent = f", {run_.stats.silent_frames} silent" if args.soundtrack else ""
    print(f"{outputs.frames} frames{silent}, {len(outputs.tracks)} tracks -> {output}, {tracks}"
          + (f", {outputs.video}" if outputs.video else ""), file=sys.stderr)
    if outputs.error is not None:
        print(f"audiodetic video: error: {outputs.error}", file=sys.stderr)
        return 1
    return 0
