"""``audiodetic demo``: launch the Gradio app (``demo/app.py``) on chosen weights.

``audiodetic demo [--detector NAME_OR_PATH] [--audio-weights NAME_OR_PATH] [--host H] [--port P]``; explicit
checkpoint files in the official Detic / ImageBind layouts work as well as known names.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand (Gradio is imported only when it runs)."""
    parser = subparsers.add_parser("demo", help="launch the Gradio demo in the browser",
                                   description="Launch the audiodetic Gradio demo (needs: pip install 'audiodetic[demo]').")
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (shared with ``demo/app.py``)."""
    from audiodetic.api import DEFAULT_AUDIO_WEIGHTS, DEFAULT_BRIDGE, DEFAULT_DETECTOR

    parser.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME_OR_PATH",
                        help=f"detector name or checkpoint in an official Detic layout (default {DEFAULT_DETECTOR})")
    parser.add_argument("--audio-weights", default=DEFAULT_AUDIO_WEIGHTS, metavar="NAME_OR_PATH",
                        help=f"ImageBind weights (default {DEFAULT_AUDIO_WEIGHTS})")
    parser.add_argument("--text-weights", default=None, metavar="NAME_OR_PATH",
                        help="CLIP ViT-B/32 weights for text prompts (default: the known clip-vit-b32)")
    parser.add_argument("--bridge", default=DEFAULT_BRIDGE, metavar="KIND_OR_PATH",
                        help="linear, retrieval or a saved bridge file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 = every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--concurrency", type=int, default=2, help="requests processed at once (default 2)")


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the demo needs Gradio: pip install 'audiodetic[demo]'") from None
    from audiodetic.app import launch

    return launch(args)
