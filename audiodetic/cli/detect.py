"""``audiodetic detect``: find what makes given sounds (and/or matches texts or a vocabulary file) in images.

Usage::

    audiodetic detect IMAGE|DIR|GLOB... [--detector NAME_OR_PATH] [--vocabulary FILE.npy|.npz [--names a,b,c]]
        [--audio NAME=FILE]... [--text NAME]... [--bridge linear|retrieval|FILE] [--audio-weights NAME_OR_PATH]
        [--score-threshold T] [--input-size 800,1333] [--no-masks] [--all-classes] --output OUT.json [--draw DIR]

``OUT.json`` is a list with one object per image: ``{"image", "width", "height", "detections": [{"label",
"class_id", "score", "box": [x1, y1, x2, y2], "mask": {"size": [H, W], "counts": str}}]}``; boxes in original-image
pixels, masks as COCO compressed RLE, detections sorted by score. Vocabulary entries are ordered: sounds (in the
order their names first appear), texts, then the ``--vocabulary`` file. Exit codes: 0 done, 1 a runtime problem
(missing or unreadable file, bad value; the message says which), 2 bad command-line syntax, 130 interrupted.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from audiodetic.errors import InputError, MissingFileError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def register(subparsers: Any) -> None:
    """Add the ``detect`` subcommand to the dispatcher's subparsers."""
    parser = subparsers.add_parser(
        "detect",
        help="find the things that make given sounds (or match texts / a vocabulary) in images",
        description="Detect and segment prompted things in images (files, folders or globs); write one JSON list.",
        epilog="example: audiodetic detect photos/ --audio dog=bark.wav --audio dog=bark2.wav --text car "
               "--output out.json --draw drawn/",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the contract plus prompts, drawing and progress."""
    from audiodetic.api import DEFAULT_AUDIO_WEIGHTS, DEFAULT_BRIDGE, DEFAULT_DETECTOR, DEFAULT_TEXT_WEIGHTS
    from audiodetic.spaces import LABEL_BANK_KINDS

    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files, folders (their images, sorted) or quoted globs such as 'shots/**/*.jpg'")
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
                        help=f"audio -> detector bridge: {' or '.join(LABEL_BANK_KINDS)} (fitted on first use), or a "
                             f"saved bridge file, e.g. a paired one (default {DEFAULT_BRIDGE})")
    models.add_argument("--explain", action="store_true",
                        help="print what each sound was heard as (the retrieval bridge's top-3 labels and weights)")
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
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    parser.add_argument("--output", "-o", required=True, metavar="OUT.json",
                        help="where to write the JSON list ('-' = standard output)")
    parser.add_argument("--draw", metavar="DIR", help="also write each image with its detections drawn, as DIR/<name>.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files, folders (their image files, sorted, not recursive) and globs -> an ordered list without repeats."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise MissingFileError(f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise MissingFileError(f"no files match {item!r}")
            found.extend(matches)
        else:
            raise MissingFileError(f"image not found: {item}")
    return list(dict.fromkeys(found))


def check_bridge_option(bridge: str, *, explain: bool, audio: bool) -> None:
    """``--bridge`` is a kind fitted on first use or an existing file; ``--explain`` needs sounds and a bridge that
    mixes labels. Checked before any model loads."""
    from audiodetic.bridge import BRIDGE_CLASSES, check_bridge_spec
    from audiodetic.bridge.fit import PAIRED_HINT
    from audiodetic.spaces import is_bridge_kind, is_label_bank_kind

    spec = check_bridge_spec(bridge, argument="--bridge")
    if is_bridge_kind(spec) and not is_label_bank_kind(spec):
        raise InputError(f"--bridge {bridge}: {PAIRED_HINT}")
    if explain and not audio:
        raise InputError("--explain describes sound prompts; give --audio NAME=FILE")
    explaining = [kind for kind, cls in BRIDGE_CLASSES.items() if hasattr(cls, "explain")]
    if explain and is_bridge_kind(spec) and spec not in explaining:
        raise InputError(f"--explain shows the labels a bridge mixed; a {bridge} bridge mixes none (use --bridge "
                         f"{' or '.join(explaining)})")


def drawing_paths(images: Sequence[Path], directory: Path) -> list[Path]:
    """``DIR/<stem>.png`` per image; repeated stems get ``-2``, ``-3``... suffixes."""
    used: dict[str, int] = {}
    paths = []
    for image in images:
        count = used.get(image.stem, 0) + 1
        used[image.stem] = count
        paths.append(directory / (f"{image.stem}.png" if count == 1 else f"{image.stem}-{count}.png"))
    return paths


def run(args: argparse.Namespace) -> int:
    """Detect on every image, write the JSON list (and drawings); returns 0."""
    from audiodetic.inputs import (
        check_image_file,
        check_positive_int,
        check_threshold,
        parse_audio_options,
        parse_input_size,
        parse_names_option,
        parse_text_options,
    )
    from audiodetic.vocabulary import Vocabulary

    names = parse_names_option(args.names)
    input_size = parse_input_size(args.input_size)
    check_threshold(args.score_threshold, argument="--score-threshold")
    check_positive_int(args.max_detections, argument="--max-detections")
    audio = parse_audio_options(args.audio)
    text = parse_text_options(args.text)
    if not (audio or text or args.vocabulary):
        raise InputError("no prompts: give --audio NAME=FILE, --text NAME and/or --vocabulary FILE")
    if names is not None and args.vocabulary is None:
        raise InputError("--names names the rows of --vocabulary; give --vocabulary FILE too")
    check_bridge_option(args.bridge, explain=args.explain, audio=bool(audio))
    images = expand_images(args.images)
    for image in images:  # a bad file fails in seconds, before any model loads
        check_image_file(image)
    vocabulary_file = Vocabulary.load(args.vocabulary, names=names) if args.vocabulary else None
    output = None if args.output == "-" else Path(args.output)
    if output is not None and not output.parent.is_dir():
        raise MissingFileError(f"--output: directory does not exist: {output.parent}")
    draw_dir = Path(args.draw) if args.draw else None
    if draw_dir is not None:
        if draw_dir.exists() and not draw_dir.is_dir():
            raise InputError(f"--draw {draw_dir}: exists and is not a folder")
        draw_dir.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    from audiodetic import api, io
    from audiodetic.inputs import as_rgb_array

    model = api.load(args.detector, device=args.device, half=args.half, audio_weights=args.audio_weights,
                     text_weights=args.text_weights, bridge=args.bridge)
    vocabulary = model.vocabulary(audio or None, text or None, vocabulary=vocabulary_file)
    if args.explain:
        from audiodetic.bridge.explain import explain_sounds, format_explanation

        for line in format_explanation(explain_sounds(audio, audio_encoder=model.audio_encoder(),
                                                      bridge=model.bridge())):
            print(line, file=sys.stderr)
    predictor = model.predictor()
    results = []
    drawings = drawing_paths(images, draw_dir) if draw_dir is not None else [None] * len(images)
    bar = tqdm(list(zip(images, drawings)), desc="detect", unit="image", file=sys.stderr,
               disable=True if args.no_progress or len(images) < 2 else None)
    for image_path, drawing in bar:
        pixels = as_rgb_array(image_path)  # EXIF orientation applied, as detectron2 reads images
        predictor.set_image(pixels, input_size=input_size)
        detections = predictor.predict(vocabulary=vocabulary, score_threshold=args.score_threshold,
                                       all_classes=args.all_classes, with_masks=not args.no_masks,
                                       max_detections=args.max_detections)
        results.append(detections.to_json_dict(image=str(image_path)))
        if drawing is not None:
            from audiodetic.viz import draw

            io.save_image(drawing, draw(pixels, detections))
        bar.write(f"{image_path}: {len(detections)} detections", file=sys.stderr)
    text_out = json.dumps(results)
    if output is None:
        sys.stdout.write(text_out + "\n")
    else:
        io.write_text(output, text_out)
    return 0
