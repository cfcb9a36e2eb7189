"""``audiodetic eval``: COCO/LVIS evaluation, scoring a results file, merging shards, the sound benchmark.

::

    audiodetic eval coco|lvis --annotations FILE.json --images DIR --detector NAME_OR_PATH --output DIR
        [--vocabulary text | builtin | FILE.npy|.npz
         | --audio-map esc50|audioset|MAP.csv --audio-root DIR [--audio-meta CSV] [--shots 1,2,4,8]
           [--seeds 0,1,2] [--bridge linear --bridge retrieval | --bridge FILE.npz]]
        [--shard I/N] [--max-images N] [--score-threshold 0.02] [--max-detections 300] ...
    audiodetic eval coco|lvis --annotations FILE.json --predictions RESULTS.json --output DIR
    audiodetic eval merge --output DIR [--inputs DIR ...]
    audiodetic eval sound-localisation --dataset vggss|flickr|s4 --data DIR [--annotations ...] --output DIR

Under ``torchrun`` each process runs one shard on ``cuda:LOCAL_RANK`` and rank 0 merges (see
:mod:`audiodetic.sharding`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audiodetic.cli.options import add_detection_options, add_progress_option
from audiodetic.errors import InputError, MissingFileError


def register(subparsers: Any) -> None:
    """Add ``eval`` with its ``coco``, ``lvis`` and ``merge`` subcommands."""
    parser = subparsers.add_parser("eval", help="COCO/LVIS evaluation, the sound-prompt benchmark, sound localisation",
                                   description="Evaluate a detector on COCO or LVIS (box and mask AP), score a "
                                               "results file, merge shards, or benchmark sound prompts.")
    commands = parser.add_subparsers(dest="eval_command", metavar="DATASET", required=True)
    for kind in ("coco", "lvis"):
        sub = commands.add_parser(kind, help=f"evaluate on a {kind.upper()}-format annotation file")
        _add_run_arguments(sub)
        sub.set_defaults(func=run, kind=kind)
    merge = commands.add_parser("merge", help="merge finished shards, score them and write the reports")
    merge.add_argument("--output", required=True, type=Path, help="run folder (holds run.json); reports go here")
    merge.add_argument("--inputs", nargs="+", type=Path, metavar="DIR",
                       help="folders holding shard predictions (default: --output)")
    merge.add_argument("--annotations", type=Path, help="annotation file (default: the one in run.json)")
    merge.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    merge.set_defaults(func=run_merge)
    from audiodetic.cli import eval_localisation

    eval_localisation.add_parser(commands)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--annotations", required=True, type=Path, help="COCO/LVIS-format annotation JSON")
    add("--images", type=Path, help="image folder (LVIS: the COCO root holding train2017/ and val2017/)")
    add("--output", required=True, type=Path, help="run folder: predictions, results.json, reports")
    add("--predictions", type=Path, help="score this COCO results JSON instead of running a detector")
    add("--detector", help="detector weights: a known name (see `audiodetic models`) or a checkpoint file")
    add("--device", help="torch device (default: cuda[:LOCAL_RANK] when available, else cpu)")
    add("--vocabulary", default="text",
        help="'text' (CLIP text prompts 'a <name>'), 'builtin' (Detic's released LVIS/COCO embeddings), "
             "or a (C, 512) .npy / .npz in category-id order")
    add("--text-encoder", default="clip-vit-b32", help="CLIP ViT-B/32 text weights for text prompts")
    audio = parser.add_argument_group("sound-prompt benchmark")
    audio.add_argument("--audio-map", help="sound->category table: esc50, audioset, or a CSV "
                                           "(sound_class,category,notes)")
    audio.add_argument("--audio-root", type=Path, help="audio dataset root (ESC-50 layout: audio/*.wav, meta/)")
    audio.add_argument("--audio-meta", type=Path, help="clip list CSV with filename,category (default "
                                                       "<root>/meta/esc50.csv)")
    audio.add_argument("--shots", default="1,2,4,8", help="clips per prompt K, comma-separated")
    audio.add_argument("--seeds", "--seed", default="0,1,2", help="sampling seeds, comma-separated")
    audio.add_argument("--bridge", action="append", metavar="linear|retrieval|FILE.npz",
                       help="bridge(s) into the detector space (repeat; default: linear and retrieval)")
    audio.add_argument("--audio-encoder", default="imagebind_huge", help="ImageBind weights (name or file)")
    run = parser.add_argument_group("running")
    run.add_argument("--shard", help="run only shard I/N (0-based); finish with `audiodetic eval merge`")
    run.add_argument("--max-images", type=int, help="only the first N images (by id), for quick checks")
    add_detection_options(run, score_threshold=0.02, max_detections=300,
                          input_size_help="resize: shortest edge MIN, longest edge at most MAX (default 800,1333 as "
                                          "Detic's evaluation; 640,640 for the model zoo's real-time numbers)",
                          masks_help="skip the mask head (box AP only)")
    run.add_argument("--one-class-per-proposal", action="store_true",
                     help="keep only each region's best class (Detic's demo setting, not its evaluation)")
    run.add_argument("--overwrite", action="store_true", help="discard an existing run in --output")
    add_progress_option(run)
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--merge-timeout", type=float, default=86400.0, help="seconds rank 0 waits for other ranks")


def _print_summary(scores: Any, label: str) -> None:
    for iou_type, result in scores.items():
        shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.summary.items() if v >= 0)
        print(f"{label} {iou_type}: {shown}")


def _print_unmerged(args: argparse.Namespace, env: Any) -> None:
    if args.shard is None and env is not None:
        print(f"rank {env.rank} finished its shard; rank 0 merges into {args.output}")
    else:
        print(f"shard finished; when all shards are done run: audiodetic eval merge --output {args.output}")


def run(args: argparse.Namespace) -> int:
    """Run the ``eval coco|lvis`` command; returns the exit code."""
    from audiodetic.eval.datasets import EvalDataset
    from audiodetic.eval.pipeline import RunSettings, score_and_report
    from audiodetic.inputs import parse_input_size

    dataset = EvalDataset.load(args.kind, args.annotations, args.images)
    if args.predictions is not None:
        if not args.predictions.is_file():
            raise MissingFileError(f"predictions file not found: {args.predictions}")
        results = json.loads(args.predictions.read_text(encoding="utf-8"))
        if not isinstance(results, list):
            raise InputError(f"{args.predictions} must hold a JSON list of COCO result records")
        scores = score_and_report(dataset, results, args.output, title=f"{args.kind.upper()} {args.predictions.name}",
                                  plots=not args.no_plots, extra={"predictions": str(args.predictions)})
        _print_summary(scores, args.kind)
        print(f"reports in {args.output}")
        return 0
    if args.images is None or args.detector is None:
        raise InputError("running a detector needs --images and --detector (or score a file with --predictions)")
    input_size = parse_input_size(args.input_size, argument="--input-size")
    settings = RunSettings(score_threshold=args.score_threshold, max_detections=args.max_detections,
                           all_classes=not args.one_class_per_proposal, max_images=args.max_images,
                           input_size=input_size, with_masks=not args.no_masks)
    return _run_detector(args, dataset, settings)


def _run_detector(args: argparse.Namespace, dataset: Any, settings: Any) -> int:
    from audiodetic.eval import components
    from audiodetic.eval.pipeline import check_resume, evaluate, run_sound_benchmark
    from audiodetic.eval.runner import Variant
    from audiodetic.eval.vocabularies import (
        builtin_dataset_vocabulary,
        load_text_encoder,
        matrix_vocabulary,
        text_vocabulary,
    )
    from audiodetic.sharding import Shard, device_for, distributed_env

    env = distributed_env()
    shard = Shard.parse(args.shard) if args.shard else None
    device = device_for(env, args.device)
    common = dict(settings=settings, shard=shard, env=env, overwrite=args.overwrite, progress=not args.no_progress,
                  plots=not args.no_plots, merge_timeout_s=args.merge_timeout)
    described = {"detector": str(args.detector)}
    if args.audio_map is None:
        described["vocabulary"] = {"text": f"text:{args.text_encoder}", "builtin": f"builtin:{args.kind}"}.get(
            args.vocabulary) or str(Path(args.vocabulary).resolve())
        check_resume(args.output, dataset, settings, overwrite=args.overwrite, **described)  # before models load
        if args.vocabulary == "text":
            vocabulary = text_vocabulary(dataset.category_names, load_text_encoder(args.text_encoder, device=device))
        elif args.vocabulary == "builtin":
            vocabulary = builtin_dataset_vocabulary(args.kind, dataset.category_names)
        else:
            vocabulary = matrix_vocabulary(args.vocabulary, dataset.category_names)
        detector = components.load_eval_detector(args.detector, device=device)
        scores = evaluate(detector, dataset, {"main": Variant(vocabulary, dataset.category_ids)}, args.output,
                          described=described, **common)
        if scores is None:
            _print_unmerged(args, env)
            return 0
        _print_summary(scores["main"], args.kind)
        print(f"reports in {args.output / 'main'}")
        return 0
    from audiodetic.eval.mappings import load_mapping, read_clip_index
    from audiodetic.eval.sound_benchmark import plan_benchmark
    from audiodetic.spaces import LABEL_BANK_KINDS

    if args.audio_root is None:
        raise InputError("--audio-map needs --audio-root (the audio dataset folder)")
    if args.vocabulary != "text":
        raise InputError("--audio-map compares sounds with text prompts; do not combine it with --vocabulary FILE")
    mapping = load_mapping(args.audio_map, args.kind)
    plan = plan_benchmark(dataset, mapping, read_clip_index(args.audio_root, args.audio_meta),
                          shots=components.parse_int_list(args.shots, "--shots"),
                          seeds=components.parse_int_list(args.seeds, "--seeds"))
    embed, encoder_id, audio_dim = components.audio_embedder(args.audio_encoder, device=device)
    bridges = components.load_bridges(args.bridge or list(LABEL_BANK_KINDS), audio_dim=audio_dim)
    text = text_vocabulary(plan.categories, load_text_encoder(args.text_encoder, device=device))
    detector = components.load_eval_detector(args.detector, device=device)
    described.update(audio_root=str(args.audio_root.resolve()), text_encoder=str(args.text_encoder))
    summaries = run_sound_benchmark(detector, dataset, plan, text, bridges, embed, args.output,
                                    map_name=str(args.audio_map), encoder_id=encoder_id, described=described,
                                    **common)
    if summaries is None:
        _print_unmerged(args, env)
        return 0
    for iou_type, summary in summaries.items():
        print(f"{iou_type}: text AP {100 * summary['text_AP']:.1f}")
        for row in summary["overall"]:
            print(f"  {row['bridge']} K={row['shots']}: audio AP {100 * row['AP_mean']:.1f} "
                  f"(ratio {row['ratio']:.2f})")
    print(f"benchmark report: {args.output / 'benchmark.md'}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Run ``eval merge``: join shard predictions, score every variant, write reports (and benchmark tables)."""
    from audiodetic.eval.datasets import EvalDataset
    from audiodetic.eval.pipeline import merge_and_score, report_benchmark

    inputs = list(args.inputs or [args.output])
    info_path = next((Path(d) / "run.json" for d in [args.output, *inputs] if (Path(d) / "run.json").is_file()), None)
    if info_path is None:
        raise MissingFileError(f"no run.json in {[str(d) for d in [args.output, *inputs]]}; is this a run folder?")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    annotations = args.annotations or info.get("annotations")
    if not annotations:
        raise InputError("run.json names no annotation file; pass --annotations")
    dataset = EvalDataset.load(info["kind"], annotations)
    all_scores = merge_and_score(inputs, dataset, info, destination=args.output, plots=not args.no_plots)
    for name, scores in all_scores.items():
        _print_summary(scores, name)
    if "benchmark" in info:
        report_benchmark(args.output, all_scores, info, plots=not args.no_plots)
        print(f"benchmark report: {args.output / 'benchmark.md'}")
    print(f"merged {len(all_scores)} run(s) into {args.output}", file=sys.stderr)
    return 0
