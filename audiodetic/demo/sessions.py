"""Per-session state of the demo, bounded: each browser session's encoded picture and its output folder.

A session (keyed by Gradio's per-tab ``session_hash``) holds one :class:`~audiodetic.model.Predictor` - the
encoding of its current picture, the costly part (tens of MB for a full-size detector) - and a folder for its
JSON download. :class:`SessionStore` keeps at most ``capacity`` sessions: opening one more drops the least recently
used idle one (its predictor and folder), and a dropped session that comes back simply encodes its picture again.
The page also drops a session as soon as its browser tab closes (Gradio's ``unload`` event, fired when the tab's
heartbeat stream ends). Requests of one session run one at a time (:meth:`SessionStore.use`); different sessions
never share a predictor or a folder.

The encodings are kept here rather than in a ``gr.State``: Gradio (6.31) keeps a ``gr.State`` value until its
``time_to_live`` has passed (none by default) or, once the tab's heartbeat has ended, for one more hour, and it
keeps up to ``state_session_capacity`` sessions (10000 by default) - no bound on the encodings held.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiodetic.inputs import check_positive_int

DEFAULT_MAX_SESSIONS = 16
"""Sessions whose encoded picture the demo keeps, unless ``--max-sessions`` says otherwise."""


@dataclass
class Session:
    """One session: ``key`` names what ``predictor`` holds (model, picture file), ``pixels`` the picture it
    encoded (``(H, W, 3)`` uint8, for drawing); ``folder`` holds its outputs."""

    session_id: str
    folder: Path
    key: Any = None
    predictor: Any = None
    pixels: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    users: int = 0
    dropped: bool = False


class SessionStore:
    """At most ``capacity`` sessions, least recently used dropped first (see the module docstring).

    Args:
        capacity: how many sessions (hence encoded pictures) are held at once; at least 1.
        root: folder under which each session gets its output folder (default: a new temporary folder).
    """

    def __init__(self, capacity: int, root: str | Path | None = None) -> None:
        self.capacity = check_positive_int(capacity, argument="the session capacity")
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="audiodetic-demo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    @contextlib.contextmanager
    def use(self, session_id: str | None) -> Iterator[Session]:
        """Hold session ``session_id`` (made if new or dropped; a new random id for ``None``) for one request.

        Waits while another request of the same session runs. Making a session beyond ``capacity`` drops the least
        recently used sessions that no request is holding.
        """
        session_id = session_id or uuid.uuid4().hex
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                folder = self.root / uuid.uuid4().hex  # not named by the id, which comes from the client
                folder.mkdir()
                session = self._sessions[session_id] = Session(session_id, folder)
            self._sessions.move_to_end(session_id)
            session.users += 1
            self._evict()
        try:
            with session.lock:
                yield session
        finally:
            with self._lock:
                session.users -= 1
                if session.dropped and not session.users:
                    self._clear(session)
                self._evict()

    def _evict(self) -> None:
        for session_id in list(self._sessions):
            if len(self._sessions) <= self.capacity:
                return
            if not self._sessions[session_id].users:
                self._clear(self._sessions.pop(session_id))

    @staticmethod
    def _clear(session: Session) -> None:
        session.predictor = session.key = session.pixels = None
        shutil.rmtree(session.folder, ignore_errors=True)

    def drop(self, session_id: str | None) -> None:
        """Forget a session (its browser tab closed): its encoding and folder go now, or when its request ends."""
        with self._lock:
            session = self._sessions.pop(session_id, None) if session_id is not None else None
            if session is not None:
                session.dropped = True
                if not session.users:
                    self._clear(session)

    def close(self) -> None:
        """Drop every session and remove the root folder."""
        for session_id in list(self._sessions):
            self.drop(session_id)
        shutil.rmtree(self.root, ignore_errors=True)
