"""``audiodetic detect`` over collections: a killed run resumes with nothing lost or doubled, list files with
missing paths, duplicates, and the exit code and summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collection_helpers import cli_options as _options
from collection_helpers import read_lines

from audiodetic.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_list_file_with_missing_paths_and_duplicates(assets, plain_loop, tmp_path, capsys):
    images = assets["images"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images[0]}\n{images[1]}\nmissing.png\n{images[0]}\n{images[2]}\n")
    out = tmp_path / "out.jsonl"
    code = main(["detect", str(listing), str(images[1]), *_options(assets), "--no-progress", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{listing}:3: {tmp_path / 'missing.png'}: failed: no such file" in err
    assert "4 images: 3 detected now, 0 already done, 1 failed" in err and "run the same command again" in err
    lines = read_lines(out)
    assert [line["image"] for line in lines] == [str(images[0]), str(images[1]), str(images[2])]
    assert all(line == plain_loop[line["image"]] for line in lines)


def test_a_killed_run_resumes_with_nothing_lost_or_doubled(assets, plain_loop, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    copies = {}
    for copy in range(8):  # 48 images, so that the kill lands mid-run
        for path in assets["images"]:
            name = f"c{copy}-{path.name}"
            (folder / name).write_bytes(path.read_bytes())
            copies[str(folder / name)] = str(path)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "audiodetic", "detect", str(folder), *_options(assets), "--workers", "2",
               "--no-progress", "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done_before = len(read_lines(out))
    assert 3 <= done_before < 48
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"48 images: {48 - done_before} detected now, {done_before} already done, 0 failed" in finished.stderr
    lines = read_lines(out)
    assert sorted(line["image"] for line in lines) == sorted(copies)  # every image exactly once
    for line in lines:
        assert line["detections"] == plain_loop[copies[line["image"]]]["detections"]
