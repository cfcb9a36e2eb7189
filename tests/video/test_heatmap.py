"""Coarse score maps: per cell, the best score of the regions covering its centre (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic.errors import InputError
from audiodetic.video.heatmap import grid_shape, round_map, score_map, upsample_map


def test_boxes_on_a_4x4_grid_by_hand():
    # 8x8 image, 4x4 grid: cell centres at 1, 3, 5, 7 px
    boxes = [[0, 0, 4, 4], [2, 2, 8, 6]]
    scores = [0.9, 0.5]
    values = score_map(boxes, scores, (8, 8), (4, 4))
    expected = np.array([
        [0.9, 0.9, 0.0, 0.0],
        [0.9, 0.9, 0.5, 0.5],  # centre (3, 3) is in both: max 0.9
        [0.0, 0.5, 0.5, 0.5],
        [0.0, 0.0, 0.0, 0.0],  # y = 7 is outside y2 = 6
    ], np.float32)
    np.testing.assert_allclose(values, expected)
    assert values.dtype == np.float32


def test_right_and_bottom_edges_are_exclusive_and_no_region_is_zero():
    values = score_map([[0, 0, 3, 3]], [0.7], (4, 4), (4, 4))  # centres 0.5..3.5; 3.5 >= 3 is outside
    np.testing.assert_allclose(values[:3, :3], 0.7)
    assert values[3].sum() == 0 and values[:, 3].sum() == 0
    np.testing.assert_array_equal(score_map(np.zeros((0, 4)), [], (5, 7), (2, 3)), np.zeros((2, 3)))


def test_masks_replace_boxes():
    masks = np.zeros((2, 4, 6), bool)
    masks[0, 0, 0] = True  # only pixel (0, 0)
    masks[1, :, 3:] = True
    values = score_map([[0, 0, 6, 4], [0, 0, 6, 4]], [0.8, 0.3], (4, 6), (2, 3), masks=masks)
    # cells 2x3 of 2x2 px: centres (1, 1), (3, 1), (5, 1) / (1, 3) ... -> pixels (1,1),(1,3),(1,5) etc
    np.testing.assert_allclose(values, [[0.0, 0.3, 0.3], [0.0, 0.3, 0.3]])
    with pytest.raises(InputError, match="masks"):
        score_map([[0, 0, 1, 1]], [0.5], (4, 6), (2, 3), masks=np.zeros((1, 3, 3), bool))


def test_grid_shape_upsampling_and_rounding():
    assert grid_shape((48, 64), 32) == (24, 32)
    assert grid_shape((2160, 3840), 32) == (18, 32)
    assert grid_shape((1, 1000), 32) == (1, 32)
    big = upsample_map(np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), (4, 6))
    np.testing.assert_allclose(big[:, :3], [[0.1] * 3, [0.1] * 3, [0.3] * 3, [0.3] * 3])
    assert round_map(np.array([[0.12345, 1.0]])) == [[0.123, 1.0]]
    with pytest.raises(InputError):
        grid_shape((0, 10))
