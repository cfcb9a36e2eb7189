"""Drawing annotated frames and writing them with the source's audio."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic.errors import InputError
from audiodetic.structures import Detections
from audiodetic.video.records import FrameResult
from audiodetic.video.writer import AnnotatedVideoWriter, check_video_suffix, heat_colors, render


def _result(image, heatmap=None, n=0):
    boxes = np.array([[4, 4, 20, 20]] * n, np.float32).reshape(-1, 4)
    detections = Detections(boxes, np.full(n, 0.9), np.zeros(n, np.int64), ("soundtrack",), image.shape[:2])
    return FrameResult(0, 0.0, detections, np.arange(1, n + 1), False, -10.0, heatmap, image)


def test_heat_colours_and_overlay():
    np.testing.assert_allclose(heat_colors(np.array([0.0, 1 / 3, 2 / 3, 1.0])),
                               [[0, 0, 0], [200, 0, 0], [255, 200, 0], [255, 255, 255]], atol=1e-3)
    image = np.full((8, 8, 3), 100, np.uint8)
    assert np.array_equal(render(_result(image)), image)  # nothing to draw
    heat = np.zeros((2, 2), np.float32)
    heat[0, 0] = 1.0
    drawn = render(_result(image, heat), heatmap=True)
    assert np.array_equal(drawn[4:, :], image[4:, :])  # score 0: untouched
    expected = np.round(100 * (1 - 0.45) + 255 * 0.45)  # white at opacity 0.45
    assert np.all(np.abs(drawn[:4, :4].astype(int) - expected) <= 1)
    boxed = render(_result(np.zeros((32, 32, 3), np.uint8), n=1))
    assert boxed.any()  # the box and its "soundtrack #1" label


def test_suffixes_and_sizes(tmp_path, clip_mp4):
    with pytest.raises(InputError, match=".mp4"):
        check_video_suffix(tmp_path / "out.gif")
    writer = AnnotatedVideoWriter(tmp_path / "odd.mp4", fps=2, size=(31, 17), audio_path=clip_mp4.path)
    writer.add(_result(np.zeros((17, 31, 3), np.uint8)))  # odd sides are padded for H.264
    with pytest.raises(InputError, match="31x17"):
        writer.add(_result(np.zeros((16, 16, 3), np.uint8)))
    path = writer.close()
    import av

    with av.open(str(path)) as container:
        assert container.streams.video[0].width == 32 and len(container.streams.audio) == 1
    aborted = AnnotatedVideoWriter(tmp_path / "gone.mp4", fps=2, size=(32, 32))
    aborted.abort()
    assert not (tmp_path / "gone.mp4").exists() and not list(tmp_path.glob(".gone.mp4*"))
