"""Masks of a 100-megapixel picture with 300 detections: what is held and the peak memory stay bounded.

Dense ``(N, H, W)`` masks would cost 300 x 100 MB = 30 GB here. The detector's RLE masks are stated to cost a few
bytes per column of each box (``audiodetic.rle_masks``) and pasting works in bands of columns, so the bound below
(``PEAK_BOUND``: 128 MB above the memory in use before ``classify``, for classify, RLE pasting and the JSON of all
300 detections) is what the test measures, as the process's resident high-water mark (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs`` just before).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audiodetic.detector.convert import load_detector
from audiodetic.testing.detic_checkpoints import make_detic_state_dict

PEAK_BOUND = 128 * 2**20
HELD_PER_COLUMN = 64  # bytes of RLE per column of a box, far above the 1 to 35 measured (random mask head)


def _resident(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_high_water() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _resident("VmHWM") <= _resident("VmRSS") + (8 << 20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the resident high-water mark from /proc")
def test_100_megapixel_image_with_300_detections_stays_small() -> None:
    detector = load_detector(make_detic_state_dict("tiny", seed=0)).eval()  # calibrated random weights
    rng = np.random.default_rng(0)
    vocabulary = rng.normal(size=(20, 512)).astype(np.float32)
    picture = rng.integers(0, 80, (100, 100, 3), dtype=np.uint8)
    picture[20:60, 15:50], picture[55:90, 60:95] = (220, 40, 40), (40, 60, 230)
    encoding = detector.encode(picture)
    # The same encoding seen as a 10000 x 10000 picture (boxes are scaled to it), its final boxes shrunk to a
    # fifth around their centres (~500 px wide) so the pasting (one bilinear sample per box pixel) takes seconds.
    centres = (encoding.boxes[:, :2] + encoding.boxes[:, 2:]) / 2
    halves = (encoding.boxes[:, 2:] - encoding.boxes[:, :2]) / 10
    big = dataclasses.replace(encoding, original_size=(10_000, 10_000),
                              boxes=torch.cat([centres - halves, centres + halves], dim=1))
    if not _reset_high_water():
        pytest.skip("this kernel does not let a process reset its resident high-water mark")
    before = _resident("VmRSS")
    detections = detector.classify(big, vocabulary, score_threshold=0.0, all_classes=True, max_detections=300)
    text = json.dumps(detections.to_json_dict("big.png"))
    peak = _resident("VmHWM") - before
    assert len(detections) == 300 and detections.image_size == (10_000, 10_000)
    widths = np.ceil(detections.boxes[:, 2] - detections.boxes[:, 0]) + 2
    assert widths.min() > 50  # real boxes of a 100-megapixel picture, not specks
    held = detections.rle_masks.nbytes
    assert held <= HELD_PER_COLUMN * widths.sum(), (held, widths.sum())
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.0f} MB above the baseline (held RLE: {held / 2**20:.1f} MB)"
    assert len(text) < 2 * held + 300 * 300  # the JSON is the RLE strings plus a few hundred bytes each
    areas = detections.rle_masks.areas()
    assert np.all(areas <= (widths * (np.ceil(detections.boxes[:, 3] - detections.boxes[:, 1]) + 2)))
    assert areas.sum() > 0
