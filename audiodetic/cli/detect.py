"""``audiodetic detect``: find what makes given sounds (and/or matches texts or a vocabulary file) in images.

Contract (issue 3), extended with prompts, folders, globs and drawings::

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
import os
import sys
from pathlib import Path
from typing import Any, Sequence

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


def parse_names(text: str | None) -> list[str] | None:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; ``ValueError`` on empty entries."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise ValueError(f"--names must be comma-separated non-empty names, got {text!r}")
    return names


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """``"800,1333"`` -> ``(800, 1333)``; ``ValueError`` unless two positive integers."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if len(sizes) != 2 or min(sizes) <= 0:
        raise ValueError(f"--input-size must be MIN,MAX (two positive integers, e.g. 800,1333), got {text!r}")
    return sizes  # type: ignore[return-value]


def parse_audio(items: Sequence[str]) -> dict[str, list[str]]:
    """``["dog=a.wav", "dog=b.wav", "siren.ogg"]`` -> ``{"dog": ["a.wav", "b.wav"], "siren": ["siren.ogg"]}``.

    Every file must exist (``FileNotFoundError`` names it); names must be non-empty.
    """
    prompts: dict[str, list[str]] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = Path(item).stem, item
        name = name.strip()
        if not name or not file:
            raise ValueError(f"--audio takes NAME=FILE (or FILE), got {item!r}")
        if not Path(file).is_file():
            raise FileNotFoundError(f"--audio {item}: sound file not found: {file}")
        prompts.setdefault(name, []).append(file)
    return prompts


def parse_text(items: Sequence[str]) -> dict[str, str]:
    """``["car", "pet=a small dog"]`` -> ``{"car": "car", "pet": "a small dog"}``."""
    prompts: dict[str, str] = {}
    for item in items:
        name, sep, phrase = item.partition("=")
        name, phrase = name.strip(), (phrase if sep else name).strip()
        if not name or not phrase:
            raise ValueError(f"--text takes NAME or NAME=PHRASE (non-empty), got {item!r}")
        if name in prompts:
            raise ValueError(f"--text: the name {name!r} is given twice")
        prompts[name] = phrase
    return prompts


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files, folders (their image files, sorted, not recursive) and globs -> an ordered list without repeats."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise FileNotFoundError(f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no files match {item!r}")
            found.extend(matches)
        else:
            raise FileNotFoundError(f"image not found: {item}")
    return list(dict.fromkeys(found))


def check_images_readable(paths: Sequence[Path]) -> None:
    """Open every image's header before any model loads, so a bad file fails in seconds, naming the file."""
    from PIL import Image, UnidentifiedImageError

    for path in paths:
        try:
            with Image.open(path) as image:
                image.size  # noqa: B018 - the header is parsed by open()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"cannot read {path} as an image: {error}") from None


def load_vocabulary(path: str, names: Sequence[str] | None) -> Any:
    """A ``Vocabulary`` from a ``.npy`` matrix (Detic's format) or an audiodetic ``.npz`` file."""
    from audiodetic.vocabulary import Vocabulary

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {file}")
    if file.suffix.lower() == ".npz":
        return Vocabulary.load(file, names=names)
    return Vocabulary.from_npy(file, names=names)


def check_bridge_option(bridge: str, *, explain: bool, audio: bool) -> None:
    """``--bridge`` is a kind fitted on first use or an existing file; ``--explain`` needs sounds and a bridge that
    mixes labels. Checked before any model loads."""
    from audiodetic.bridge import BRIDGE_CLASSES
    from audiodetic.bridge.fit import PAIRED_HINT
    from audiodetic.errors import InputError, MissingFileError
    from audiodetic.spaces import LABEL_BANK_KINDS, is_bridge_kind, is_label_bank_kind

    if is_bridge_kind(bridge) and not is_label_bank_kind(bridge):
        raise InputError(f"--bridge {bridge}: {PAIRED_HINT}")
    if not is_bridge_kind(bridge) and not Path(bridge).is_file():
        raise MissingFileError(f"--bridge must be {' or '.join(LABEL_BANK_KINDS)} or a saved bridge file; "
                               f"not found: {bridge}")
    if explain and not audio:
        raise InputError("--explain describes sound prompts; give --audio NAME=FILE")
    explaining = [kind for kind, cls in BRIDGE_CLASSES.items() if hasattr(cls, "explain")]
    if explain and is_bridge_kind(bridge) and bridge not in explaining:
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
    names = parse_names(args.names)
    input_size = parse_input_size(args.input_size)
    if not 0.0 <= args.score_threshold < 1.0:
        raise ValueError(f"--score-threshold must lie in [0, 1), got {args.score_threshold}")
    if args.max_detections < 1:
        raise ValueError(f"--max-detections must be a positive integer, got {args.max_detections}")
    audio = parse_audio(args.audio)
    text = parse_text(args.text)
    if not (audio or text or args.vocabulary):
        raise ValueError("no prompts: give --audio NAME=FILE, --text NAME and/or --vocabulary FILE")
    if names is not None and args.vocabulary is None:
        raise ValueError("--names names the rows of --vocabulary; give --vocabulary FILE too")
    check_bridge_option(args.bridge, explain=args.explain, audio=bool(audio))
    images = expand_images(args.images)
    check_images_readable(images)
    vocabulary_file = load_vocabulary(args.vocabulary, names) if args.vocabulary else None
    output = None if args.output == "-" else Path(args.output)
    if output is not None and not output.parent.is_dir():
        raise FileNotFoundError(f"--output: directory does not exist: {output.parent}")
    draw_dir = Path(args.draw) if args.draw else None
    if draw_dir is not None:
        if draw_dir.exists() and not draw_dir.is_dir():
            raise ValueError(f"--draw {draw_dir}: exists and is not a folder")
        draw_dir.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    from audiodetic import api
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
        detections = predictor.predict(vocabulary, score_threshold=args.score_threshold,
                                       all_classes=args.all_classes, with_masks=not args.no_masks,
                                       max_detections=args.max_detections)
        results.append(detections.to_json_dict(image=str(image_path)))
        if drawing is not None:
            from audiodetic.viz import draw

            draw(pixels, detections).save(drawing)
        bar.write(f"{image_path}: {len(detections)} detections", file=sys.stderr)
    text_out = json.dumps(results)
    if output is None:
        sys.stdout.write(text_out + "\n")
    else:
        partial = output.with_name(output.name + ".partial")
        partial.write_text(text_out)
        os.replace(partial, output)
    return 0
