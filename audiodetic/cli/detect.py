"""``audiodetic detect``: run the detector on images with a vocabulary file and write JSON.

Contract (issue 3)::

    audiodetic detect IMAGE... --detector NAME_OR_PATH --vocabulary FILE.npy [--names a,b,c]
        --score-threshold T [--input-size 800,1333] [--no-masks] [--all-classes] --output OUT.json

``OUT.json`` is a list with one object per image: ``{"image", "width", "height", "detections": [{"label",
"class_id", "score", "box": [x1, y1, x2, y2], "mask": {"size": [H, W], "counts": str}}]}``; boxes in original-image
pixels, masks as COCO compressed RLE, detections sorted by score.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence


def register(subparsers: Any) -> None:
    """Add the ``detect`` subcommand to the dispatcher's subparsers."""
    parser = subparsers.add_parser(
        "detect",
        help="detect and segment the vocabulary's classes in images",
        description="Detect and segment the classes of a vocabulary in images; write one JSON list.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the contract; extensions (``--audio``/``--text``/``--draw``) add theirs beside these."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    parser.add_argument("--detector", required=True, metavar="NAME_OR_PATH",
                        help="a known model name (see `audiodetic models`) or a checkpoint file")
    parser.add_argument("--vocabulary", metavar="FILE",
                        help="class embeddings: a (C, 512) .npy (Detic's format) or an audiodetic .npz vocabulary")
    parser.add_argument("--names", metavar="A,B,C", help="comma-separated class names (C of them)")
    parser.add_argument("--score-threshold", type=float, default=0.5, metavar="T",
                        help="keep detections scoring strictly above T (default 0.5)")
    parser.add_argument("--input-size", metavar="MIN,MAX",
                        help="shortest-edge resize target and cap (default 800,1333; 640,640 is faster)")
    parser.add_argument("--no-masks", action="store_true", help="skip instance masks")
    parser.add_argument("--all-classes", action="store_true",
                        help="score every class of a region, not only its best one")
    parser.add_argument("--max-detections", type=int, default=300, metavar="N", help="per image (default 300)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--output", "-o", required=True, metavar="OUT.json", help="where to write the JSON list")


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


def read_image(path: str | os.PathLike[str]) -> Any:
    """An image file as ``(H, W, 3)`` uint8 RGB (EXIF orientation applied, as detectron2's ``read_image``)."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"))
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


def run(args: argparse.Namespace) -> int:
    """Detect on every image and write the JSON list; returns 0."""
    names = parse_names(args.names)
    input_size = parse_input_size(args.input_size)
    if not 0.0 <= args.score_threshold < 1.0:
        raise ValueError(f"--score-threshold must lie in [0, 1), got {args.score_threshold}")
    if args.vocabulary is None:
        raise ValueError("--vocabulary FILE is required (a (C, 512) .npy or an audiodetic .npz)")
    for image in args.images:
        if not Path(image).is_file():
            raise FileNotFoundError(f"image not found: {image}")
    vocabulary = load_vocabulary(args.vocabulary, names)
    output = Path(args.output)
    if output.parent and not output.parent.exists():
        raise FileNotFoundError(f"output directory does not exist: {output.parent}")

    from audiodetic.detector.convert import load_detector
    from audiodetic.predictor import Predictor

    detector = load_detector(args.detector, device=args.device)
    vocabulary.check_compatible(dim=detector.config.embed_dim)
    predictor = Predictor(detector)
    results = []
    for image_path in args.images:
        predictor.set_image(read_image(image_path), input_size=input_size)
        detections = predictor.predict(
            vocabulary,
            score_threshold=args.score_threshold,
            all_classes=args.all_classes,
            with_masks=not args.no_masks,
            max_detections=args.max_detections,
        )
        results.append(detections.to_json_dict(image=str(image_path)))
        predictor.reset_image()
        print(f"{image_path}: {len(detections)} detections", file=sys.stderr)
    output.write_text(json.dumps(results))
    return 0
