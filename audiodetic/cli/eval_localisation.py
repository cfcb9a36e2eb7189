"""``audiodetic eval sound-localisation``: the soundtrack prompt scored on VGG-SS, Flickr-SoundNet or AVSBench S4.

::

    audiodetic eval sound-localisation --dataset vggss --annotations vggss.json --data VGGSS/ --output runs/vggss
    audiodetic eval sound-localisation --dataset flickr --annotations Flickr/Annotations --data Flickr/ --output DIR
    audiodetic eval sound-localisation --dataset s4 --data s4_data/ --meta s4_meta_data.csv --output DIR

See :mod:`audiodetic.eval.localisation_data` for the layouts and :mod:`audiodetic.eval.localisation_metrics` for
the metrics.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    """Add ``sound-localisation`` to the ``eval`` subcommands."""
    from audiodetic.cli.options import add_model_options, add_progress_option
    from audiodetic.eval.localisation_data import DATASETS

    sub = commands.add_parser("sound-localisation", help="localise the sounding thing in benchmark frames (cIoU, "
                                                         "AUC; S4 mIoU, F-score)")
    sub.add_argument("--dataset", required=True, choices=DATASETS, help="the benchmark's annotation layout")
    sub.add_argument("--annotations", type=Path, help="vggss.json, or the Flickr-SoundNet XML folder")
    sub.add_argument("--data", type=Path, required=True,
                     help="media root: frames/ and audio/ (VGG-SS, Flickr), or the S4 data folder")
    sub.add_argument("--meta", type=Path, help="S4: s4_meta_data.csv (default: beside --data)")
    sub.add_argument("--split", default="test", help="S4 split")
    sub.add_argument("--output", type=Path, required=True, help="report folder")
    add_model_options(sub, half=False)
    sub.add_argument("--input-size", metavar="MIN,MAX", help="detector resize (default: the detector's)")
    sub.add_argument("--max-samples", type=int, help="only the first N samples")
    sub.add_argument("--skip-missing", action="store_true", help="leave out samples whose files are missing")
    sub.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_progress_option(sub)
    sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary; returns 0."""
    from audiodetic import api
    from audiodetic.eval.localisation_data import load_dataset
    from audiodetic.eval.localisation_run import evaluate_localisation
    from audiodetic.inputs import check_positive_int, parse_input_size

    if args.max_samples is not None:
        check_positive_int(args.max_samples, argument="--max-samples")
    input_size = parse_input_size(args.input_size)
    loaded = load_dataset(args.dataset, annotations=args.annotations, data=args.data, meta=args.meta,
                          split=args.split, skip_missing=args.skip_missing)
    model = api.load(args.detector, device=args.device, audio_weights=args.audio_weights,
                     text_weights=args.text_weights, bridge=args.bridge)
    summary = evaluate_localisation(model, loaded, args.dataset, args.output, input_size=input_size,
                                    max_samples=args.max_samples, plots=not args.no_plots,
                                    progress=not args.no_progress,
                                    described={"detector": str(args.detector), "audio_weights": str(args.audio_weights),
                                               "bridge": str(args.bridge)})
    shown = ", ".join(f"{k} {100 * v:.1f}" if k in ("cIoU@0.5", "AUC", "mean_cIoU", "mIoU") else f"{k} {v}"
                      for k, v in summary.items())
    print(f"{args.dataset}: {shown}")
    if args.dataset != "s4":
        print("published (trained methods, for context): VGG-SS cIoU@0.5 39-53, Flickr-SoundNet 84-86 "
              "(EZ-VSL, SSL-alignment, ACL-SSL, SOUPLE); training-free methods report lower")
    print(f"reports in {args.output}")
    return 0
