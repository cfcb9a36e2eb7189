"""``audiodetic bridge fit|show``: fit a bridge from ImageBind's space into the detector space, or print a report.

``bridge fit`` encodes a label vocabulary with the ImageBind text tower and the CLIP ViT-B/32 text tower (progress
bars on stderr), fits a linear (ridge / Procrustes) or retrieval bridge, caches it in the weights cache by content
hash (a second run loads it) and optionally copies it to ``--output``. It prints the fit report (held-out top-1 /
top-5 retrieval of label names) and the bridge path on stdout. ``bridge show FILE.npz`` prints a saved report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audiodetic.errors import InputError, MissingFileError


def register(subparsers: Any) -> None:
    """Add ``bridge`` with its ``fit`` and ``show`` subcommands."""
    parser = subparsers.add_parser("bridge", help="fit or inspect a bridge (ImageBind space -> detector space)",
                                   description="Fit, cache and inspect bridges from ImageBind embeddings into the "
                                   "detector's CLIP ViT-B/32 text space.")
    actions = parser.add_subparsers(dest="action", metavar="fit|show")
    actions.required = True

    fit = actions.add_parser("fit", help="fit (or load from the cache) a bridge and print its report")
    fit.add_argument("--kind", choices=("linear", "retrieval"), default="linear")
    fit.add_argument("--method", choices=("ridge", "procrustes"), default="ridge", help="linear bridges only")
    fit.add_argument("--alpha", type=_alpha, default="auto",
                     help="ridge regularisation: a number >= 0 or 'auto' (best of a grid on a validation split)")
    fit.add_argument("--temperature", type=float, default=0.05, help="retrieval softmax temperature")
    fit.add_argument("--top-k", type=int, default=10, help="labels mixed per input (retrieval)")
    fit.add_argument("--labels", default="default",
                     help="label sets joined by '+' (lvis, coco, objects365, openimages, audioset, vggsound, esc50, "
                     "imagenet21k), 'default', 'builtin' (Detic's stored CLIP rows; no CLIP weights needed), or a "
                     ".txt file with one label per line")
    fit.add_argument("--imagebind-weights", default="imagebind_huge", metavar="PATH_OR_NAME")
    fit.add_argument("--clip-weights", default="clip-vit-b32", metavar="PATH_OR_NAME")
    fit.add_argument("--holdout", type=float, default=0.1, help="fraction of labels held out for the report")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--cache-dir", type=Path, default=None, help="weights cache (default: AUDIODETIC_CACHE ...)")
    fit.add_argument("--no-cache", action="store_true", help="neither read nor write cached bridges")
    fit.add_argument("--output", "-o", type=Path, default=None, metavar="OUT.npz", help="also save the bridge here")
    fit.add_argument("--json", action="store_true", help="print the report as JSON")
    fit.add_argument("--no-progress", action="store_true")

    show = actions.add_parser("show", help="print the fit report of a saved bridge")
    show.add_argument("path", type=Path, metavar="BRIDGE.npz")
    show.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _alpha(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def _labels(value: str) -> Any:
    path = Path(value)
    if value.endswith(".txt"):
        if not path.is_file():
            raise MissingFileError(f"label file not found: {path}")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return value


def _print(bridge: Any, as_json: bool) -> None:
    report = bridge.report
    if as_json:
        print(json.dumps(report.to_dict() if report else None, indent=2))
    elif report is None:
        print(f"{bridge!r}: no fit report")
    else:
        print(report.summary())


def run(args: argparse.Namespace) -> int:
    from audiodetic.bridge import load_bridge

    if args.action == "show":
        bridge = load_bridge(args.path)
        _print(bridge, args.json)
        return 0
    if not 0.0 <= args.holdout < 1.0:
        raise InputError(f"--holdout must be in [0, 1), got {args.holdout}")
    if args.output is not None and args.output.suffix != ".npz":
        raise InputError(f"--output must end in .npz, got {str(args.output)!r}")
    labels = _labels(args.labels)
    from audiodetic.bridge.fit import bridge_cache_dir, fit_bridge
    from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

    imagebind = ImageBindTextEncoder.from_checkpoint(args.imagebind_weights)
    clip = None
    if labels != "builtin":
        from audiodetic.encoders.clip_text import ClipTextEncoder

        clip = ClipTextEncoder.from_checkpoint(args.clip_weights)
    bridge = fit_bridge(args.kind, imagebind_text_encoder=imagebind, clip_text_encoder=clip, labels=labels,
                        method=args.method, alpha=args.alpha, temperature=args.temperature, top_k=args.top_k,
                        holdout=args.holdout, seed=args.seed, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                        progress=not args.no_progress)
    _print(bridge, args.json)
    if args.output is not None:
        bridge.save(args.output)
        print(f"saved {args.output}", file=sys.stderr)
    elif not args.no_cache:
        print(f"cached in {bridge_cache_dir(args.cache_dir)}", file=sys.stderr)
    return 0
