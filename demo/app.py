"""Gradio demo of audiodetic: ``python demo/app.py [--detector NAME_OR_PATH] [--audio-weights NAME_OR_PATH]
[--host H] [--port P]`` (the same as ``audiodetic demo``).

The page itself lives in :mod:`audiodetic.app` so that the installed ``audiodetic demo`` command works without this
repository; this file re-exports ``build_demo(model) -> gr.Blocks`` and ``main()``.
"""

from __future__ import annotations

import sys

from audiodetic.app import build_demo, main

__all__ = ["build_demo", "main"]

if __name__ == "__main__":
    sys.exit(main())
