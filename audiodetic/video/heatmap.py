"""Coarse localisation maps: per grid cell, the highest score of the regions that cover it.

The map of an image of ``(H, W)`` pixels on a ``(rows, cols)`` grid has one value per cell: the maximum score of
the regions that contain the cell's centre ``((col + 0.5) * W / cols, (row + 0.5) * H / rows)`` (image pixels,
``(0, 0)`` the top-left corner of the top-left pixel), ``0`` where no region does. A region contains a point when
it lies in its box ``x1 <= x < x2, y1 <= y < y2``, or, with masks, when the mask pixel holding the point is set.
The soundtrack prompt's heat map in video results and the maps scored by ``audiodetic eval sound-localisation``
are both this map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audiodetic.errors import InputError

DEFAULT_CELLS = 32
"""Cells along the longer side of a video frame's heat map."""


def grid_shape(image_size: tuple[int, int], longest: int = DEFAULT_CELLS) -> tuple[int, int]:
    """``(rows, cols)`` with ``longest`` cells along the longer image side and the aspect ratio kept (at least 1)."""
    height, width = (int(v) for v in image_size)
    if height <= 0 or width <= 0 or int(longest) < 1:
        raise InputError(f"grid_shape needs a positive image size and cell count, got {image_size}, {longest}")
    scale = int(longest) / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def score_map(boxes: Any, scores: Any, image_size: tuple[int, int], grid: tuple[int, int], *,
              masks: np.ndarray | None = None) -> np.ndarray:
    """The map described in the module doc: float32 ``(rows, cols)``.

    Args:
        boxes: ``(N, 4)`` xyxy in image pixels; ``scores``: ``(N,)``; ``masks``: optional ``(N, H, W)`` bool in the
            same image (used instead of the boxes when given).
        image_size: ``(H, W)`` of the image; ``grid``: ``(rows, cols)``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    height, width = (int(v) for v in image_size)
    rows, cols = (int(v) for v in grid)
    if boxes.shape[0] != scores.shape[0]:
        raise InputError(f"score_map: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if rows < 1 or cols < 1 or height < 1 or width < 1:
        raise InputError(f"score_map: grid {grid} and image size {image_size} must be positive")
    xs = (np.arange(cols) + 0.5) * (width / cols)
    ys = (np.arange(rows) + 0.5) * (height / rows)
    out = np.zeros((rows, cols), np.float32)
    if masks is not None:
        masks = np.asarray(masks, bool)
        if masks.shape != (boxes.shape[0], height, width):
            raise InputError(f"score_map: masks must have shape {(boxes.shape[0], height, width)}, got {masks.shape}")
        px = np.minimum(np.floor(xs).astype(int), width - 1)
        py = np.minimum(np.floor(ys).astype(int), height - 1)
        for mask, score in zip(masks, scores):
            covered = mask[np.ix_(py, px)]
            np.maximum(out, np.where(covered, score, 0.0).astype(np.float32), out=out)
        return out
    for (x1, y1, x2, y2), score in zip(boxes, scores):
        inside_x = (xs >= x1) & (xs < x2)
        inside_y = (ys >= y1) & (ys < y2)
        covered = inside_y[:, None] & inside_x[None, :]
        np.maximum(out, np.where(covered, score, 0.0).astype(np.float32), out=out)
    return out


def upsample_map(values: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Nearest-cell upsampling of a ``(rows, cols)`` map to ``(H, W)`` pixels (pixel ``(y, x)`` takes the cell
    holding its centre), for drawing."""
    rows, cols = values.shape
    height, width = (int(v) for v in image_size)
    row_of = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(int), rows - 1)
    col_of = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(int), cols - 1)
    return values[np.ix_(row_of, col_of)]


def round_map(values: np.ndarray, digits: int = 3) -> list[list[float]]:
    """The map as nested lists of floats rounded to ``digits`` (for JSON)."""
    factor = 10.0 ** digits
    return [[math.floor(float(v) * factor + 0.5) / factor for v in row] for row in values]
