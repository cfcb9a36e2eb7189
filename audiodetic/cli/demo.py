"""``audiodetic demo``: launch the Gradio demo (:mod:`audiodetic.demo`) on chosen weights.

``audiodetic demo [--detector NAME_OR_PATH] [--audio-weights NAME_OR_PATH] [--host H] [--port P] [--share] ...``
(the options, with the queue and upload limits, are in :func:`audiodetic.demo.launch.add_arguments`); explicit
checkpoint files in the official Detic / ImageBind layouts work as well as known names.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand (Gradio is imported only when it runs)."""
    from audiodetic.demo.launch import add_arguments

    parser = subparsers.add_parser("demo", help="launch the Gradio demo in the browser",
                                   description="Launch the audiodetic Gradio demo (needs: pip install 'audiodetic[demo]').")
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audiodetic.demo.launch import launch

    return launch(args)
