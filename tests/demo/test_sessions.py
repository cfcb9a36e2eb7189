"""The demo's per-session store: bounded, least recently used dropped first, never dropping a session in use,
and one session's folder and predictor never handed to another."""

from __future__ import annotations

import threading

import pytest

from audiodetic.demo.sessions import SessionStore


def test_capacity_drops_least_recently_used_with_its_folder(tmp_path) -> None:
    store = SessionStore(2, root=tmp_path / "sessions")
    folders = {}
    for session_id in ("a", "b"):
        with store.use(session_id) as session:
            session.predictor = f"encoding of {session_id}"
            folders[session_id] = session.folder
            (session.folder / "detections.json").write_text("{}")
    with store.use("a"):  # "a" is now the most recent
        pass
    with store.use("c") as session:
        assert session.predictor is None
    assert len(store) == 2 and "a" in store and "c" in store and "b" not in store
    assert not folders["b"].exists() and folders["a"].exists()
    with store.use("a") as session:
        assert session.predictor == "encoding of a" and session.folder == folders["a"]
    with store.use("b") as session:  # a dropped session comes back empty: its picture is encoded again
        assert session.predictor is None and session.folder != folders["b"]
    assert folders["a"].name != "a", "folders are not named by the client's session id"


def test_a_session_in_use_is_not_dropped_and_drop_waits_for_its_request(tmp_path) -> None:
    store = SessionStore(1, root=tmp_path)
    entered, release = threading.Event(), threading.Event()

    def busy() -> None:
        with store.use("busy") as session:
            session.predictor = "held"
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=busy)
    worker.start()
    assert entered.wait(10)
    with store.use("other") as session:  # over capacity, but "busy" is in use
        assert "busy" in store and len(store) == 2
    store.drop("busy")
    assert "busy" not in store
    busy_folder = next(p for p in tmp_path.iterdir() if p != session.folder)
    assert busy_folder.exists(), "the running request still writes there"
    release.set()
    worker.join(10)
    assert not busy_folder.exists()
    store.close()
    assert not tmp_path.exists()


def test_requests_of_one_session_run_one_at_a_time(tmp_path) -> None:
    store = SessionStore(4, root=tmp_path)
    running, peak, lock = [0], [0], threading.Lock()

    def request() -> None:
        with store.use("same"):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            threading.Event().wait(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 1 and len(store) == 1


def test_none_is_a_one_off_session_and_capacity_is_checked(tmp_path) -> None:
    store = SessionStore(3, root=tmp_path)
    with store.use(None) as first, store.use(None) as second:
        assert first.session_id != second.session_id and first.folder != second.folder
    with pytest.raises(ValueError, match="positive integer"):
        SessionStore(0, root=tmp_path)
