"""Options several ``audiodetic`` commands share, defined once: the models (``--detector``, ``--audio-weights``,
``--text-weights``, ``--bridge``, ``--device``, ``--half``), the prompts (``--audio``, ``--text``, ``--vocabulary``,
``--names``), detection (``--score-threshold``, ``--input-size``, ``--max-detections``, ``--no-masks``) and
progress (``--no-progress``). Defaults come from :mod:`audiodetic.api`; the help formatter
(:mod:`audiodetic.cli.help`) states each default once."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(parser: Any, *, text: bool = True, half: bool = True, device: bool = True) -> None:
    """``--detector``, ``--audio-weights``, ``--bridge``, ``--device`` (and ``--text-weights``, ``--half``)."""
    from audiodetic.api import DEFAULT_AUDIO_WEIGHTS, DEFAULT_BRIDGE, DEFAULT_DETECTOR, DEFAULT_TEXT_WEIGHTS
    from audiodetic.spaces import LABEL_BANK_KINDS

    parser.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME_OR_PATH",
                        help="a known detector (see `audiodetic models`) or a checkpoint in an official Detic layout")
    parser.add_argument("--audio-weights", default=DEFAULT_AUDIO_WEIGHTS, metavar="NAME_OR_PATH",
                        help="ImageBind weights for sound prompts (a known name or a file)")
    if text:
        parser.add_argument("--text-weights", default=DEFAULT_TEXT_WEIGHTS, metavar="NAME_OR_PATH",
                            help="CLIP ViT-B/32 weights for text and image prompts (a known name or a file)")
    parser.add_argument("--bridge", default=DEFAULT_BRIDGE, metavar="KIND_OR_FILE",
                        help=f"audio -> detector bridge: {' or '.join(LABEL_BANK_KINDS)} (fitted once, cached), or a "
                             f"saved bridge file (e.g. a paired bridge from `audiodetic bridge fit --kind paired`)")
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    if half:
        parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")


def add_prompt_options(parser: Any) -> None:
    """``--audio NAME=FILE`` (repeatable), ``--text NAME[=PHRASE]``, ``--vocabulary FILE``, ``--names A,B,C``."""
    parser.add_argument("--audio", action="append", default=[], metavar="NAME=FILE",
                        help="a sound prompt; repeat it, and repeat a NAME to average several clips of one thing "
                             "(FILE alone: named by its file stem)")
    parser.add_argument("--text", action="append", default=[], metavar="NAME",
                        help="a text prompt (NAME or NAME=PHRASE); repeatable")
    parser.add_argument("--vocabulary", metavar="FILE",
                        help="class embeddings: a (C, 512) .npy (Detic's format) or an audiodetic .npz vocabulary")
    parser.add_argument("--names", metavar="A,B,C", help="comma-separated names of the --vocabulary rows")


def add_detection_options(parser: Any, *, score_threshold: float, max_detections: int, per: str = "image",
                          input_size_help: str | None = None, masks_help: str = "skip instance masks") -> None:
    """``--score-threshold T``, ``--input-size MIN,MAX``, ``--max-detections N`` and ``--no-masks``, with the
    command's own defaults (``per``: what ``--max-detections`` counts per, "image" or "frame")."""
    parser.add_argument("--score-threshold", type=float, default=score_threshold, metavar="T",
                        help="keep detections scoring strictly above T, in [0, 1]")
    parser.add_argument("--input-size", metavar="MIN,MAX",
                        help=input_size_help or "shortest-edge resize target and cap (default: the detector's, "
                                                "800,1333; 640,640 is faster)")
    parser.add_argument("--max-detections", type=int, default=max_detections, metavar="N",
                        help=f"detections kept per {per}")
    parser.add_argument("--no-masks", action="store_true", help=masks_help)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``-q`` / ``--quiet`` / ``--no-progress``: one switch, three spellings."""
    parser.add_argument("-q", "--quiet", "--no-progress", dest="no_progress", action="store_true",
                        help="no progress bars or status lines")
