"""Starting the demo: its command-line options (shared by ``audiodetic demo`` and ``python -m audiodetic.demo``),
loading the models they name, and serving the page."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from audiodetic.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options."""
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="audiodetic demo", description="Launch the audiodetic Gradio demo.")
    add_arguments(parser)
    return parser.parse_args(argv)


def launch(args: argparse.Namespace) -> int:
    """Load the models named in ``args``, build the page and serve it until interrupted."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("the demo needs Gradio: pip install 'audiodetic[demo]'") from None
    from audiodetic import api
    from audiodetic.demo.backend import ModelSource
    from audiodetic.demo.page import build_demo

    kwargs: dict[str, Any] = {"device": args.device, "audio_weights": args.audio_weights, "bridge": args.bridge}
    if args.text_weights:
        kwargs["text_weights"] = args.text_weights
    model = api.load(args.detector, **kwargs)
    others: dict[str, ModelSource] = {}
    for name in api.list_models("detector", local_only=True):
        if name != model.name:
            others[name] = lambda name=name: api.load(name, **kwargs)
    build_demo(model, models=others, concurrency_limit=args.concurrency).launch(
        server_name=args.host, server_port=args.port, show_error=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m audiodetic.demo``."""
    return launch(parse_args(argv))
