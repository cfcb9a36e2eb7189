"""Starting the demo: its command-line options (shared by ``audiodetic demo`` and ``python -m audiodetic.demo``),
loading the models they name, and serving the page.

The server prints one line with its address. Gradio's own start-up text is silenced: it suggests setting
``share=True`` in ``launch()``, which a command-line user cannot do; ``--share`` is the way here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

from audiodetic.errors import InputError

DEFAULT_CONCURRENCY = 2
DEFAULT_MAX_QUEUE = 32
GRADIO_SESSION_CAPACITY = 1000
"""Sessions whose bookkeeping Gradio keeps (about 350 Python objects, 30-45 kB of memory each, measured with
Gradio 6.31 by ``bench/bench_demo.py``; Gradio's default is 10000, and it keeps a closed session's until that many
newer ones exist). The demo keeps nothing of its own in Gradio's session state, so a dropped one costs nothing."""


def _positive(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` accepting only positive finite numbers (``int`` or ``float``)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive {convert.__name__}, got {text!r}")
        return value

    parse.__name__ = convert.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options; each help line states its default once."""
    from audiodetic.cli.options import add_model_options
    from audiodetic.demo.sessions import DEFAULT_MAX_SESSIONS
    from audiodetic.demo.uploads import UploadLimits
    from audiodetic.inputs import MEGABYTE

    limits = UploadLimits()
    add_model_options(parser, half=False)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 = every interface (default %(default)s)")
    parser.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    parser.add_argument("--share", action="store_true",
                        help="also serve on a temporary public gradio.live link (needs internet; default: off)")
    parser.add_argument("--concurrency", type=_positive(int), default=DEFAULT_CONCURRENCY, metavar="N",
                        help="detection requests processed at once (default %(default)s)")
    parser.add_argument("--max-queue", type=_positive(int), default=DEFAULT_MAX_QUEUE, metavar="N",
                        help="requests that may wait; more are answered 'queue is full' (default %(default)s)")
    parser.add_argument("--max-sessions", type=_positive(int), default=DEFAULT_MAX_SESSIONS, metavar="N",
                        help="sessions whose encoded picture is kept; older ones encode again (default %(default)s)")
    parser.add_argument("--max-upload-mb", type=_positive(float), default=limits.max_bytes / MEGABYTE, metavar="MB",
                        help="largest uploaded file, in MB of 1024 x 1024 bytes (default %(default)g)")
    parser.add_argument("--max-image-megapixels", type=_positive(float), default=limits.max_image_pixels / 1e6,
                        metavar="MP", help="largest picture, width x height in millions of pixels "
                                           "(default %(default)g)")
    parser.add_argument("--max-audio-seconds", type=_positive(float), default=limits.max_audio_seconds,
                        metavar="S", help="longest sound, in seconds (default %(default)g)")
    parser.add_argument("--max-video-seconds", type=_positive(float), default=limits.max_video_seconds,
                        metavar="S", help="seconds of an uploaded video analysed, from its start (default %(default)g)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m audiodetic.demo`` (the same options and help as ``audiodetic demo``)."""
    from audiodetic.cli.help import CommandParser

    parser = CommandParser(prog="audiodetic demo", description="Launch the audiodetic Gradio demo.")
    add_arguments(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def upload_limits(args: argparse.Namespace) -> Any:
    """The :class:`~audiodetic.demo.uploads.UploadLimits` the options name."""
    from audiodetic.demo.uploads import UploadLimits
    from audiodetic.inputs import MEGABYTE

    return UploadLimits(max_bytes=int(args.max_upload_mb * MEGABYTE),
                        max_image_pixels=int(args.max_image_megapixels * 1e6),
                        max_audio_seconds=float(args.max_audio_seconds),
                        max_video_seconds=float(args.max_video_seconds))


def start(demo: Any, *, host: str, port: int, share: bool = False, max_file_size: int | None = None) -> str:
    """Serve ``demo`` (a ``gr.Blocks``) in the background and print one line with its address; returns the local
    URL. Gradio's start-up text is silenced (see the module docstring); with ``share`` Gradio still prints the
    public link, or why it could not make one. Gradio's per-session bookkeeping is capped at
    :data:`GRADIO_SESSION_CAPACITY` sessions."""
    demo.launch(server_name=host, server_port=port, share=share, max_file_size=max_file_size, show_error=True,
                quiet=True, prevent_thread_lock=True, state_session_capacity=GRADIO_SESSION_CAPACITY)
    url = demo.local_url
    print(f"audiodetic demo: serving on {url} (Ctrl+C stops it)", flush=True)
    return url


def launch(args: argparse.Namespace) -> int:
    """Load the models named in ``args``, build the page and serve it until interrupted."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("the demo needs Gradio: pip install 'audiodetic[demo]'") from None
    from audiodetic import api
    from audiodetic.demo.backend import DemoBackend, ModelSource
    from audiodetic.demo.page import build_demo

    limits = upload_limits(args)
    kwargs: dict[str, Any] = {"device": args.device, "audio_weights": args.audio_weights, "bridge": args.bridge,
                              "text_weights": args.text_weights}
    model = api.load(args.detector, **kwargs)
    models: dict[str, ModelSource] = {model.name: model}
    for name in api.list_models("detector", local_only=True):
        if name != model.name:
            models[name] = lambda name=name: api.load(name, **kwargs)
    backend = DemoBackend(models, limits=limits, max_sessions=args.max_sessions)
    demo = build_demo(backend, concurrency_limit=args.concurrency, max_queue=args.max_queue)
    try:
        start(demo, host=args.host, port=args.port, share=args.share, max_file_size=limits.max_bytes)
        demo.block_thread()
    finally:
        backend.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m audiodetic.demo``."""
    return launch(parse_args(argv))
