"""Importing audiodetic, its collection runner, the CLI and the Ray integration never imports Ray (or torch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_no_ray_on_import():
    code = ("import sys, audiodetic, audiodetic.collection, audiodetic.integrations.ray, audiodetic.cli.detect\n"
            "from audiodetic.cli import build_parser\n"
            "build_parser().parse_args(['detect', 'x.png', '--text', 'car', '--output', 'o.jsonl'])\n"
            "print(sorted(m for m in ('ray', 'pyarrow', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
