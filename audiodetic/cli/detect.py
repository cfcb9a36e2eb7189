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
import os
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
    from audiodetic.cli.options import add_detection_options, add_model_options, add_progress_option, add_prompt_options

    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files, folders (their images, sorted), quoted globs such as 'shots/**/*.jpg', "
                             "or .txt files listing one image path a line (relative to the list's folder)")
    add_prompt_options(parser.add_argument_group("prompts (any mix; at least one)"))
    models = parser.add_argument_group("models")
    add_model_options(models, device=False)
    models.add_argument("--explain", action="store_true",
                        help="print what each sound was heard as (the retrieval bridge's top-3 labels and weights)")
    add_detection_options(parser, score_threshold=0.5, max_detections=300)
    parser.add_argument("--all-classes", action="store_true",
                        help="score every class of a region, not only its best one")
    parser.add_argument("--max-image-pixels", type=int, metavar="N",
                        help="refuse image files above N pixels (default: $AUDIODETIC_MAX_IMAGE_PIXELS, else "
                             "178,956,970 - Pillow's decompression-bomb limit)")
    output = parser.add_argument_group("output")
    output.add_argument("--output", "-o", required=True, metavar="OUT",
                        help="OUT.jsonl: one line per image as it finishes, resumed when run again; OUT.json: one "
                             "JSON list written at the end; '-': the JSON list on standard output. An output is "
                             "never one of the inputs; an existing one is resumed, or replaced with --overwrite")
    output.add_argument("--draw", metavar="DIR",
                        help="also write each image with its detections drawn, as DIR/<name>.png")
    output.add_argument("--overwrite", action="store_true",
                        help="start over: discard the progress of an earlier run and replace existing outputs")
    output.add_argument("--fail-fast", action="store_true",
                        help="stop at the first image that fails (otherwise: report it, count it, go on)")
    add_progress_option(output)
    engine = parser.add_argument_group("running (none of this changes the detections)")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process, images prepared ahead by threads; ray: Ray Data actors, each "
                             "loading the model once (pip install 'audiodetic[ray]')")
    engine.add_argument("--workers", type=int, metavar="N",
                        help="local: threads reading and preprocessing images (when not given: the CPU count, at "
                             "most 4); ray: actors (when not given: 1)")
    engine.add_argument("--batch-size", type=int, metavar="B",
                        help="images per backbone pass (default 8 on CUDA, 1 on the CPU)")
    engine.add_argument("--address", metavar="ADDR",
                        help="ray: the cluster to join (ray://HOST:10001, HOST:6379 or auto; default: start a "
                             "local Ray runtime)")
    engine.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda, or cuda:LOCAL_RANK under torchrun, "
                                         "when CUDA is available; else cpu)")


def check_bridge_option(bridge: str, *, explain: bool, audio: bool) -> None:
    """``--bridge`` is a kind fitted on first use or an existing file; ``--explain`` needs sounds and a bridge that
    mixes labels. Checked before any model loads."""
    from audiodetic.bridge import BRIDGE_CLASSES
    from audiodetic.bridge.files import check_bridge_to_use
    from audiodetic.spaces import is_bridge_kind

    spec = check_bridge_to_use(bridge, argument="--bridge")
    if explain and not audio:
        raise InputError("--explain describes sound prompts; give --audio NAME=FILE")
    explaining = [kind for kind, cls in BRIDGE_CLASSES.items() if hasattr(cls, "explain")]
    if explain and is_bridge_kind(spec) and spec not in explaining:
        raise InputError(f"--explain shows the labels a bridge mixed; a {bridge} bridge mixes none (use --bridge "
                         f"{' or '.join(explaining)})")


def settings_from(args: argparse.Namespace) -> Any:
    """The :class:`~audiodetic.collection.settings.DetectionSettings` of the command line (checked)."""
    from audiodetic.collection.settings import DetectionSettings
    from audiodetic.inputs import (
        check_positive_int,
        check_threshold,
        parse_audio_options,
        parse_input_size,
        parse_names_option,
        parse_text_options,
    )

    check_threshold(args.score_threshold, argument="--score-threshold")
    check_positive_int(args.max_detections, argument="--max-detections")
    names = parse_names_option(args.names)
    if names is not None and args.vocabulary is None:
        raise InputError("--names names the rows of --vocabulary; give --vocabulary FILE too")
    audio = parse_audio_options(args.audio)
    check_bridge_option(args.bridge, explain=args.explain, audio=bool(audio))
    return DetectionSettings(
        detector=args.detector, audio=tuple((name, tuple(files)) for name, files in audio.items()),
        text=tuple(parse_text_options(args.text).items()), vocabulary=args.vocabulary,
        names=None if names is None else tuple(names), bridge=args.bridge, audio_weights=args.audio_weights,
        text_weights=args.text_weights, score_threshold=args.score_threshold,
        input_size=parse_input_size(args.input_size), with_masks=not args.no_masks, all_classes=args.all_classes,
        max_detections=args.max_detections, half=args.half,
    )


def run(args: argparse.Namespace) -> int:
    """Detect on every image into the output; returns 0, or 1 when some images failed."""
    from audiodetic.collection import RunOptions, detect_collection
    from audiodetic.inputs import ENV_MAX_IMAGE_PIXELS, max_image_pixels

    settings = settings_from(args)
    if args.max_image_pixels is not None:  # the engines' workers read the limit from the environment
        os.environ[ENV_MAX_IMAGE_PIXELS] = str(max_image_pixels(args.max_image_pixels))
    model = _explain(args, settings) if args.explain else None
    options = RunOptions(engine=args.engine, workers=args.workers, batch_size=args.batch_size, address=args.address,
                         device=args.device, draw_dir=Path(args.draw) if args.draw else None,
                         overwrite=args.overwrite, fail_fast=args.fail_fast, progress=not args.no_progress)
    summary = detect_collection(args.images, settings, args.output, options, model=model)
    print(f"audiodetic detect: {summary.line()}" + ("" if args.output == "-" else f" -> {args.output}"),
          file=sys.stderr)
    if summary.failed_total:
        print(f"audiodetic detect: {summary.failed_total} image(s) failed (reported above); run the same command "
              "again to retry them", file=sys.stderr)
        return 1
    return 0


def _explain(args: argparse.Namespace, settings: Any) -> Any:
    """Print what each sound prompt was heard as. The model is loaded on the device the run will use and returned
    for the run to reuse when it runs in this process (the local engine); under torchrun only rank 0 explains."""
    from audiodetic import api
    from audiodetic.bridge.explain import explain_sounds, format_explanation
    from audiodetic.sharding import device_for, distributed_env

    env = distributed_env()
    if env is not None and not env.is_main:
        return None
    model = api.load(settings.detector, device=device_for(env, args.device), half=settings.half,
                     audio_weights=settings.audio_weights, text_weights=settings.text_weights, bridge=settings.bridge)
    audio = {name: list(files) for name, files in settings.audio}
    for line in format_explanation(explain_sounds(audio, audio_encoder=model.audio_encoder(), bridge=model.bridge())):
        print(line, file=sys.stderr)
    return model if env is None and args.engine == "local" else None
