"""``audiodetic detect``: find what makes given sounds (and/or matches texts or a vocabulary) in images.

::

    audiodetic detect IMAGE|DIR|GLOB|LIST.txt... [--detector NAME_OR_PATH]
        [--vocabulary FILE.npy|.npz [--names a,b,c]] [--audio NAME=FILE]... [--text NAME]...
        [--bridge linear|retrieval|FILE] [--audio-weights NAME_OR_PATH] [--text-weights NAME_OR_PATH]
        [--score-threshold T] [--input-size 800,1333] [--no-masks] [--all-classes] [--max-detections N]
        --output OUT.jsonl|OUT.json|- [--draw DIR] [--overwrite] [--fail-fast]
        [--engine local|ray] [--workers N] [--batch-size B] [--address ADDR] [--device DEV] [--half]

Every image gives one object ``{"image", "width", "height", "detections": [{"label", "class_id", "score",
"box": [x1, y1, x2, y2], "mask": {"size": [H, W], "counts": str}}]}`` (boxes in original-image pixels, masks as
COCO compressed RLE, detections sorted by score). ``OUT.jsonl`` gets one line per image as it finishes and resumes
when the same command runs again; ``OUT.json`` is one JSON list (in the images' order) written at the end; ``-``
streams the list to standard output. Vocabulary entries are ordered: sounds (in the order their names first
appear), texts, then the ``--vocabulary`` file. Under ``torchrun`` each rank runs its share of the images.
Exit codes: 0 done, 1 a runtime problem (a missing or unreadable file, a bad value, or images that failed: the
message or the summary says which), 2 bad command-line syntax, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from audiodetic.errors import InputError


def register(subparsers: Any) -> None:
    """Add the ``detect`` subcommand to the dispatcher's subparsers."""
    parser = subparsers.add_parser(
        "detect",
        help="find the things that make given sounds (or match texts / a vocabulary) in images",
        description="Detect and segment prompted things in images (files, folders, globs or list files); write "
                    "one JSON line per image (.jsonl, resumable) or one JSON list (.json).",
        epilog="example: audiodetic detect photos/ --audio dog=bark.wav --audio dog=bark2.wav --text car "
               "--output out.jsonl --draw drawn/",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the contract plus prompts, drawing, engines and progress."""
    from audiodetic.api import DEFAULT_AUDIO_WEIGHTS, DEFAULT_BRIDGE, DEFAULT_DETECTOR, DEFAULT_TEXT_WEIGHTS

    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files, folders (their images, sorted), quoted globs such as 'shots/**/*.jpg', "
                             "or .txt files listing one image path a line (relative to the list's folder)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME_OR_PATH",
                        help="a known model name (see `audiodetic models`) or a checkpoint file "
                             f"(default {DEFAULT_DETECTOR})")
    prompts = parser.add_argument_group("prompts (any mix; at least one)")
    prompts.add_argument("--audio", action="append", default=[], metavar="NAME=FILE",
                         help="a sound prompt; repeat it, and repeat a NAME to average several clips of one thing "
                              "(FILE alone: named by its file stem)")
    prompts.add_argument("--text", action="append", default=[], metavar="NAME",
                         help="a text prompt (NAME or NAME=PHRASE); repeatable")
    prompts.add_argument("--vocabulary", metavar="FILE",
                         help="class embeddings: a (C, 512) .npy (Detic's format) or an audiodetic .npz vocabulary")
    prompts.add_argument("--names", metavar="A,B,C", help="comma-separated names of the --vocabulary rows")
    models = parser.add_argument_group("prompt encoders")
    models.add_argument("--bridge", default=DEFAULT_BRIDGE, metavar="KIND_OR_FILE",
                        help=f"audio -> detector bridge: linear, retrieval or a saved file (default {DEFAULT_BRIDGE})")
    models.add_argument("--audio-weights", default=DEFAULT_AUDIO_WEIGHTS, metavar="NAME_OR_PATH",
                        help=f"ImageBind weights for --audio (default {DEFAULT_AUDIO_WEIGHTS})")
    models.add_argument("--text-weights", default=DEFAULT_TEXT_WEIGHTS, metavar="NAME_OR_PATH",
                        help=f"CLIP ViT-B/32 weights for --text (default {DEFAULT_TEXT_WEIGHTS})")
    parser.add_argument("--score-threshold", type=float, default=0.5, metavar="T",
                        help="keep detections scoring strictly above T (default 0.5)")
    parser.add_argument("--input-size", metavar="MIN,MAX",
                        help="shortest-edge resize target and cap (default 800,1333; 640,640 is faster)")
    parser.add_argument("--no-masks", action="store_true", help="skip instance masks")
    parser.add_argument("--all-classes", action="store_true",
                        help="score every class of a region, not only its best one")
    parser.add_argument("--max-detections", type=int, default=300, metavar="N", help="per image (default 300)")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    output = parser.add_argument_group("output")
    output.add_argument("--output", "-o", required=True, metavar="OUT",
                        help="OUT.jsonl: one line per image as it finishes, resumed when run again; OUT.json: one "
                             "JSON list written at the end; '-': the JSON list on standard output")
    output.add_argument("--draw", metavar="DIR",
                        help="also write each image with its detections drawn, as DIR/<name>.png")
    output.add_argument("--overwrite", action="store_true",
                        help="start over: discard the progress of an earlier run and replace existing outputs")
    output.add_argument("--fail-fast", action="store_true",
                        help="stop at the first image that fails (default: report it, count it, go on)")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    engine = parser.add_argument_group("running (none of this changes the detections)")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process, images prepared ahead by threads (default); ray: Ray Data "
                             "actors, each loading the model once (pip install 'audiodetic[ray]')")
    engine.add_argument("--workers", type=int, metavar="N",
                        help="local: threads reading and preprocessing images (default: CPU count, at most 4); "
                             "ray: actors (default 1)")
    engine.add_argument("--batch-size", type=int, metavar="B",
                        help="images per backbone pass (default 8 on CUDA, 1 on the CPU)")
    engine.add_argument("--address", metavar="ADDR",
                        help="ray: the cluster to join (ray://HOST:10001, HOST:6379 or auto; default: start a "
                             "local Ray runtime)")
    engine.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda, or cuda:LOCAL_RANK under torchrun, "
                                         "when CUDA is available; else cpu)")


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """``"a,b,c"`` -> ``("a", "b", "c")``; ``InputError`` on empty entries."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if not names or any(not name for name in names):
        raise InputError(f"--names must be comma-separated non-empty names, got {text!r}")
    return names


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """``"800,1333"`` -> ``(800, 1333)``; ``InputError`` unless two positive integers."""
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 2 or min(sizes) <= 0:
        raise InputError(f"--input-size must be MIN,MAX (two positive integers, e.g. 800,1333), got {text!r}")
    return sizes  # type: ignore[return-value]


def settings_from(args: argparse.Namespace) -> Any:
    """The :class:`~audiodetic.collection.settings.DetectionSettings` of the command line (checked)."""
    from audiodetic.collection.settings import DetectionSettings, parse_audio_options, parse_text_options

    if not 0.0 <= args.score_threshold < 1.0:
        raise InputError(f"--score-threshold must lie in [0, 1), got {args.score_threshold}")
    if args.max_detections < 1:
        raise InputError(f"--max-detections must be a positive integer, got {args.max_detections}")
    names = parse_names(args.names)
    if names is not None and args.vocabulary is None:
        raise InputError("--names names the rows of --vocabulary; give --vocabulary FILE too")
    return DetectionSettings(
        detector=args.detector, audio=parse_audio_options(args.audio), text=parse_text_options(args.text),
        vocabulary=args.vocabulary, names=names, bridge=args.bridge, audio_weights=args.audio_weights,
        text_weights=args.text_weights, score_threshold=args.score_threshold,
        input_size=parse_input_size(args.input_size), with_masks=not args.no_masks, all_classes=args.all_classes,
        max_detections=args.max_detections, half=args.half,
    )


def run(args: argparse.Namespace) -> int:
    """Detect on every image into the output; returns 0, or 1 when some images failed."""
    from audiodetic.collection import RunOptions, detect_collection

    settings = settings_from(args)
    options = RunOptions(engine=args.engine, workers=args.workers, batch_size=args.batch_size, address=args.address,
                         device=args.device, draw_dir=Path(args.draw) if args.draw else None,
                         overwrite=args.overwrite, fail_fast=args.fail_fast, progress=not args.no_progress)
    summary = detect_collection(args.images, settings, args.output, options)
    print(f"audiodetic detect: {summary.line()}" + ("" if args.output == "-" else f" -> {args.output}"),
          file=sys.stderr)
    if summary.failed_total:
        print(f"audiodetic detect: {summary.failed_total} image(s) failed (reported above); run the same command "
              "again to retry them", file=sys.stderr)
        return 1
    return 0
