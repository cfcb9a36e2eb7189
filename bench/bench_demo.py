"""The demo's server memory under load: resident memory (RSS) of a demo server before and after many requests.

Usage::

    python bench/bench_demo.py                              # 20 users, 600 requests per phase
    python bench/bench_demo.py --users 20 --requests 400 --concurrency 2 --max-sessions 16 --json out.json

The server runs in a child process (so its RSS is its own, read from ``/proc/self/status`` there) on 127.0.0.1
with a tiny random-weight model (``tests/helpers/surfaces_fixtures.tiny_model``), driven over HTTP by
``gradio_client`` from this process. After ``--warmup`` requests (so lazy loading, per-thread buffers and the
allocator's first growth are done) two phases of ``--requests`` each are measured:

* ``same sessions``: ``--users`` clients, each alternating between two pictures of its own, so every request
  encodes a picture and replaces its session's encoding;
* ``new sessions``: every request in a new session (``Client.reset_session``: the old session's heartbeat ends,
  as when a browser tab closes), so dropping closed sessions, the bound on held encodings (``--max-sessions``) and
  Gradio's per-session bookkeeping are what keep memory in check.

For each phase it prints RSS before and after, the growth per 100 requests (the slope of a least-squares line
through RSS sampled every 20 requests, so one spike does not decide it; over the whole phase and its second half),
the growth of live Python objects (after ``gc.collect()``) and of files in the server's Gradio cache per 100
requests, the sessions held at the end and the request rate. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parents[1] / "tests" / "helpers"
sys.path.insert(0, str(HELPERS))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def _serve(port: int, concurrency: int, max_sessions: int, threads: int, commands: Any, replies: Any) -> None:
    """Child process: a demo server on 127.0.0.1:port, answering ``"stats"`` with its figures until ``"stop"``."""
    import gc

    import torch
    from surfaces_fixtures import tiny_model

    from audiodetic.demo.backend import DemoBackend
    from audiodetic.demo.launch import start
    from audiodetic.demo.page import build_demo

    torch.set_num_threads(threads)
    model = tiny_model(0)
    backend = DemoBackend({model.name: model}, max_sessions=max_sessions)
    demo = build_demo(backend, concurrency_limit=concurrency, max_queue=4 * 64, examples=False)
    replies.put(start(demo, host="127.0.0.1", port=port))
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    while commands.get() == "stats":
        gc.collect()
        replies.put({"rss_mb": _rss_mb(), "python_objects": len(gc.get_objects()), "sessions": len(backend.sessions),
                     "gradio_sessions": len(demo.state_holder.session_data),
                     "cached_files": sum(1 for p in cache.rglob("*") if p.is_file())})
    demo.close()
    backend.close()


def _slope_per_100(samples: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) against request count, per 100 requests."""
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((x - mean_x) ** 2 for x, _ in samples)
    return 100.0 * sum((x - mean_x) * (y - mean_y) for x, y in samples) / var if var else 0.0


def _phase(name: str, stats: Any, requests: int, users: int, work: Any) -> dict[str, Any]:
    """Run ``work(i)`` for requests ``i`` on ``users`` threads, sampling the server's figures every 20 requests."""
    samples = [(0, stats())]
    done = [0]
    lock = threading.Lock()
    started = time.perf_counter()

    def one(i: int) -> None:
        work(i)
        with lock:
            done[0] += 1
            if done[0] % 20 == 0 and done[0] < requests:
                samples.append((done[0], stats()))

    with ThreadPoolExecutor(users) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - started
    samples.append((requests, stats()))
    first, last = samples[0][1], samples[-1][1]
    half = [(n, figures["rss_mb"]) for n, figures in samples if n >= requests // 2]
    return {"phase": name, "requests": requests, "rss_before_mb": first["rss_mb"], "rss_after_mb": last["rss_mb"],
            "growth_per_100_mb": _slope_per_100([(n, figures["rss_mb"]) for n, figures in samples]),
            "second_half_growth_per_100_mb": _slope_per_100(half),
            "python_objects_per_100": 100.0 * (last["python_objects"] - first["python_objects"]) / requests,
            "cached_files_per_100": 100.0 * (last["cached_files"] - first["cached_files"]) / requests,
            "sessions_after": last["sessions"], "gradio_sessions_after": last["gradio_sessions"],
            "seconds": elapsed, "requests_per_s": requests / elapsed, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring (default 200)")
    parser.add_argument("--requests", type=int, default=600,
                        help="requests per measured phase (default 600: shorter phases still show the allocator's "
                             "first growth)")
    parser.add_argument("--concurrency", type=int, default=2, help="the server's --concurrency (default 2)")
    parser.add_argument("--max-sessions", type=int, default=16, help="the server's --max-sessions (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    from demo_clients import UserMedia, free_port
    from gradio_client import Client

    folder = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")  # the server's own cache, counted and removed after
    context = multiprocessing.get_context("spawn")
    commands, replies = context.Queue(), context.Queue()
    server = context.Process(target=_serve, args=(free_port(), args.concurrency, args.max_sessions, args.threads,
                                                  commands, replies), daemon=True)
    server.start()
    stats_lock = threading.Lock()

    def stats() -> dict[str, Any]:
        with stats_lock:
            commands.put("stats")
            return replies.get(timeout=120)

    results = []
    try:
        url = replies.get(timeout=600)
        media = [UserMedia(i, folder / "a").write() for i in range(args.users)]
        others = [UserMedia(i, folder / "b").write() for i in range(args.users)]  # same sizes, other pixels
        model_name = "tiny-random"
        clients = [Client(url, verbose=False) for _ in range(args.users)]
        locks = [threading.Lock() for _ in clients]

        def same_sessions(i: int) -> None:
            user = i % args.users
            picture = (media if (i // args.users) % 2 else others)[user]
            with locks[user]:
                clients[user].predict(*picture.detect_args(0.3, model_name), api_name="/detect")

        def new_sessions(i: int) -> None:
            user = i % args.users
            with locks[user]:
                clients[user].reset_session()  # the old session's heartbeat ends, as when a tab closes
                clients[user].predict(*media[user].detect_args(0.3, model_name), api_name="/detect")

        warm = _phase("warm-up", stats, args.warmup, args.users, same_sessions)
        print(f"server RSS after start-up and {args.warmup} warm-up requests: {warm['rss_after_mb']:.1f} MB")
        for name, work in (("same sessions", same_sessions), ("new sessions", new_sessions)):
            results.append(_phase(name, stats, args.requests, args.users, work))
        for client in clients:
            client.close()
    finally:
        commands.put("stop")
        server.join(60)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{args.users} users, concurrency {args.concurrency}, max sessions {args.max_sessions}, "
          f"{args.threads} torch thread(s) in the server; growth per 100 requests from a least-squares line")
    print(f"{'phase':<14} {'requests':>8} {'RSS before':>11} {'RSS after':>10} {'RSS/100':>10} {'2nd half':>10} "
          f"{'objects/100':>11} {'files/100':>9} {'sessions':>8} {'req/s':>6}")
    for row in results:
        print(f"{row['phase']:<14} {row['requests']:>8} {row['rss_before_mb']:>8.1f} MB {row['rss_after_mb']:>7.1f} MB "
              f"{row['growth_per_100_mb']:>7.1f} MB {row['second_half_growth_per_100_mb']:>7.1f} MB "
              f"{row['python_objects_per_100']:>11.0f} {row['cached_files_per_100']:>9.0f} "
              f"{row['sessions_after']:>8} {row['requests_per_s']:>6.2f}")
    if args.json:
        from audiodetic.io import write_json

        write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, "phases": results}, indent=1)


if __name__ == "__main__":
    main()
