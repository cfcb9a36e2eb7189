"""Fixtures shared by every test folder. Helper modules (tiny models, generated media, the loopback weights server)
live in ``tests/helpers/`` and ``tests/upstream/``, which pytest puts on ``sys.path`` (``pythonpath`` in
pyproject.toml)."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from weights_server import WeightsServer

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def weights_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """No AUDIODETIC_* settings, no proxies, HOME and XDG_CACHE_HOME inside ``tmp_path``; returns ``tmp_path``."""
    for variable in list(os.environ):
        if variable.startswith("AUDIODETIC_") or variable.lower() in _PROXY_VARS:
            monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture
def server() -> Iterator[WeightsServer]:
    """A running :class:`~weights_server.WeightsServer` on 127.0.0.1, stopped after the test."""
    with WeightsServer() as running:
        yield running
