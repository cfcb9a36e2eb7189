"""``torchrun -m audiodetic detect``: ranks split the images, rank 0 merges; results equal the plain loop's and
a second run resumes (every image once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from collection_helpers import cli_options as _options
from collection_helpers import read_lines

from audiodetic.cli import main

REPO = Path(__file__).resolve().parents[2]


def _torchrun(assets, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "audiodetic", "detect", *args, *_options(assets), "--no-progress", "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_two_ranks_split_the_images_and_rank_zero_merges(assets, plain_loop, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    images = [str(p) for p in assets["images"]]
    # an earlier single-process run did two images: the ranks split the other four, then merge
    assert main(["detect", images[0], images[3], *_options(assets), "--no-progress", "--output", str(out)]) == 0
    capsys.readouterr()
    done = _torchrun(assets, str(assets["photos"]), "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 images: 2 detected now, 2 already done, 0 failed" in done.stderr  # each rank: its two images
    lines = read_lines(out)
    assert sorted(line["image"] for line in lines) == sorted(images)  # every image once
    assert [line["image"] for line in lines][2:] == [images[i] for i in (1, 2, 4, 5)]  # merged in the run's order
    assert all(line == plain_loop[line["image"]] for line in lines)
    assert not (tmp_path / "out.jsonl.parts").exists()
    as_list = tmp_path / "out.json"
    done = _torchrun(assets, str(assets["photos"]), "--output", str(as_list))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(as_list.read_text()) == [plain_loop[image] for image in images]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.jsonl", "out.jsonl.run.json"]


@pytest.mark.slow
def test_drawings_under_torchrun_keep_the_rules_of_one_process(assets, tmp_path):
    folder = tmp_path / "drawn"
    folder.mkdir()
    kept = folder / f"{Path(assets['images'][0]).stem}.png"
    kept.write_bytes(b"someone's file")
    done = _torchrun(assets, str(assets["photos"]), "--output", str(tmp_path / "out.jsonl"), "--draw", str(folder))
    assert done.returncode != 0
    assert "--draw" in done.stderr and "overwrite" in done.stderr, done.stderr[-2000:]
    assert kept.read_bytes() == b"someone's file"
