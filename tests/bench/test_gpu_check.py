"""``bench/gpu_check.py`` runs end to end in its CPU dry-run mode and picks a detector's batched method when present."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Batched:
    def __init__(self) -> None:
        self.calls: list[tuple[int, tuple[int, int]]] = []

    def detect_batch(self, images, vocabulary, *, input_size, score_threshold):
        self.calls.append((len(images), input_size))
        return [f"detections {i}" for i in range(len(images))]

    def detect(self, image, vocabulary, *, input_size, score_threshold):
        raise AssertionError("the batched method should have been used")


class _Looped:
    def detect(self, image, vocabulary, *, input_size, score_threshold):
        return "one"


def test_batches_use_the_detectors_batched_method_and_otherwise_loop() -> None:
    gpu_check = _gpu_check()
    images = [np.zeros((4, 4, 3), np.uint8)] * 3
    batched = _Batched()
    assert gpu_check._detect(batched, images, None, (640, 640), 0.5) == (
        ["detections 0", "detections 1", "detections 2"], "detect_batch")
    assert batched.calls == [(3, (640, 640))]
    assert gpu_check._detect(_Looped(), images, None, (640, 640), 0.5) == (["one"] * 3, "loop")


@pytest.mark.slow
def test_dry_run_exercises_every_check(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--json", str(out)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    for model in ("r50", "swinb"):
        assert results[f"{model}_fp32"]["passed"] is True  # CPU against CPU: identical
        assert results[f"{model}_fp16"]["passed"] is None  # bfloat16 stand-in: shown, not judged
        for batch in (1, 2):
            for dtype in ("fp32", "fp16"):
                cell = results[f"{model}_640_b{batch}_{dtype}"]
                assert cell["images_per_s"] > 0 and cell["method"] == "loop"
    assert results["audio"]["passed"] is True
    assert "throughput on cpu" in done.stdout and "all checks passed" in done.stdout
