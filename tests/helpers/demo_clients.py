"""Driving the demo over HTTP with ``gradio_client``, as many users at once: a free local port, per-user media
with names no other user has, and the arguments of the page's ``/detect`` endpoint.

A helper module (``tests/helpers/`` is on pytest's ``pythonpath``), imported by the demo's load test and by
``bench/bench_demo.py``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from surfaces_fixtures import scene, write_tone

from audiodetic.demo.backend import NAME_HEADERS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class UserMedia:
    """User ``index``'s picture (``(64 + 2 * index) x 96``, a size no other user has) and a 1-s tone of its own
    pitch, in ``folder``, prompted as ``user-NN sound`` and ``user-NN thing``."""

    index: int
    folder: Path

    @property
    def image(self) -> Path:
        return self.folder / f"user{self.index:02d}.png"

    @property
    def sound(self) -> Path:
        return self.folder / f"user{self.index:02d}.wav"

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the picture."""
        return 64 + 2 * self.index, 96

    @property
    def sound_name(self) -> str:
        return f"user-{self.index:02d} sound"

    @property
    def text(self) -> str:
        return f"user-{self.index:02d} thing"

    @property
    def labels(self) -> set[str]:
        """Every label this user's results may hold."""
        return {self.sound_name, self.text}

    def write(self) -> UserMedia:
        self.folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(*self.size, seed=self.index)).save(self.image)
        write_tone(self.sound, 200.0 + 37.0 * self.index)
        return self

    def detect_args(self, threshold: float, model_name: str) -> tuple[Any, ...]:
        """The positional arguments of ``/detect`` (and the re-scoring endpoints) for this user."""
        from gradio_client import handle_file

        names = {"headers": NAME_HEADERS, "data": [[self.sound.name, self.sound_name]]}
        return (handle_file(str(self.image)), [handle_file(str(self.sound))], names, None, "recording", self.text,
                threshold, model_name)
