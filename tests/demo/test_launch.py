"""`audiodetic demo`'s options and start-up: every option has one help line stating one true default, the limits
reach the backend and Gradio, and the start-up text is ours (no "set share=True in launch()" hint)."""

from __future__ import annotations

import argparse
import os
import socket

import pytest
from surfaces_fixtures import shared_tiny_model

from audiodetic.demo import launch
from audiodetic.demo.uploads import UploadLimits
from audiodetic.inputs import MEGABYTE

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _demo_parser() -> argparse.ArgumentParser:
    from audiodetic.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices["demo"]


def test_cli_demo_parser_and_defaults() -> None:
    from audiodetic.cli import build_parser

    args = build_parser().parse_args(["demo", "--detector", "/x/model.pth", "--audio-weights", "/x/ib.pth",
                                      "--host", "0.0.0.0", "--port", "9000", "--share", "--concurrency", "3",
                                      "--max-queue", "5", "--max-sessions", "4", "--max-upload-mb", "1.5",
                                      "--max-image-megapixels", "2", "--max-audio-seconds", "30"])
    assert (args.detector, args.audio_weights, args.host, args.port) == ("/x/model.pth", "/x/ib.pth", "0.0.0.0",
                                                                         9000)
    assert (args.share, args.concurrency, args.max_queue, args.max_sessions) == (True, 3, 5, 4)
    assert launch.upload_limits(args) == UploadLimits(max_bytes=int(1.5 * MEGABYTE), max_image_pixels=2_000_000,
                                                      max_audio_seconds=30.0)
    assert args.func.__module__ == "audiodetic.cli.demo"
    defaults = build_parser().parse_args(["demo"])
    assert (defaults.share, defaults.concurrency, defaults.max_queue, defaults.max_sessions) == (False, 2, 32, 16)
    assert launch.upload_limits(defaults) == UploadLimits()
    assert UploadLimits() == UploadLimits(max_bytes=50 * MEGABYTE, max_image_pixels=40_000_000,
                                          max_audio_seconds=300.0)


@pytest.mark.parametrize("option, value", [("--max-queue", "0"), ("--concurrency", "-1"), ("--max-sessions", "x"),
                                           ("--max-upload-mb", "nan"), ("--max-audio-seconds", "0")])
def test_bad_option_values_are_usage_errors(option, value, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _demo_parser().parse_args([option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: must be a positive" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["audiodetic demo", "python -m audiodetic.demo"])
def test_every_option_has_one_help_line_with_one_true_default(which) -> None:
    from audiodetic.demo import launch

    parser = _demo_parser() if which == "audiodetic demo" else launch.build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = formatter._expand_help(action)
        assert text and "\n" not in text, action.option_strings
        assert text.count("default") == 1, (action.option_strings, text)
        if action.default not in (None, False):
            shown = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
            assert f"default {shown})" in text, (action.option_strings, text)
    assert "(default: X) (default" not in parser.format_help()


class _Recorder:
    """Stands in for a gr.Blocks: records what launch() was given."""

    local_url = "http://127.0.0.1:1234/"

    def launch(self, **kwargs) -> None:
        self.kwargs = kwargs


def test_start_passes_share_and_upload_limit_to_gradio(capsys) -> None:
    recorder = _Recorder()
    assert launch.start(recorder, host="127.0.0.1", port=1234, share=True, max_file_size=999) == recorder.local_url
    assert recorder.kwargs["share"] is True and recorder.kwargs["max_file_size"] == 999
    assert recorder.kwargs["quiet"] is True and recorder.kwargs["prevent_thread_lock"] is True
    assert recorder.kwargs["state_session_capacity"] == launch.GRADIO_SESSION_CAPACITY
    assert "serving on http://127.0.0.1:1234/" in capsys.readouterr().out


def test_real_start_prints_our_line_and_no_share_hint(capfd) -> None:
    pytest.importorskip("gradio")
    from audiodetic.demo.page import build_demo

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = build_demo(shared_tiny_model(0), examples=False)
    try:
        url = launch.start(demo, host="127.0.0.1", port=port, max_file_size=3 * MEGABYTE)
        assert url == f"http://127.0.0.1:{port}/" and demo.max_file_size == 3 * MEGABYTE
        assert demo.state_holder.capacity == launch.GRADIO_SESSION_CAPACITY
    finally:
        demo.close()
    out, err = capfd.readouterr()
    assert f"audiodetic demo: serving on http://127.0.0.1:{port}/" in out
    assert "share=True" not in out + err and "public link" not in out + err
