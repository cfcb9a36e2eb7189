"""A loopback HTTP file server with configurable faults, for the weights-manager tests.

Binds 127.0.0.1 on a random free port and serves in-memory files with ``GET``/``HEAD``, honouring
``Range: bytes=N-`` (206 + ``Content-Range``, 416 past the end; the whole file when ``If-Range`` does not match the
file's ``ETag``) unless told to misbehave. Every request is logged
so tests can assert what the client asked for. Never talks to any other host.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Fault:
    """How the server misbehaves for one path (all off by default).

    status: answer every request with this HTTP status and no body (e.g. 404, 500).
    ignore_range: answer ``200`` with the whole body even when a Range was requested.
    cut_after: send only this many body bytes (with the full Content-Length) and close the connection.
    cut_times: how many requests are cut before the path behaves again.
    delay_s: sleep before each chunk of ``chunk`` bytes (slow server: timeouts, lock contention).
    """

    status: int | None = None
    ignore_range: bool = False
    cut_after: int | None = None
    cut_times: int = 1
    delay_s: float = 0.0
    chunk: int = 16 * 1024


@dataclass
class Request:
    """One logged request."""

    method: str
    path: str
    range: str | None
    if_range: str | None = None
    status: int = 0


@dataclass
class WeightsServer:
    """``with WeightsServer() as server: server.files["/a.bin"] = b"..."; server.url("/a.bin")``."""

    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a cut is a plain close

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                owner._serve(self, with_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                owner._serve(self, with_body=False)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet)
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def gets(self, path: str | None = None) -> list[Request]:
        """Logged GET requests (optionally only those for ``path``)."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and (path is None or r.path == path)]

    def __enter__(self) -> "WeightsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler, *, with_body: bool) -> None:
        path = handler.path
        fault = self.faults.get(path, Fault())
        record = Request(handler.command, path, handler.headers.get("Range"), handler.headers.get("If-Range"))
        with self._lock:
            self.requests.append(record)
            cut = fault.cut_after is not None and fault.cut_times > 0
            if cut:
                fault.cut_times -= 1
        if fault.status is not None:
            return self._reply(handler, record, fault.status, {}, b"")
        data = self.files.get(path)
        if data is None:
            return self._reply(handler, record, 404, {}, b"")
        start = 0
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        match = _RANGE.match(record.range or "")
        if record.if_range is not None and record.if_range != etag:
            match = None  # the file changed since the client's partial copy: send it whole
        if match is not None and not fault.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                return self._reply(handler, record, 416, {"Content-Range": f"bytes */{len(data)}"}, b"")
        body = data[start:]
        headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes", "ETag": etag}
        status = 200
        if start > 0:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if cut:
            body = body[: fault.cut_after]
        self._reply(handler, record, status, headers, body if with_body else b"", fault=fault)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, record: Request, status: int, headers: dict[str, str],
               body: bytes, fault: Fault | None = None) -> None:
        record.status = status
        handler.send_response(status)
        if status >= 400:
            headers = {**headers, "Content-Length": "0"}
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        chunk = fault.chunk if fault is not None else 1 << 16
        try:
            for offset in range(0, len(body), chunk):
                if fault is not None and fault.delay_s:
                    time.sleep(fault.delay_s)
                handler.wfile.write(body[offset: offset + chunk])
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout): nothing to do


# --- the test file and its table entry (the fixtures ``server`` and ``weights_env`` are in tests/conftest.py) -----

import random  # noqa: E402

from audiodetic.weights import ModelFile  # noqa: E402

DATA = random.Random(0).randbytes(200_000)
"""The bytes of the test file served at :data:`PATH` (random, fixed seed)."""
SHA = hashlib.sha256(DATA).hexdigest()
PATH = "/files/tiny.bin"


def tiny_model(server: WeightsServer, *, sha256: str | None = None, size: int | None = None,
               name: str = "tiny-model") -> ModelFile:
    """Serve :data:`DATA` at :data:`PATH` and return a table entry for it (cache file name ``tiny.bin``)."""
    server.files[PATH] = DATA
    return ModelFile(name=name, url=server.url(PATH), filename="tiny.bin", licence="MIT", kind="text",
                     description="test file", architecture="none", sha256=sha256, size=size)
