"""What audiodetic is doing during a long step, said in one line on standard error: loading a detector or an
encoder tower, fitting a bridge, encoding prompts. Short steps say nothing.

On by default, like the download and encoding progress bars; off with :func:`set_quiet` (the CLI's ``-q`` /
``--quiet`` / ``--no-progress``) or ``AUDIODETIC_QUIET=1``. A step that takes more than a second also says when it
is done and how long it took.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Iterator

ENV_QUIET = "AUDIODETIC_QUIET"
_state = {"quiet": None}
_lock = threading.Lock()
DONE_AFTER_S = 1.0


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) the status lines of this process."""
    _state["quiet"] = bool(quiet)


@contextlib.contextmanager
def quiet_while(quiet: bool) -> Iterator[None]:
    """Within the block, status lines are off when ``quiet`` (the earlier setting is restored after)."""
    before = _state["quiet"]
    if quiet:
        _state["quiet"] = True
    try:
        yield
    finally:
        _state["quiet"] = before


def is_quiet() -> bool:
    """Whether status lines are off (:func:`set_quiet`, else ``AUDIODETIC_QUIET``)."""
    if _state["quiet"] is not None:
        return bool(_state["quiet"])
    return os.environ.get(ENV_QUIET, "").strip().lower() not in ("", "0", "false", "no")


def say(message: str) -> None:
    """One status line ``audiodetic: <message>`` on standard error, unless quiet."""
    if not is_quiet():
        with _lock:
            print(f"audiodetic: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Say ``message`` now; if the step takes over a second, say that it is done and how long it took."""
    say(message)
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if elapsed > DONE_AFTER_S:
        say(f"  done in {elapsed:.1f} s")
