"""The demo under load: 20 concurrent sessions driven over HTTP with ``gradio_client`` on 127.0.0.1, against a
tiny random-weight model.

* every request gets its result, or - past the bounded queue - a clear "queue is full" answer;
* no more than ``concurrency_limit`` requests run at once (the backend counts them), and that many do;
* nothing leaks between sessions: each user's prompts have names no other user has, each picture a size no other
  has, and every table row, JSON download and drawing is checked against its own user;
* a session's second request re-scores its own encoding (one encoding per session, none shared).
* the Video tab's endpoint answers over HTTP with the annotated video and the track table.

Memory over many requests is measured by ``bench/bench_demo.py``, not here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from demo_clients import UserMedia, free_port
from PIL import Image
from surfaces_fixtures import EncodeCounter, shared_tiny_model

from audiodetic.demo.backend import DemoBackend
from audiodetic.structures import Detections

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

USERS = 20
CONCURRENCY = 2
TIMEOUT_S = 300  # for all the requests of one test: a hung server fails the test instead of hanging CI


class CountingBackend(DemoBackend):
    """A DemoBackend that counts the requests inside ``run`` at once, and can hold them at a gate."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.running = self.peak = self.calls = 0
        self._count = threading.Lock()

    def run(self, *args):
        with self._count:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            assert self.gate.wait(TIMEOUT_S), "the test never opened the gate"
            return super().run(*args)
        finally:
            with self._count:
                self.running -= 1


def _serve(backend: DemoBackend, *, concurrency: int, max_queue: int):
    from audiodetic.demo.launch import start
    from audiodetic.demo.page import build_demo

    demo = build_demo(backend, concurrency_limit=concurrency, max_queue=max_queue, examples=False)
    return demo, start(demo, host="127.0.0.1", port=free_port())


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    assert left > 0, f"the requests took more than {TIMEOUT_S} s"
    return left


def _clients(url: str, count: int) -> list:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: gradio_client.Client(url, verbose=False), range(count)))


def test_twenty_sessions_get_their_own_results_within_the_concurrency_limit(tmp_path) -> None:
    model = shared_tiny_model(0)
    backend = CountingBackend({model.name: model}, max_sessions=USERS)
    users = [UserMedia(i, tmp_path / "users").write() for i in range(USERS)]
    counter = EncodeCounter(model.detector)
    demo, url = _serve(backend, concurrency=CONCURRENCY, max_queue=2 * USERS)
    started = time.perf_counter()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        clients = _clients(url, USERS)
        first = [c.submit(*u.detect_args(0.0, model.name), api_name="/detect") for c, u in zip(clients, users)]
        first = [job.result(timeout=_left(deadline)) for job in first]
        second = [c.submit(*u.detect_args(0.3, model.name), api_name="/rescore_threshold")
                  for c, u in zip(clients, users)]
        second = [job.result(timeout=_left(deadline)) for job in second]
    finally:
        demo.close()
        del model.detector.encode
        backend.close()
    elapsed = time.perf_counter() - started

    assert backend.calls == 2 * USERS
    assert backend.peak == CONCURRENCY, f"{backend.peak} requests ran at once; the limit is {CONCURRENCY}"
    assert counter.calls == USERS, "each session encodes its picture once and re-scores it on its second request"
    for user, (annotated, _heard, table, json_path), (_, _, rescored, _) in zip(users, first, second):
        labels = [row[0] for row in table["data"]]
        assert labels and set(labels) <= user.labels, (user.index, set(labels) - user.labels)
        assert {row[0] for row in rescored["data"]} <= user.labels
        assert all(row[1] > 0.3 for row in rescored["data"])
        with Image.open(annotated) as drawn:
            assert drawn.size == (user.size[1], user.size[0]), "the drawing is of this user's picture"
        saved = json.loads(Path(json_path).read_text())[0]
        assert (saved["image"], saved["height"]) == (user.image.name, user.size[0])
        assert {d["label"] for d in saved["detections"]} <= user.labels
        assert len(Detections.from_json_dict(saved)) == len(table["data"])
    # the same rows the Python API gives for this user's picture and prompts alone
    for user, (_, _, table, _) in [(users[0], first[0]), (users[-1], first[-1])]:
        alone = model.detect(user.image, {user.sound_name: user.sound}, text_prompts=[user.text],
                             score_threshold=0.0).sorted_by_score()
        assert [row[0] for row in table["data"]] == list(alone.labels)
        assert [row[1] for row in table["data"]] == [round(float(s), 3) for s in alone.scores]
    print(f"{2 * USERS} requests from {USERS} sessions in {elapsed:.1f} s")


def test_past_the_bounded_queue_requests_are_told_the_queue_is_full(tmp_path) -> None:
    model = shared_tiny_model(0)
    backend = CountingBackend({model.name: model})
    backend.gate.clear()  # the first request holds the only worker until every request has been answered
    max_queue = 3
    users = [UserMedia(i, tmp_path / "users").write() for i in range(USERS)]
    demo, url = _serve(backend, concurrency=1, max_queue=max_queue)
    Status = gradio_client.utils.Status
    try:
        clients = _clients(url, USERS)
        jobs = [c.submit(*u.detect_args(0.5, model.name), api_name="/detect") for c, u in zip(clients, users)]
        deadline = time.monotonic() + TIMEOUT_S
        while any(job.status().code in (Status.STARTING, Status.JOINING_QUEUE) for job in jobs):
            assert _left(deadline), [job.status().code for job in jobs]
            time.sleep(0.05)
        assert backend.running == 1
        backend.gate.set()
        answered, full = [], []
        for user, job in zip(users, jobs):
            try:
                answered.append((user, job.result(timeout=_left(deadline))))
            except gradio_client.utils.QueueError as error:
                assert "queue is full" in str(error).lower(), repr(error)
                full.append(user)
    finally:
        demo.close()
        backend.close()
    assert len(answered) + len(full) == USERS
    assert 1 <= len(answered) <= max_queue + 1, "one running plus at most max_queue waiting are accepted"
    assert len(full) >= USERS - max_queue - 1
    assert backend.calls == len(answered)
    for user, (_, _, table, _) in answered:
        assert {row[0] for row in table["data"]} <= user.labels
    print(f"{len(answered)} answered, {len(full)} told the queue is full")


def test_the_video_tab_answers_over_http(tmp_path) -> None:
    """The Video tab's endpoint as a browser calls it: the upload, the soundtrack switch, the rate and the shared
    prompt controls in the page's order; back come the annotated video (with its audio) and the track table."""
    import av
    from gradio_client import handle_file

    from audiodetic.demo.uploads import UploadLimits
    from audiodetic.testing.video_media import write_test_video
    from audiodetic.video.backend import TRACK_COLUMNS

    clip = write_test_video(tmp_path / "clip.mp4", duration_s=3.0, fps=4.0, size=(160, 128))
    model = shared_tiny_model(0)
    backend = DemoBackend({model.name: model}, limits=UploadLimits(max_video_seconds=2.0))
    demo, url = _serve(backend, concurrency=1, max_queue=4)
    try:
        client = gradio_client.Client(url, verbose=False)
        annotated, tracks = client.predict(handle_file(str(clip.path)), True, 2.0, [], None, None, "recording",
                                           "", 0.0, model.name, api_name="/detect_video")
        with pytest.raises(Exception, match="soundtrack, or add a sound"):
            client.predict(handle_file(str(clip.path)), False, 2.0, [], None, None, "recording", "", 0.0,
                           model.name, api_name="/detect_video")
    finally:
        demo.close()
        backend.close()
    path = annotated["video"] if isinstance(annotated, dict) else annotated
    with av.open(path) as container:
        assert container.streams.audio, "the annotated video keeps the original audio"
        assert sum(1 for _ in container.decode(video=0)) == 4  # 2 frames/s over the first 2.0 s
    assert tracks["headers"] == list(TRACK_COLUMNS)
    assert all(len(row) == len(TRACK_COLUMNS) for row in tracks["data"])
