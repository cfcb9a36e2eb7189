"""Peak memory of reading one tower out of a large checkpoint: ``load_state_dict`` with and without mmap.

Writes a synthetic checkpoint (``--mib`` MiB of float32, 90 % in a ``vision.`` tower and 10 % in ``audio.``, the
ImageBind proportions are similar: the audio tower is ~86 M of 1.2 B parameters), then in fresh subprocesses loads
only the ``audio.`` tensors, touches every element, and reports how far each process's resident memory rose
above its level before the call (VmRSS sampled every 2 ms; Linux only). Prints a table and the
ratio, and writes JSON with ``--json``.

    python bench/bench_weights_load.py --mib 1024
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import sys, threading, time, torch
from audiodetic.weights import load_state_dict

def rss_kib():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))

peak = [rss_kib()]
before = peak[0]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
start = time.perf_counter()
sd = load_state_dict(sys.argv[1], mmap=sys.argv[2] == "1", prefixes=("audio.",))
total = sum(float(t.double().sum()) for t in sd.values())  # touch every kept element
elapsed = time.perf_counter() - start
done.set()
sampler.join()
peak[0] = max(peak[0], rss_kib())
print(before, peak[0], elapsed, sum(t.numel() for t in sd.values()))
"""


def _write_checkpoint(path: Path, mib: int) -> None:
    import torch

    floats = mib * (1 << 20) // 4
    vision, audio = floats * 9 // 10, floats // 10
    chunk = 1 << 22
    state: dict[str, torch.Tensor] = {}
    for name, count in (("vision", vision), ("audio", audio)):
        for index in range(0, count, chunk):
            state[f"{name}.{index // chunk}"] = torch.randn(min(chunk, count - index))
    torch.save(state, path)


def _measure(path: Path, mmap: bool) -> dict[str, float]:
    output = subprocess.run([sys.executable, "-c", _CHILD, str(path), "1" if mmap else "0"], check=True,
                            capture_output=True, text=True).stdout.split()
    before, peak, elapsed, numel = (float(value) for value in output)
    return {"baseline_rss_mib": before / 1024, "peak_rss_mib": peak / 1024, "seconds": elapsed,
            "kept_mib": numel * 4 / (1 << 20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=512, help="checkpoint size in MiB (default 512)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "towers.pth"
        _write_checkpoint(path, args.mib)
        results = {"checkpoint_mib": args.mib, "mmap": _measure(path, True), "no_mmap": _measure(path, False)}
    print(f"checkpoint {args.mib} MiB, kept tower {results['mmap']['kept_mib']:.0f} MiB")
    print(f"{'mode':8} {'peak RSS MiB':>13} {'over baseline':>14} {'seconds':>8}")
    for mode in ("mmap", "no_mmap"):
        row = results[mode]
        print(f"{mode:8} {row['peak_rss_mib']:13.0f} {row['peak_rss_mib'] - row['baseline_rss_mib']:14.0f} "
              f"{row['seconds']:8.2f}")
    growth = {mode: results[mode]["peak_rss_mib"] - results[mode]["baseline_rss_mib"] for mode in ("mmap", "no_mmap")}
    ratio = growth["no_mmap"] / max(growth["mmap"], 1.0)
    results["ratio_no_mmap_over_mmap"] = ratio
    print(f"memory growth ratio no_mmap / mmap: {ratio:.1f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
